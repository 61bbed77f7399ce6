"""Per-frame search crops + normalisation: the OpenCV crop vs the batched torch crop, side by side.

Accuracy first: random boxes on three photographs (scikit-image's ``astronaut``, ``chelsea``, ``coffee``),
many of them running off the frame, cropped with factors 0.5 to 5 to sides 16 to 384 (up- and
downscaling); per case the uint8 crops of both paths are compared channel value by channel value.

Then timing: one frame (scikit-image's ``coffee`` photograph resized to 640x480 and 1280x720) and 1, 4 or 16
boxes of different sizes, some running off the frame (search crops from about 0.5x to 2.5x the
384-px output side, so both down- and upscaling). Each variant is one processor call from the
decoded ``(H, W, 3)`` uint8 numpy frame to the normalised ``(N, 3, 384, 384)`` float32 crops on the
device: ``crop_backend="opencv"`` crops box by box on the CPU and moves the uint8 crops;
``crop_backend="torch"`` moves the frame once and crops every box in one batched op there. On CUDA
every call ends with a synchronisation. Variants are timed in interleaved rounds (``_timing.py``).

    python benchmarks/crop.py --threads 1

Prints the accuracy table (crops, values compared, fraction differing, largest difference in grey
levels), then per device, frame size and object count the median ms of both paths, opencv / torch
(above 1: the torch path is faster), and the largest difference between the paths' pixel values.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np
import skimage.data
import torch
from _timing import interleaved_medians, machine_line

from odtrack_hf import ODTrackImageProcessor
from odtrack_hf.image_processing_odtrack import crop_and_resize, crop_and_resize_torch

FRAMES = ((640, 480), (1280, 720))
OBJECTS = (1, 4, 16)
SEARCH_FACTOR, SEARCH_SIZE = 5.0, 384


def boxes_for(width: int, height: int, count: int, rng: np.random.Generator) -> list[list[float]]:
    """``count`` boxes of 15 to 120 px (search windows of about 0.5x to 2.5x 384 px) anywhere in the frame."""
    sides = rng.uniform(15, 120, size=(count, 2))
    corners = rng.uniform(0, 1, size=(count, 2)) * [width - 1, height - 1] - sides / 2
    return np.concatenate([corners, sides], axis=1).tolist()


def accuracy(rng: np.random.Generator, crops_per_photo: int = 150) -> None:
    """Print how the torch crop differs from the OpenCV crop, by scaling direction and frame edges."""
    cases: dict[str, list[int]] = {}
    for name in ("astronaut", "chelsea", "coffee"):
        image = getattr(skimage.data, name)()
        height, width = image.shape[:2]
        for _ in range(crops_per_photo):
            w, h = rng.uniform(2, 250, size=2)
            box = [rng.uniform(1 - w, width - 1), rng.uniform(1 - h, height - 1), w, h]
            factor, size = float(rng.choice([0.5, 1.0, 2.0, 3.3, 5.0])), int(rng.choice([16, 37, 128, 192, 384]))
            expected, (x1, y1, side) = crop_and_resize(image, box, factor, size)
            crops, _ = crop_and_resize_torch(image, [box], factor, size)
            difference = np.abs(crops[0].permute(1, 2, 0).numpy().astype(int) - expected)
            scaling = "upscaled" if side < size else "same size" if side == size else "downscaled"
            edge = "off the frame" if min(x1, y1) < 0 or max(x1 - width, y1 - height) + side >= 0 else "inside"
            counts = cases.setdefault(f"{scaling}, {edge}", [0, 0, 0, 0])
            counts[0] += 1
            counts[1] += difference.size
            counts[2] += int((difference > 0).sum())
            counts[3] = max(counts[3], int(difference.max()))
    print("| crops | count | values compared | differing | max abs Δ (grey levels) |")
    print("|---|---|---|---|---|")
    for case, (count, values, differing, largest) in sorted(cases.items()):
        print(f"| {case} | {count} | {values} | {differing / values:.2%} | {largest} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    processor = ODTrackImageProcessor(crop_factor=SEARCH_FACTOR, output_size=SEARCH_SIZE)
    rng = np.random.default_rng(0)

    print(machine_line(args.threads))
    accuracy(rng)
    print("| device | frame | objects | opencv ms | torch ms | opencv / torch | max abs Δ pixel_values |")
    print("|---|---|---|---|---|---|---|")
    for device in devices:
        for width, height in FRAMES:
            frame = cv2.resize(skimage.data.coffee(), (width, height), interpolation=cv2.INTER_AREA)
            for count in OBJECTS:
                boxes = boxes_for(width, height, count, rng)

                def crop(backend: str, device: str = device, boxes: list = boxes, frame: np.ndarray = frame):
                    pixels = processor(frame, boxes, crop_backend=backend, device=device)["pixel_values"]
                    if device == "cuda":
                        torch.cuda.synchronize()
                    return pixels

                difference = (crop("opencv") - crop("torch")).abs().max().item()
                ms = {
                    name: seconds * 1e3
                    for name, seconds in interleaved_medians(
                        {"opencv": lambda: crop("opencv"), "torch": lambda: crop("torch")}, args.repeats
                    ).items()
                }
                print(
                    f"| {device} | {width}x{height} | {count} | {ms['opencv']:.2f} | {ms['torch']:.2f} | "
                    f"{ms['opencv'] / ms['torch']:.2f} | {difference:g} |"
                )


if __name__ == "__main__":
    main()
