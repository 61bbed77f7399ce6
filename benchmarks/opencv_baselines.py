"""OpenCV baselines (CSRT, KCF, MIL) on a GOT-10k-style folder, scored like our tracker.

Each tracker is initialised with the first ground-truth box and updated on every later frame (BGR frames
as OpenCV expects). Where ``update`` reports failure the previous box is kept (what toolkit wrappers of
OpenCV trackers do). Written under OUT:

    OUT/<TRACKER>/results/<seq>.txt       one box per frame, x<TAB>y<TAB>w<TAB>h (frame 1 = the initial box),
                                          the layout of `odtrack eval` results, so `--compare` can read it
    OUT/<TRACKER>/results/<seq>_time.txt  seconds per frame around init/update (decoding excluded)
    OUT/metrics.json                      per tracker: auc, precision, norm_precision, ao, sr50, sr75, fps
                                          (update only), fps_end_to_end (decode + update), per-sequence scores
    OUT/table.md                          the table

A sequence whose result file exists is skipped (the run resumes). Scores: `evaluate_tracking` with the
default (official ODTrack) convention and the folder's visibility labels.

CSRT and KCF are in the contrib build of OpenCV only. The package depends on `opencv-python-headless`;
both wheels install the module `cv2`, so install the contrib wheel of the *same version* over it (a
superset of the same build):

    pip install "opencv-contrib-python-headless==$(python -c 'import cv2; print(cv2.__version__)').*"
    python benchmarks/opencv_baselines.py data/heldout --out runs/baselines/heldout --threads 2
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from odtrack_hf.data.sources import FolderSource, Sequence
from odtrack_hf.evaluation.metrics import evaluate_tracking, read_results

TRACKERS: dict[str, str] = {"CSRT": "TrackerCSRT", "KCF": "TrackerKCF", "MIL": "TrackerMIL"}
SCORES = ("auc", "precision", "norm_precision", "ao", "sr50", "sr75")


def make_tracker(name: str) -> Any:
    """A new OpenCV tracker (``"CSRT"``, ``"KCF"`` or ``"MIL"``); a clear error without the contrib build."""
    cls = getattr(cv2, TRACKERS[name], None)
    if cls is None:
        raise RuntimeError(
            f"cv2.{TRACKERS[name]} is missing from OpenCV {cv2.__version__}: install opencv-contrib-python-headless "
            "of the same version as opencv-python-headless (see this script's docstring)."
        )
    return cls.create()


def track_sequence(factory: Callable[[], Any], sequence: Sequence) -> tuple[np.ndarray, np.ndarray, float]:
    """Run one tracker over a sequence from its first ground-truth box.

    Returns:
        ``(boxes (N, 4) float64 x, y, w, h with row 0 = the initial box, seconds per frame (N,) around
        init/update, wall seconds including decoding)``.
    """
    start = time.perf_counter()
    init = [int(round(v)) for v in sequence.boxes[0]]
    boxes, times = [np.asarray(init, dtype=np.float64)], []
    tracker = factory()
    for index, path in enumerate(sequence.frames):
        frame = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if frame is None:
            raise ValueError(f"{sequence.name}: cannot read frame {path}.")
        tic = time.perf_counter()
        if index == 0:
            tracker.init(frame, tuple(init))
        else:
            ok, box = tracker.update(frame)
            boxes.append(np.asarray(box, dtype=np.float64) if ok else boxes[-1])
        times.append(time.perf_counter() - tic)
    return np.stack(boxes), np.asarray(times), time.perf_counter() - start


def run_tracker(name: str, source: FolderSource, out: Path) -> dict[str, Any]:
    """Track every sequence of ``source`` with one tracker (skipping finished ones) and score it."""
    results = out / name / "results"
    results.mkdir(parents=True, exist_ok=True)
    predictions, ground_truth, visible = {}, {}, {}
    update_seconds = wall_seconds = 0.0
    num_frames = 0
    for index in range(len(source)):
        sequence = source[index]
        path, time_path, wall_path = (
            results / f"{sequence.name}{suffix}" for suffix in (".txt", "_time.txt", "_wall.txt")
        )
        if not path.is_file():
            boxes, times, wall = track_sequence(lambda: make_tracker(name), sequence)
            time_path.write_text("".join(f"{t:f}\n" for t in times))
            wall_path.write_text(f"{wall:f}\n")
            path.write_text("".join("\t".join(f"{v:g}" for v in row) + "\n" for row in boxes))
        times = np.loadtxt(time_path, ndmin=1)
        update_seconds += float(times[1:].sum())
        wall_seconds += float(np.loadtxt(wall_path))
        num_frames += len(times)
        predictions[sequence.name] = read_results(path)
        ground_truth[sequence.name], visible[sequence.name] = sequence.boxes, sequence.visible
    scores = evaluate_tracking(predictions, ground_truth, visible)
    summary = {key: float(scores[key]) for key in SCORES}
    summary["fps"] = (num_frames - len(source)) / update_seconds
    summary["fps_end_to_end"] = num_frames / wall_seconds
    summary["per_sequence"] = {
        seq: {key: float(row[key]) for key in SCORES} for seq, row in scores["per_sequence"].items()
    }
    return summary


def markdown_table(metrics: dict[str, dict[str, Any]], num_sequences: int, num_frames: int) -> str:
    """The summary table: one row per tracker, scores in percent."""
    lines = [
        f"{num_sequences} sequences, {num_frames} frames; OpenCV {cv2.__version__}, {cv2.getNumThreads()} thread(s).",
        "",
        "| tracker | AUC | precision | norm. precision | AO | SR0.5 | SR0.75 | fps (update) | fps (decode + update) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, row in metrics.items():
        scores = " | ".join(f"{row[key]:.1f}" for key in SCORES)
        lines.append(f"| {name} | {scores} | {row['fps']:.0f} | {row['fps_end_to_end']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Command line: track, score and write OUT/metrics.json and OUT/table.md."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="GOT-10k-style split folder: <root>/<seq>/{frames, groundtruth.txt, labels}")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--trackers", nargs="+", default=list(TRACKERS), choices=list(TRACKERS))
    parser.add_argument("--threads", type=int, default=2, help="OpenCV threads (default 2)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    source, out = FolderSource(args.root), Path(args.out)
    metrics = {name: run_tracker(name, source, out) for name in args.trackers}
    num_frames = sum(len(source[i].frames) for i in range(len(source)))
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    table = markdown_table(metrics, len(source), num_frames)
    (out / "table.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
