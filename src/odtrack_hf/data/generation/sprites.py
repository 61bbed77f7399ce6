"""Objects cut out of the photographs: named objects with masks from the photos themselves, and
textured cut-outs of random shapes."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .photos import PHOTO_SOURCES, load_photo, load_silhouette, split_sources

if TYPE_CHECKING:
    from .pools import Pool


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


def patch_sprite(
    rng: np.random.Generator,
    pool: Pool,
    shapes: tuple[str, ...],
    source: str | None = None,
    near: tuple[int, int, int, int] | None = None,
) -> Sprite:
    """A cut-out (of a random shape in ``shapes``) of a region of a random still of ``pool``, or of
    ``source``; with ``near``, of a region next to and about as large as that one, so that it looks
    like another instance of the same thing."""
    stills = pool.stills
    source = source or stills[rng.integers(len(stills))]
    image = pool.photo(source)
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


def cutout_shapes(pool: Pool) -> tuple[str, ...]:
    """Cut-out shapes for ``pool``: the drawn ones and the pool's silhouettes."""
    return ("ellipse", "rounded_rect", "blob", *pool.silhouettes)


def sprite_sources(sprite: Sprite) -> set[str]:
    """The photo sources in ``sprite``: its photo and, for a silhouette-shaped cut-out, the silhouette."""
    shape = sprite.category.split(":")[-1]
    return {sprite.source, shape} if shape in PHOTO_SOURCES else {sprite.source}
