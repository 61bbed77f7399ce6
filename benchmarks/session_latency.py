"""End-to-end tracking latency of one object on a 640x480 video: JPEG decode + crop + model + map-back.

The frame is a real photograph (scikit-image's ``coffee``, resized to 640x480) encoded as JPEG (quality 90,
as the generated benchmark); each step decodes it and calls ``session.track`` (the tracker's crops, the forward with its templates and the
temporal token, the map-back, the new memory template). The model is a trained folder (``--model``) or the
architecture of a training config with random weights (``--config``: timing does not depend on weights).

    python benchmarks/session_latency.py --config examples/configs/default_model.yaml --threads 2
    python benchmarks/session_latency.py --model runs/default_model/export/latest --threads 2
    python benchmarks/session_latency.py --model src/odtrack_hf/default_model --threads 2 --dtype bfloat16

Prints the best and median step after the warm-up. Measure on an otherwise idle machine: with other
processes running, every number is an upper bound.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import numpy as np
import skimage.data
import torch
from end_to_end import model_config
from PIL import Image

from odtrack_hf import ODTrackInferenceSession, ODTrackModel, ODTrackProcessor


def build(model: str | None, config: str | None) -> tuple[ODTrackModel, ODTrackProcessor]:
    """The model (trained folder, or random weights for a training config's architecture) and its processor."""
    if model:
        return ODTrackModel.from_pretrained(model).eval(), ODTrackProcessor.from_pretrained(model)
    cfg = model_config(config)
    return ODTrackModel(cfg).eval(), ODTrackProcessor.from_model_config(cfg)


def measure(model: ODTrackModel, processor: ODTrackProcessor, steps: int, warmup: int, **session_options) -> list[float]:
    """Seconds of each tracking step (decode included) after ``warmup`` steps; ``session_options`` go to
    ``ODTrackInferenceSession`` (``dtype``, ``compile``)."""
    buffer = io.BytesIO()
    Image.fromarray(skimage.data.coffee()).resize((640, 480), Image.BILINEAR).save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()

    def decode() -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    session = ODTrackInferenceSession(model, processor, **session_options)
    session.track(decode(), new_boxes=[[290, 210, 60, 50]])
    times = []
    with torch.inference_mode():
        for _ in range(warmup + steps):
            start = time.perf_counter()
            session.track(decode())
            times.append(time.perf_counter() - start)
    return times[warmup:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="save_pretrained folder with its processor")
    source.add_argument("--config", help="training config: its architecture with random weights")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10, help="first steps not timed (template memory fills up)")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32", help="compute dtype (autocast)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, processor = build(args.model, args.config)
    times = measure(model, processor, args.steps, args.warmup, dtype=getattr(torch, args.dtype), compile=args.compile)
    best, median = min(times), statistics.median(times)
    print(
        f"{args.threads} thread(s), {args.dtype}{', compiled' if args.compile else ''}, {args.steps} steps: best {best * 1e3:.1f} ms ({1 / best:.0f} fps), "
        f"median {median * 1e3:.1f} ms ({1 / median:.0f} fps)"
    )


if __name__ == "__main__":
    main()
