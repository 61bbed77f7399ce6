"""benchmarks/round_trip.py: the hand-marked targets and the pass rule (the trackers themselves are not run)."""

import json
import sys

import pytest
from script_helpers import REPO, load_script

pytest.importorskip("skvideo")
sys.path.insert(0, str(REPO / "benchmarks"))  # the script imports its sibling modules
round_trip = load_script("benchmarks/round_trip.py")


def test_every_target_has_a_known_video_with_provenance_and_boxes_inside_its_frames():
    from odtrack_hf.video_io import video_info

    spec = json.loads(round_trip.TARGETS.read_text())
    for video in spec["videos"].values():
        assert {"package", "version", "licence", "file", "kind"} <= set(video)
    for target in spec["targets"]:
        assert target["video"] in spec["videos"]
        path = round_trip.video_path(target["video"], bbb=None)
        if path is None:  # the film is fetched by hand (see the script)
            continue
        info = video_info(path)
        assert target["start"] + target["frames"] < info["num_frames"]
        for x, y, w, h in (target["box"], target["end_box"]):
            assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= info["width"] and y + h <= info["height"]


def test_round_trip_reports_the_returned_iou_and_the_largest_move():
    frames = list(range(5))  # stand-ins: the fake trackers only count them
    box = [10.0, 20.0, 30.0, 40.0]

    def still(frames, box):
        return [box] * len(frames)

    def there_and_back(frames, box):
        shifts = [0, 10, 20, 30, 40, 30, 20, 10, 0]  # forward over 5 frames, back over 4
        assert len(frames) == len(shifts)
        return [[box[0] + s, box[1], box[2], box[3]] for s in shifts]

    def lost(frames, box):
        return [box] + [[box[0] + 100, box[1], box[2], box[3]]] * (len(frames) - 1)

    assert round_trip.round_trip(still, frames, box) == (1.0, 0.0)
    assert round_trip.round_trip(there_and_back, frames, box) == (pytest.approx(1.0), pytest.approx(40.0))
    assert round_trip.round_trip(lost, frames, box) == (0.0, pytest.approx(100.0))
