"""Does the carried temporal token make the box drift? Box area over 3,000 frames of Big Buck Bunny.

The shipped model tracks the big rabbit (marked by hand on frame 2,000 of the full 1280x720 film that
moviepy's source distribution carries) for 3,000 frames (2 minutes at 24 fps, frames 2,000-4,999) with the
temporal token carried from frame to frame (``propagate_temporal_token=True``, the paper's method) and/or
with every frame starting from a fresh token (``--runs carried fresh``). The stretch has shot cuts and the
rabbit changes size between shots, so the area is expected to move by a few times; drift is the box
swelling towards the whole frame (or shrinking to nothing) and staying there. Printed per run: the final
/ initial and max / initial area ratios, and the share of frames whose box covers more than half the
frame. Written under OUT: ``areas.csv`` (frame, area of each run) and ``areas.png`` (matplotlib).

The film (50 MB) is not in the repository; fetch it once with pip's ordinary client:

    pip download moviepy==2.2.1 --no-deps --no-binary :all: -d cache/moviepy
    tar xzf cache/moviepy/moviepy-2.2.1.tar.gz -C cache/moviepy \
        moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip
    unzip -o cache/moviepy/moviepy-2.2.1/docs/_static/medias/getting_started/moviepy_10_minutes/moviepy_10_minutes.zip \
        moviepy_10_minutes/resources/bbb.mp4 -d cache/moviepy
    python benchmarks/token_drift.py cache/moviepy/moviepy_10_minutes/resources/bbb.mp4 --out runs/token_drift --runs carried fresh

The model steps in the compute dtype the pipeline picks on this CPU unless ``--dtype`` names one.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _timing import machine_line  # noqa: E402
from tqdm import tqdm  # noqa: E402

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackInferenceSession, ODTrackModel, ODTrackProcessor  # noqa: E402
from odtrack_hf.cli_common import add_dtype_argument  # noqa: E402
from odtrack_hf.session_odtrack import default_inference_dtype  # noqa: E402
from odtrack_hf.video_io import read_video_frames, video_info  # noqa: E402

START_FRAME = 2000
# the rabbit, ears to feet, on frame 2,000 of bbb.mp4 (1280x720), x y w h, marked by hand
RABBIT = [305.0, 175.0, 310.0, 475.0]
RUNS = {"carried": ("token carried", True), "fresh": ("fresh token every frame", False)}


def track_areas(
    model_dir: Path, video: Path, start: int, count: int, carry_token: bool, dtype: str | None
) -> tuple[np.ndarray, torch.dtype]:
    """Box area (px²) on each of ``count`` frames from ``start``, the first being the marked box, and the
    compute dtype they were tracked in (``dtype``, or by default the one the pipeline picks on this CPU)."""
    model = ODTrackModel.from_pretrained(model_dir).eval()
    model.config.propagate_temporal_token = carry_token
    compute = getattr(torch, dtype) if dtype else default_inference_dtype(model, "cpu")
    session = ODTrackInferenceSession(model, ODTrackProcessor.from_pretrained(model_dir), dtype=compute)
    frames = itertools.islice(read_video_frames(video), start, start + count)
    areas = []
    with torch.inference_mode():
        frames = tqdm(frames, total=count, mininterval=30, desc=f"token carried={carry_token}")
        for output in session.propagate(frames, [RABBIT]):
            _, _, w, h = output.boxes[0].tolist()
            areas.append(w * h)
    return np.asarray(areas), compute


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path, help="bbb.mp4 from moviepy's source distribution (see above)")
    parser.add_argument("--out", type=Path, default=Path("runs/token_drift"))
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument(
        "--runs", nargs="+", choices=list(RUNS), default=["carried"], help="token carried and/or fresh every frame"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL_DIR, help="model folder (default: the shipped model)")
    add_dtype_argument(parser, automatic=True)
    args = parser.parse_args()
    if not args.video.is_file():
        parser.error(f"{args.video} does not exist; fetch bbb.mp4 from moviepy's sdist as this script's help shows.")
    info = video_info(args.video)
    if (info["width"], info["height"]) != (1280, 720) or (info["num_frames"] or 0) < START_FRAME + args.frames:
        parser.error(f"{args.video} is not the 1280x720 Big Buck Bunny of moviepy 2.2.1 (got {info}).")
    torch.set_num_threads(args.threads)

    tracked = {
        RUNS[run][0]: track_areas(args.model, args.video, START_FRAME, args.frames, RUNS[run][1], args.dtype)
        for run in args.runs
    }
    areas = {name: values for name, (values, _) in tracked.items()}
    compute = str(next(iter(tracked.values()))[1]).removeprefix("torch.")
    frame_area = info["width"] * info["height"]

    args.out.mkdir(parents=True, exist_ok=True)
    rows = zip(range(START_FRAME, START_FRAME + args.frames), *areas.values())
    temporary = args.out / "areas.csv.tmp"
    with open(temporary, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["frame", *areas])
        writer.writerows((frame, *(f"{a:.1f}" for a in values)) for frame, *values in rows)
    os.replace(temporary, args.out / "areas.csv")

    figure, axis = plt.subplots(figsize=(10, 4))
    for name, values in areas.items():
        axis.plot(np.arange(START_FRAME, START_FRAME + len(values)), values / values[0], label=name, linewidth=0.8)
    axis.axhline(frame_area / (RABBIT[2] * RABBIT[3]), color="grey", linestyle="--", label="whole frame")
    axis.set_yscale("log")
    axis.set_xlabel("frame of bbb.mp4")
    axis.set_ylabel("box area / initial area")
    last = START_FRAME + args.frames - 1
    axis.set_title(f"{args.model.name} ({compute}) on Big Buck Bunny, frames {START_FRAME}-{last}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.out / "areas.png.tmp.png", dpi=100)
    os.replace(args.out / "areas.png.tmp.png", args.out / "areas.png")

    print(f"{args.video.name}: frames {START_FRAME}-{START_FRAME + args.frames - 1}, rabbit box {RABBIT}, {compute}")
    print(f"  {machine_line(args.threads)}")
    for name, values in areas.items():
        print(
            f"  {name:24s} final/initial area {values[-1] / values[0]:6.2f}  max/initial {values.max() / values[0]:6.2f}"
            f"  min/initial {values.min() / values[0]:5.2f}  frames over half the frame {np.mean(values > frame_area / 2):6.1%}"
        )
    print(f"  written: {args.out / 'areas.csv'}, {args.out / 'areas.png'}")


if __name__ == "__main__":
    main()
