"""Box jitter, crop-coordinate labels and photometric augmentation of ODTrack training
(docs/official-implementation.md, "Training clips and losses").

Pure functions: every random draw comes from the ``numpy`` generator passed in, so a sample is a
function of its generator alone (see [`CausalClipSampler.generator`]).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

FLIP_MODES = ("clip", "crop")


@dataclass
class ClipAugmentation:
    """Augmentation settings of a training clip (official values by default, except ``flip_mode``).

    Attributes:
        template_center_jitter / template_scale_jitter: box jitter of the template crops (official 0, 0).
        search_center_jitter / search_scale_jitter: box jitter of the search crops (official 4.5, 0.5).
        grayscale_probability: chance that the whole clip is turned grey (official 0.05).
        brightness_jitter: each crop's brightness is scaled by ``U(1 - b, 1 + b)`` (official 0.2).
        flip_probability: chance of a horizontal flip.
        flip_mode: ``"clip"`` flips every crop of a clip together (templates and search frames stay
            consistent); ``"crop"`` flips each crop independently, which is what the official
            pipeline amounts to (a clip-wide flip XOR an independent per-crop flip, both at 0.5).
    """

    template_center_jitter: float = 0.0
    template_scale_jitter: float = 0.0
    search_center_jitter: float = 4.5
    search_scale_jitter: float = 0.5
    grayscale_probability: float = 0.05
    brightness_jitter: float = 0.2
    flip_probability: float = 0.5
    flip_mode: str = "clip"

    def __post_init__(self):
        if self.flip_mode not in FLIP_MODES:
            raise ValueError(f"flip_mode must be one of {FLIP_MODES}, got {self.flip_mode!r}.")
        for name in ("grayscale_probability", "flip_probability"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}.")
        if not 0.0 <= self.brightness_jitter < 1.0:
            raise ValueError(f"brightness_jitter must lie in [0, 1), got {self.brightness_jitter}.")


def jitter_box(
    box_xywh: Sequence[float], center_jitter: float, scale_jitter: float, rng: np.random.Generator
) -> np.ndarray:
    """Official ``_get_jittered_box``: the box the crop is centred on.

    ``size' = (w, h) * exp(N(0, 1) * scale_jitter)`` per side; the centre moves by
    ``sqrt(w' * h') * center_jitter * (U[0, 1) - 0.5)`` per axis. Jitter 0 returns the box unchanged.

    Returns:
        ``(4,)`` float64 ``(x, y, w, h)``.
    """
    box = np.asarray(box_xywh, dtype=np.float64)
    size = box[2:] * np.exp(rng.standard_normal(2) * scale_jitter)
    max_offset = np.sqrt(size.prod()) * center_jitter
    centre = box[:2] + 0.5 * box[2:] + max_offset * (rng.random(2) - 0.5)
    return np.concatenate([centre - 0.5 * size, size])


def box_to_crop(box_xywh: Sequence[float], crop_box_xywh: Sequence[float], crop_side: int, output_size: int) -> np.ndarray:
    """Official ``transform_image_to_crop`` (normalised): a box in image pixels → in the crop made around
    ``crop_box_xywh`` with side ``crop_side``, resized to ``output_size``.

    The crop's centre pixel is taken as ``(output_size - 1) / 2`` and the rounding of the crop corner
    is ignored, as in the official labels (and in the tracker's map-back), so the box is placed within
    ``0.5 + 0.5 * output_size / crop_side`` output pixels of where the crop shows it.

    Returns:
        ``(4,)`` float64 ``(x, y, w, h)`` divided by ``output_size``: the crop is ``[0, 1]``, and boxes
        may extend beyond it.
    """
    box, crop_box = np.asarray(box_xywh, dtype=np.float64), np.asarray(crop_box_xywh, dtype=np.float64)
    resize_factor = output_size / crop_side
    centre = (output_size - 1) / 2 + (box[:2] + 0.5 * box[2:] - crop_box[:2] - 0.5 * crop_box[2:]) * resize_factor
    size = box[2:] * resize_factor
    return np.concatenate([centre - 0.5 * size, size]) / output_size


def crop_has_content(
    window: tuple[int, int, int], image_size: tuple[int, int], output_size: int, stride: int
) -> bool:
    """Whether a crop keeps some image on the model's token grid (the official validity check,
    docs/official-implementation.md, "Training clips and losses").

    The official code rejects a sample when the crop's padding mask, resized like the crop (bilinear,
    any padding contribution counts) and then sampled at every ``stride``-th pixel, is padding
    everywhere. The image part of the window is a rectangle, so this is checked per axis.

    Args:
        window: ``(x1, y1, side)`` of the crop in the image, as ``crop_and_resize`` returns it.
        image_size: ``(height, width)`` of the image.
        output_size: side of the resized crop.
        stride: patch size of the model (the mask is sampled at pixels ``0, stride, 2 * stride, ...``).
    """
    x1, y1, side = window
    height, width = image_size
    # sample points of the token grid, in window pixels (OpenCV's half-pixel mapping, border clamped)
    points = np.clip((np.arange(0, output_size, stride) + 0.5) * side / output_size - 0.5, 0, side - 1)
    for start, extent in ((x1, width), (y1, height)):
        # the image covers window pixels [first, last]; the official crop never reads the last image row/column
        first, last = max(0, -start), min(side, extent - 1 - start) - 1
        inside = (np.floor(points) >= first) & (np.ceil(points) <= last)
        if not inside.any():
            return False
    return True


def to_grayscale(crop: np.ndarray) -> np.ndarray:
    """An RGB uint8 crop as grey in all three channels (official ``ToGrayscale``)."""
    return np.repeat(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def to_tensor_with_brightness(crop: np.ndarray, brightness: float) -> torch.Tensor:
    """Official ``ToTensorAndJitter``: HWC uint8 → CHW float32 ``crop * brightness / 255`` clamped to [0, 1]."""
    return (torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float() * (brightness / 255.0)).clamp_(0.0, 1.0)


def flip_crop(crop: torch.Tensor, box_xywh: np.ndarray | None) -> tuple[torch.Tensor, np.ndarray | None]:
    """Mirror a ``(3, S, S)`` crop left-right, and its normalised ``(x, y, w, h)`` box (``x → 1 - x - w``)."""
    if box_xywh is not None:
        box_xywh = np.array([1.0 - box_xywh[0] - box_xywh[2], box_xywh[1], box_xywh[2], box_xywh[3]])
    return crop.flip(-1), box_xywh


__all__ = [
    "FLIP_MODES",
    "ClipAugmentation",
    "box_to_crop",
    "crop_has_content",
    "flip_crop",
    "jitter_box",
    "to_grayscale",
    "to_tensor_with_brightness",
]
