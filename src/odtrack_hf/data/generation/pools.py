"""The pool a sequence draws its target, distractors, occluders, clutter and background from.

``classic`` is the generator's original pool: the photo sources of the split (``photos``). ``wide``
adds breadth: for ``train`` the classic training sources plus the objects and backgrounds of the
training asset packages; for ``heldout`` only the held-out asset packages, so that no object and no
background of the held-out set comes from a package used in training (``packages``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .packages import load_background, load_object, object_category, package_backgrounds, package_objects
from .packages import split_packages as asset_packages_of
from .photos import PHOTO_SOURCES, check_split, load_photo, split_sources
from .sprites import Sprite, object_sprites

MIXES = ("classic", "wide")


@dataclass(frozen=True)
class AssetObject:
    """An object image of an asset package, loaded when first drawn."""

    name: str
    category: str


@dataclass(frozen=True)
class Pool:
    """What the sequences of one split and mix may use.

    Attributes:
        split: the split.
        mix: ``"classic"`` or ``"wide"``.
        stills: ids of the photographs for backgrounds and textured cut-outs.
        videos: ids of the videos for backgrounds.
        silhouettes: ids of the silhouettes for cut-out shapes.
        objects: the named objects (sprites, or asset objects loaded by [`Pool.sprite`]).
    """

    split: str
    mix: str
    stills: tuple[str, ...]
    videos: tuple[str, ...]
    silhouettes: tuple[str, ...]
    objects: tuple[Sprite | AssetObject, ...]

    def photo(self, name: str) -> np.ndarray:
        """The still ``name`` as ``(H, W, 3)`` uint8 RGB."""
        return load_photo(name) if name in PHOTO_SOURCES else load_background(name)

    def sprite(self, entry: Sprite | AssetObject) -> Sprite | None:
        """The sprite of an object entry; ``None`` for an asset image that is no usable cut-out."""
        if isinstance(entry, Sprite):
            return entry
        rgba = load_object(entry.name)
        return None if rgba is None else Sprite(entry.name, entry.category, entry.name, rgba)


@functools.cache
def pool_for(split: str, mix: str = "classic") -> Pool:
    """The pool of ``split`` in ``mix`` (asset packages must be set up for ``wide``)."""
    check_split(split)
    if mix not in MIXES:
        raise ValueError(f"mix must be one of {', '.join(MIXES)}, got {mix!r}.")
    classic = mix == "classic" or split == "train"
    stills = tuple(split_sources(split, "still")) if classic else ()
    videos = tuple(split_sources(split, "video")) if classic else ()
    silhouettes = tuple(split_sources(split, "silhouette")) if classic else ()
    objects: tuple[Sprite | AssetObject, ...] = object_sprites(split) if classic else ()
    if mix == "wide":
        packages = asset_packages_of(split)
        stills += tuple(source for package in packages for source in package_backgrounds(package))
        objects += tuple(
            AssetObject(source, object_category(source)) for package in packages for source in package_objects(package)
        )
    return Pool(split, mix, stills, videos, silhouettes, objects)
