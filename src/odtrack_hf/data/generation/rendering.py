"""Rendering a plan into frames, with the target's ground truth in each."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from .planning import SequencePlan


@dataclass(frozen=True)
class FrameTruth:
    """The target's ground truth in one rendered frame.

    Attributes:
        box: whole-object box ``(x0, y0, x1, y1)`` in pixels, unclipped (may lie off-frame).
        size: object size ``sqrt(area)`` in pixels.
        in_frame: fraction of the object's area inside the frame.
        visible: fraction of the object's area inside the frame and not covered by layers in front.
        blur: length in pixels of the target's motion-blur streak.
        gain: mean brightness gain on the target (global and target lighting).
        distractors_in_view: distractors with at least half their area in the frame.
    """

    box: np.ndarray
    size: float
    in_frame: float
    visible: float
    blur: float
    gain: float
    distractors_in_view: int


@dataclass(frozen=True)
class Shade:
    """Light that varies across the frame and moves: a soft band along ``normal`` whose centre moves
    along ``offsets`` (pixels along the normal per frame). A shadow band darkens the scene by up to
    ``depth``; a light band (``light``) lights a scene dimmed to ``1 - depth`` back up.
    """

    normal: tuple[float, float]
    offsets: np.ndarray
    width: float
    depth: float
    light: bool

    def gain(self, t: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Brightness gain at pixel coordinates ``(x, y)`` (broadcast) at frame ``t``."""
        band = np.exp(-(((x * self.normal[0] + y * self.normal[1] - self.offsets[t]) / self.width) ** 2))
        return (1 - self.depth) + 1.1 * self.depth * band if self.light else 1 - self.depth * band

    def apply(self, frame: Image.Image, t: int) -> Image.Image:
        """``frame`` lit by the shade at frame ``t``."""
        rows, cols = np.mgrid[: frame.height, : frame.width].astype(np.float32)
        gain = self.gain(t, cols + 0.5, rows + 0.5)
        pixels = np.asarray(frame, dtype=np.float32) * gain[:, :, None]
        return Image.fromarray(np.clip(np.round(pixels), 0, 255).astype(np.uint8))


def _lut(gain: np.ndarray, alpha: bool = False) -> list[int]:
    """A ``point`` table that multiplies each colour band by ``gain`` (and keeps alpha)."""
    ramp = np.arange(256, dtype=np.float32)
    tables = [np.clip(np.round(ramp * g), 0, 255) for g in gain] + ([ramp] if alpha else [])
    return np.concatenate(tables).astype(np.uint8).tolist()


def _attenuate(cover: np.ndarray, cover_window: tuple[int, ...], alpha: np.ndarray, window: tuple[int, ...]) -> None:
    """Multiply ``cover`` (over the target's window) by ``1 - alpha`` of a layer in front, where they overlap."""
    x0, y0 = max(cover_window[0], window[0]), max(cover_window[1], window[1])
    x1, y1 = min(cover_window[2], window[2]), min(cover_window[3], window[3])
    if x1 > x0 and y1 > y0:
        cover[y0 - cover_window[1] : y1 - cover_window[1], x0 - cover_window[0] : x1 - cover_window[0]] *= (
            1 - alpha[y0 - window[1] : y1 - window[1], x0 - window[0] : x1 - window[0]]
        )


def render_frames(plan: SequencePlan, draw_target: bool = True) -> Iterator[tuple[Image.Image, FrameTruth]]:
    """Render the frames of ``plan`` in order, each with the target's [`FrameTruth`].

    With ``draw_target=False`` the target is left out and nothing else changes, so the difference
    between the two renderings is exactly the target's pixels.
    """
    size = (plan.width, plan.height)
    target = plan.layers[plan.target]
    for t in range(plan.num_frames):
        frame = plan.background.frame(t, size)
        target_alpha = cover = target_window = None
        distractors = 0
        for k, layer in enumerate(plan.layers):
            rendered = layer.render(float(t), plan.width, plan.height)
            if rendered is None:
                continue
            window, patch = rendered
            alpha = np.asarray(patch.getchannel("A"), dtype=np.float32) / 255
            if layer.role == "distractor" and alpha.sum() >= 0.5 * float(layer.size_path(t)) ** 2:
                distractors += 1
            if k == plan.target:
                target_alpha, target_window, cover = alpha, window, np.ones_like(alpha)
                if plan.target_lighting is not None:
                    patch = patch.point(_lut(plan.target_lighting[t], alpha=True))
                if not draw_target:
                    continue
            elif cover is not None:
                _attenuate(cover, target_window, alpha, window)
            frame.paste(patch, window[:2], patch)
        if plan.lighting is not None:
            frame = frame.point(_lut(plan.lighting[t]))
        if plan.shade is not None:
            frame = plan.shade.apply(frame, t)
        area = float(target.size_path(t)) ** 2
        in_frame = visible = 0.0
        if target_alpha is not None:
            in_frame = min(1.0, float(target_alpha.sum()) / area)
            visible = min(1.0, float((target_alpha * cover).sum()) / area)
        half = target.exposure / 2
        blur = float(np.hypot(*(target.centre(t + half) - target.centre(t - half)))) if half else 0.0
        gain = math.prod(float(g[t].mean()) for g in (plan.lighting, plan.target_lighting) if g is not None)
        if plan.shade is not None:
            centre = target.centre(float(t))
            gain *= float(plan.shade.gain(t, centre[0], centre[1]))
        truth = FrameTruth(target.box(float(t)), math.sqrt(area), in_frame, visible, blur, gain, distractors)
        yield frame, truth
