"""pipeline("object-tracking"): inputs, output format, options, streaming, saving, errors (the default
model: test_default_model.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from torchvision.ops import box_convert
from tracking_helpers import fixture_clip, save_fixture_tracker, write_video
from transformers import pipeline

import odtrack_hf  # noqa: F401  (registers the task)


@pytest.fixture(scope="module")
def tracker_dir(tmp_path_factory):
    return save_fixture_tracker(tmp_path_factory.mktemp("tracker"))


@pytest.fixture(scope="module")
def tracker(tracker_dir):
    return pipeline("object-tracking", model=str(tracker_dir), device="cpu")


def xyxy(box_xywh):
    return box_convert(torch.tensor(box_xywh, dtype=torch.float64), in_fmt="xywh", out_fmt="xyxy").tolist()


def test_frames_list_reproduces_the_official_tracker(tracker):
    frames, init_box, expected = fixture_clip()
    results = tracker(list(frames), boxes=[xyxy(init_box)])
    assert len(results) == len(frames)
    first_box = {"xmin": 30.0, "ymin": 44.0, "xmax": 54.0, "ymax": 64.0}
    assert results[0] == [{"object_id": 1, "score": 1.0, "box": first_box}]
    for frame_results, want in zip(results, expected):
        (result,) = frame_results
        assert set(result) == {"object_id", "score", "box"} and isinstance(result["score"], float)
        got = [result["box"][key] for key in ("xmin", "ymin", "xmax", "ymax")]
        assert got == pytest.approx(xyxy(want), abs=1e-3)


def test_video_file_pil_frames_and_generators_give_the_same_boxes(tracker, tmp_path):
    frames, init_box, _ = fixture_clip()
    path = write_video(tmp_path / "clip.mp4", frames)
    from odtrack_hf.video_io import read_video_frames

    decoded = list(read_video_frames(path))  # lossy codec: compare against the decoded frames
    by_path = tracker(str(path), boxes=[xyxy(init_box)])
    assert by_path == tracker(decoded, boxes=xyxy(init_box))  # a single box may be given flat
    assert by_path == tracker([PIL.Image.fromarray(f) for f in decoded], boxes=[xyxy(init_box)])
    assert by_path == tracker((f for f in decoded), boxes=[xyxy(init_box)])


def test_stream_yields_each_frame_before_reading_the_next(tracker):
    frames, init_box, _ = fixture_clip()
    pulled = []

    def live_source():
        for index, frame in enumerate(frames[:4]):
            pulled.append(index)
            yield frame

    stream = tracker.stream(live_source(), boxes=[xyxy(init_box), [90, 50, 130, 80]])
    first = next(stream)
    assert pulled == [0] and [r["object_id"] for r in first] == [1, 2]
    assert len(list(stream)) == 3 and pulled == [0, 1, 2, 3]


def test_template_memory_option(tracker, tracker_dir):
    frames, init_box, _ = fixture_clip()
    official = tracker(list(frames), boxes=[xyxy(init_box)], max_templates=None)
    assert tracker(list(frames), boxes=[xyxy(init_box)]) == official  # the official memory still fits in the default
    assert tracker(list(frames), boxes=[xyxy(init_box)], max_templates=8) != official  # 11 frames overflow 8
    # a long clip (the fixture clip back and forth) tells the default bound from max_templates=None given at construction
    long_clip = [*frames, *frames[::-1]] * 5
    unbounded = pipeline("object-tracking", model=str(tracker_dir), device="cpu", max_templates=None)
    assert unbounded(long_clip, boxes=[xyxy(init_box)]) == tracker(long_clip, boxes=[xyxy(init_box)], max_templates=None)
    assert unbounded(long_clip, boxes=[xyxy(init_box)]) != tracker(long_clip, boxes=[xyxy(init_box)])


def test_crop_backend_option(tracker):
    frames, init_box, _ = fixture_clip()
    official = tracker(list(frames), boxes=[xyxy(init_box)])
    assert tracker(list(frames), boxes=[xyxy(init_box)], crop_backend="torch") == official  # the exact torch crop
    with pytest.raises(ValueError, match="crop_backend must be 'opencv'"):  # the option reaches the session
        tracker(list(frames), boxes=[xyxy(init_box)], crop_backend="pillow")


def test_save_pretrained_includes_the_processor_and_reloads(tracker, tmp_path):
    frames, init_box, _ = fixture_clip()
    tracker.save_pretrained(tmp_path)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"processor_config.json", "pipeline_odtrack.py", "session_odtrack.py", "processing_odtrack.py"} <= files
    registration = json.loads((tmp_path / "config.json").read_text())["custom_pipelines"]["object-tracking"]
    assert registration["impl"] == "pipeline_odtrack.ObjectTrackingPipeline"
    assert "default" not in registration  # a path inside this installation must not be shared
    # a folder that names its own pipeline code always needs trust_remote_code (transformers' rule)
    reloaded = pipeline(model=str(tmp_path), trust_remote_code=True, device="cpu")
    # float32 named on both sides: the remote-code copy of the session picks bf16 by itself on a CPU with
    # native bf16 (conftest's float32 default patches only the installed package)
    float32 = {"boxes": [xyxy(init_box)], "dtype": torch.float32}
    assert reloaded(list(frames[:4]), **float32) == tracker(list(frames[:4]), **float32)


REMOTE_LOADER = """
import json, sys
import numpy as np
import torch
from transformers import pipeline
tracker = pipeline(model=sys.argv[1], trust_remote_code=True, device="cpu")
assert "odtrack_hf" not in sys.modules, "the installed package must not be imported"
assert type(tracker).__module__.startswith("transformers_modules."), type(tracker).__module__
frames = np.load(sys.argv[2])
print(json.dumps(tracker(list(frames), boxes=json.loads(sys.argv[3]), dtype=torch.float32)))
"""


def test_saved_pipeline_runs_as_remote_code_in_a_fresh_process(tracker, tmp_path):
    frames, init_box, _ = fixture_clip()
    tracker.save_pretrained(tmp_path / "saved")
    np.save(tmp_path / "frames.npy", frames[:4])
    script = tmp_path / "load.py"
    script.write_text(REMOTE_LOADER)
    boxes = [xyxy(init_box)]
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "saved"), str(tmp_path / "frames.npy"), json.dumps(boxes)],
        cwd=tmp_path,  # the src/ checkout must not be importable by accident
        env=dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # float32 on both sides (see test_save_pretrained_includes_the_processor_and_reloads)
    assert json.loads(result.stdout.splitlines()[-1]) == tracker(list(frames[:4]), boxes=boxes, dtype=torch.float32)


@pytest.mark.parametrize(
    ("video", "boxes", "message"),
    [
        ([], [[1, 1, 20, 20]], "The video has no frames"),
        (PIL.Image.new("RGB", (40, 30)), [[1, 1, 20, 20]], "video must be a file path, a list of frames"),
        ("missing.mp4", [[1, 1, 20, 20]], "does not exist"),
        ([np.zeros((30, 40, 3), np.uint8)], [[50, 1, 60, 20]], "outside the 40x30 frame"),
        ([np.zeros((30, 40, 3), np.uint8)], [[10, 1, 5, 20]], "zero or negative size"),
        ([np.zeros((30, 40, 3), np.uint8)], [[float("nan"), 1, 5, 20]], "NaN"),
        ([np.zeros((30, 40, 3), np.uint8)], [[1, 2, 3]], r"boxes must be one \[xmin, ymin, xmax, ymax\] box"),
        ([np.zeros((30, 40, 3), np.uint8)], None, r"boxes must be one \[xmin, ymin, xmax, ymax\] box"),
        ([np.zeros((30, 40, 3), np.uint8), np.zeros((32, 40, 3), np.uint8)], [[1, 1, 20, 20]], "the same size"),
        ([np.zeros((30, 40, 3), np.float32)], [[1, 1, 20, 20]], "dtype float32"),
    ],
)
def test_bad_input_raises_value_error(tracker, video, boxes, message):
    with pytest.raises(ValueError, match=message):
        tracker(video, boxes=boxes)
