"""Smooth paths through knots and layers: a sprite moved, scaled, stretched and rotated along them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .sprites import Sprite


class KnotPath:
    """A smooth function of (fractional) frame time through knots; shape-preserving (PCHIP), so
    equal neighbouring knots hold the value and the path never overshoots them."""

    def __init__(self, times: np.ndarray, values: np.ndarray):
        from scipy.interpolate import PchipInterpolator

        times = np.asarray(times, dtype=float)
        values = np.asarray(values, dtype=float)
        order = np.argsort(times, kind="stable")
        times, keep = np.unique(times[order], return_index=True)
        values = values[order][keep]
        if len(times) == 1:
            times, values = np.array([0.0, 1.0]), np.concatenate([values, values])
        self._range = (times[0], times[-1])
        self._interp = PchipInterpolator(times, values, axis=0)
        self._memo: dict[float, np.ndarray] = {}  # rendering asks for the same times many times

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """The value at ``t`` (clamped to the knots' time range); treat the result as read-only."""
        if isinstance(t, (int, float)):
            if t not in self._memo:
                self._memo[t] = self._interp(min(max(t, self._range[0]), self._range[1]))
            return self._memo[t]
        return self._interp(np.clip(t, *self._range))


@dataclass(frozen=True)
class Bend:
    """A non-rigid deformation: every row of the sprite shifts sideways by a travelling sine wave
    (a swaying, wriggling or waving object), whose amplitude swings between 0 and ``pixels`` with a
    period of ``swing`` frames.

    Attributes:
        pixels: largest shift, in pixels of the prepared sprite.
        waves: sine periods over the sprite's height.
        speed: phase change per frame, radians.
        swing: frames per cycle of the amplitude (a pose switching back and forth).
        phase: phase at frame 0.
    """

    pixels: float
    waves: float
    speed: float
    swing: float
    phase: float

    def shift(self, t: float, height: int) -> np.ndarray:
        """``(height,)`` sideways shift of each row at time ``t``, in pixels."""
        rows = (np.arange(height) + 0.5) / height
        strength = self.pixels * math.sin(math.pi * t / self.swing) ** 2
        return strength * np.sin(2 * math.pi * self.waves * rows + self.phase + self.speed * t)

    def apply(self, image: Image.Image, t: float) -> Image.Image:
        """``image`` (RGBA) with its rows shifted for time ``t`` (bilinear)."""
        from scipy import ndimage

        pixels = np.asarray(image, dtype=np.float32)
        height, width = pixels.shape[:2]
        rows, cols = np.mgrid[:height, :width].astype(np.float32)
        cols -= self.shift(t, height)[:, None].astype(np.float32)
        warped = np.stack(
            [ndimage.map_coordinates(pixels[:, :, c], [rows, cols], order=1, cval=0.0) for c in range(4)], axis=2
        )
        return Image.fromarray(np.clip(np.round(warped), 0, 255).astype(np.uint8), "RGBA")


@dataclass
class Layer:
    """A sprite resampled for one sequence and its motion.

    ``image`` is the prepared RGBA sprite, ``size`` its object size ``sqrt(alpha area)`` in pixels and
    ``hull`` the convex hull of its mask (pixel-corner coordinates), whose image under the layer's
    affine map gives the exact whole-object box. ``size_path`` is the object size in frame pixels.
    """

    role: str
    sprite: Sprite
    image: Image.Image
    hull: np.ndarray
    size: float
    centre: KnotPath
    size_path: KnotPath
    log_aspect: KnotPath
    angle: KnotPath
    exposure: float = 0.0
    bend: Bend | None = None
    _bent: dict[float, Image.Image] = field(default_factory=dict, repr=False)

    def sprite_at(self, t: float) -> Image.Image:
        """The sprite image at time ``t``: bent when the layer deforms, else the prepared image."""
        if self.bend is None:
            return self.image
        if t not in self._bent:  # rendering and ground truth ask for the same times again
            if len(self._bent) > 16:
                self._bent.clear()
            self._bent[t] = self.bend.apply(self.image, t)
        return self._bent[t]

    def affine(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """``(M, c)``: frame point = ``c + M @ (sprite point - sprite centre)`` at time ``t``."""
        scale = float(self.size_path(t)) / self.size
        aspect = math.exp(float(self.log_aspect(t)))
        angle = float(self.angle(t))
        cos, sin = math.cos(angle), math.sin(angle)
        sx, sy = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
        return np.array([[cos * sx, -sin * sy], [sin * sx, cos * sy]]), np.asarray(self.centre(t), dtype=float)

    def _to_frame(self, points: np.ndarray, t: float) -> np.ndarray:
        matrix, centre = self.affine(t)
        half = np.array(self.image.size, dtype=float) / 2
        return (points - half) @ matrix.T + centre

    def box(self, t: float) -> np.ndarray:
        """Whole-object box ``(x0, y0, x1, y1)`` at time ``t``, unclipped."""
        hull = self.hull if self.bend is None else _hull(np.asarray(self.sprite_at(t))[:, :, 3] >= 128)
        points = self._to_frame(hull, t)
        return np.concatenate([points.min(axis=0), points.max(axis=0)])

    def footprint(self, t: float) -> np.ndarray:
        """Box ``(x0, y0, x1, y1)`` of the whole transformed sprite rectangle."""
        w, h = self.image.size
        points = self._to_frame(np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=float), t)
        return np.concatenate([points.min(axis=0), points.max(axis=0)])

    def draw(self, t: float, window: tuple[int, int, int, int]) -> Image.Image:
        """The layer at time ``t`` resampled into frame window ``(x0, y0, x1, y1)`` as RGBA."""
        matrix, centre = self.affine(t)
        inverse = np.linalg.inv(matrix)
        half = np.array(self.image.size, dtype=float) / 2
        offset = half + inverse @ (np.array(window[:2], dtype=float) - centre)
        data = (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])
        size = (window[2] - window[0], window[3] - window[1])
        return self.sprite_at(t).transform(size, Image.AFFINE, data, resample=Image.BILINEAR)

    def render(self, t: float, width: int, height: int) -> tuple[tuple[int, int, int, int], Image.Image] | None:
        """``(window, RGBA image)`` of the layer at time ``t``, cut to the frame, with motion blur (the
        average over the exposure) where ``exposure > 0``; ``None`` when it is off-frame."""
        times = [t]
        if self.exposure > 0:
            start, end = self.centre(t - self.exposure / 2), self.centre(t + self.exposure / 2)
            steps = int(min(12, np.hypot(*(end - start)) // 1.5))
            if steps > 1:
                times = list(t + self.exposure * (np.arange(steps) / (steps - 1) - 0.5))
        boxes = np.array([self.footprint(s) for s in times])
        x0, y0 = np.floor(boxes[:, :2].min(axis=0)).astype(int)
        x1, y1 = np.ceil(boxes[:, 2:].max(axis=0)).astype(int)
        window = (max(int(x0), 0), max(int(y0), 0), min(int(x1), width), min(int(y1), height))
        if window[2] <= window[0] or window[3] <= window[1]:
            return None
        if len(times) == 1:
            return window, self.draw(t, window)
        # Motion blur: average the sub-exposures with premultiplied alpha.
        colour = np.zeros((window[3] - window[1], window[2] - window[0], 3), np.float32)
        alpha = np.zeros(colour.shape[:2], np.float32)
        for s in times:
            sample = np.asarray(self.draw(s, window), dtype=np.float32)
            colour += sample[:, :, :3] * sample[:, :, 3:]
            alpha += sample[:, :, 3]
        colour /= np.maximum(alpha, 1e-3)[:, :, None]
        rgba = np.dstack([colour, alpha / len(times)])
        return window, Image.fromarray(np.clip(np.round(rgba), 0, 255).astype(np.uint8), "RGBA")


def _hull(mask: np.ndarray) -> np.ndarray:
    """Convex hull vertices ``(K, 2)`` (x, y) of the pixel squares of ``mask``."""
    from scipy import ndimage
    from scipy.spatial import ConvexHull

    edge = mask & ~ndimage.binary_erosion(mask)
    rows, cols = np.nonzero(edge)
    corners = np.concatenate([np.stack([cols + dx, rows + dy], axis=1) for dx in (0, 1) for dy in (0, 1)])
    corners = corners.astype(float)
    return corners[ConvexHull(corners).vertices]


def prepare_sprite(
    sprite: Sprite, max_size: float, flip: bool, gain: np.ndarray | None = None
) -> tuple[Image.Image, float]:
    """Resample ``sprite`` so that its object size (``sqrt`` of the alpha area) is about ``max_size``
    pixels, at least 8 (never enlarged: the affine warp enlarges); returns ``(RGBA image, size)``."""
    rgba = sprite.rgba[:, ::-1] if flip else sprite.rgba
    if gain is not None:
        rgba = rgba.copy()
        rgba[:, :, :3] = np.clip(rgba[:, :, :3] * gain, 0, 255)
    image = Image.fromarray(np.ascontiguousarray(rgba), "RGBA")
    size = math.sqrt(float(sprite.rgba[:, :, 3].sum()) / 255)
    factor = min(1.0, max(max_size, 8.0) / size)
    if factor < 1.0:
        w, h = image.size
        image = image.resize((max(2, round(w * factor)), max(2, round(h * factor))), Image.LANCZOS)
    return image, math.sqrt(float(np.asarray(image)[:, :, 3].sum()) / 255)


def make_layer(
    role: str,
    sprite: Sprite,
    prepared: tuple[Image.Image, float],
    centre: KnotPath,
    size: KnotPath,
    log_aspect: KnotPath,
    angle: KnotPath,
    exposure: float = 0.0,
    bend: Bend | None = None,
) -> Layer:
    """A [`Layer`] of a sprite prepared by [`prepare_sprite`], with its mask's convex hull; a bending
    layer's sprite gets side margins that its bends move into."""
    image, sprite_size = prepared
    if bend is not None:
        margin = math.ceil(bend.pixels) + 1
        padded = Image.new("RGBA", (image.size[0] + 2 * margin, image.size[1]))
        padded.paste(image, (margin, 0))
        image = padded
    hull = _hull(np.asarray(image)[:, :, 3] >= 128)
    return Layer(role, sprite, image, hull, sprite_size, centre, size, log_aspect, angle, exposure, bend)
