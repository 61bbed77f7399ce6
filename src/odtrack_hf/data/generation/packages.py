"""Objects with alpha masks and background photographs from Debian packages, found where they are
installed or extracted; each package belongs to one split, so the ``wide`` held-out set shares no
object and no background with training.

Nothing is downloaded while generating: ``python -m odtrack_hf.data.generation.packages`` (the setup
command, see ``docs/data_generation.md``) fetches the packages with ``apt-get download`` once and
extracts them under the assets folder (``$ODTRACK_ASSETS``, default ``~/.cache/odtrack-hf/assets``).
A package installed with ``apt-get install`` is found under ``/`` as well, except GCompris, whose
images live inside Qt resource files that the setup command unpacks.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import struct
import subprocess
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .photos import PHOTO_SOURCES, SPLITS

ASSETS_ENV = "ODTRACK_ASSETS"
DEFAULT_ASSETS = Path("~/.cache/odtrack-hf/assets")
SETUP_COMMAND = "python -m odtrack_hf.data.generation.packages"
# Kept for an independent evaluation: never trained, tuned or tested on (a registry entry naming one
# of them is refused at import time).
RESERVED = ("tuxpaint-stamps", "idtrackerai", "vtest.avi")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_BACKGROUND_SIDE = 1280  # wallpapers reach 5120 px; larger than any frame's camera window needs
MAX_OBJECT_SIDE = 512
MAX_OBJECT_PIXELS = 16_000_000


@dataclass(frozen=True)
class AssetPackage:
    """A Debian package whose images the ``wide`` mix uses.

    Attributes:
        name: the Debian package.
        version: the version the counts in ``docs/data_generation.md`` were made with.
        licence: its licence, as its ``copyright`` file states it.
        split: the only split that may use it.
        objects: folders (relative to the package root) whose images with alpha are objects.
        backgrounds: folders (or files) whose opaque images are backgrounds.
        rcc: its images are inside Qt resource files (``*.rcc``) that the setup command unpacks.
    """

    name: str
    version: str
    licence: str
    split: str
    objects: tuple[str, ...] = ()
    backgrounds: tuple[str, ...] = ()
    rcc: bool = False


_GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"
_OPENCV_DATA = "usr/share/doc/opencv-doc/examples/data"
# Photographs among OpenCV's sample data (not the calibration boards, drawings or the reserved video).
_OPENCV_PHOTOS = ("aero1.jpg", "aero3.jpg", "aloeL.jpg", "apple.jpg", "baboon.jpg", "basketball1.png",
                  "box_in_scene.png", "building.jpg", "butterfly.jpg", "ela_original.jpg", "fruits.jpg",
                  "graf1.png", "HappyFish.jpg", "home.jpg", "leuvenA.jpg", "licenseplate_motion.jpg",
                  "messi5.jpg", "orange.jpg", "rubberwhale1.png", "smarties.png", "squirrel_cls.jpg",
                  "starry_night.jpg", "stuff.jpg")  # fmt: skip

ASSET_PACKAGES: dict[str, AssetPackage] = {
    package.name: package
    for package in (
        AssetPackage(
            "gcompris-qt-data",
            "3.1-2",
            "mostly CC-BY-SA-3.0, public domain, CC-BY-2.0/4.0 (per file in its copyright file)",
            "train",
            objects=tuple(
                f"rcc/{activity}"
                for activity in ("details", "paintings", "lang", "babyshapes", "clickgame", "leftright")
            ),
            backgrounds=tuple(
                f"rcc/{activity}"
                for activity in (
                    "categorization",
                    "explore_monuments",
                    "explore_world_animals",
                    "explore_farm_animals",
                    "explore_world_music",
                    "erase",
                    "louis-braille",
                )
            ),  # fmt: skip
            rcc=True,
        ),
        AssetPackage(
            "plasma-workspace-wallpapers",
            "4:5.27.5-2",
            "GPL-2+ / LGPL-3 (KDE Visual Design Group and artists)",
            "train",
            backgrounds=("usr/share/wallpapers",),
        ),
        AssetPackage(
            "mate-backgrounds", "1.26.0-1", "GPL-2+, CC-BY-SA-4.0", "train", backgrounds=("usr/share/backgrounds/mate",)
        ),
        AssetPackage(
            "openclipart-png",
            "1:0.18+dfsg-19",
            "public domain (Creative Commons Public Domain Dedication)",
            "heldout",
            objects=("usr/share/openclipart/png",),
        ),
        AssetPackage(
            "opencv-doc",
            "4.6.0+dfsg-12",
            "BSD-3-Clause (OpenCV)",
            "heldout",
            backgrounds=tuple(f"{_OPENCV_DATA}/{name}" for name in _OPENCV_PHOTOS),
        ),
        AssetPackage(
            "lomiri-wallpapers-16.04",
            "20.04.0-2",
            "CC-BY-4.0, CC-BY-SA-3.0/4.0",
            "heldout",
            backgrounds=("usr/share/backgrounds",),
        ),
        AssetPackage(
            "ukui-wallpapers", "20.04.3-1.1", "CC-BY-SA-3.0", "heldout", backgrounds=("usr/share/backgrounds",)
        ),
        AssetPackage(
            "gnome-backgrounds", "43.1-1", "CC-BY-SA-3.0", "heldout", backgrounds=("usr/share/backgrounds/gnome",)
        ),
    )
}

# The Python packages of the classic photo sources belong to the split of their sources, so the
# partition covers every package the generator reads.
PYTHON_PACKAGES = {source.package: source.split for source in PHOTO_SOURCES.values() if source.split == "train"}


def package_split(package: str) -> str:
    """The split that owns ``package`` (an asset package or a Python package of the classic sources)."""
    if package in ASSET_PACKAGES:
        return ASSET_PACKAGES[package].split
    if package in PYTHON_PACKAGES:
        return PYTHON_PACKAGES[package]
    raise KeyError(f"{package!r} is not a package of the generator.")


def check_partition() -> None:
    """Refuse a registry that gives a package to two splits or names a reserved package or file."""
    for package in ASSET_PACKAGES.values():
        if package.split not in SPLITS:
            raise ValueError(f"{package.name}: split must be one of {SPLITS}, got {package.split!r}.")
        listed = " ".join((package.name, *package.objects, *package.backgrounds))
        if any(reserved in listed for reserved in RESERVED):
            raise ValueError(f"{package.name} names a reserved package or file ({', '.join(RESERVED)}).")
    shared = set(ASSET_PACKAGES) & set(PYTHON_PACKAGES)
    if shared:
        raise ValueError(f"packages registered twice: {sorted(shared)}")


check_partition()


def assets_root() -> Path:
    """The folder the setup command extracts packages into (``$ODTRACK_ASSETS`` or the default)."""
    return Path(os.environ.get(ASSETS_ENV) or DEFAULT_ASSETS).expanduser()


def package_root(package: str) -> Path:
    """Where ``package`` is: extracted under the assets folder, or installed under ``/``.

    Raises:
        FileNotFoundError: naming the package and the command that installs it.
    """
    spec = ASSET_PACKAGES[package]
    extracted = assets_root() / package
    candidates = [extracted] if spec.rcc else [extracted, Path("/")]
    for root in candidates:
        # dpkg (apt-get install, or dpkg-deb -x) always writes the package's copyright file
        if (root / "usr/share/doc" / package / "copyright").is_file():
            return root
    raise FileNotFoundError(
        f"the {package} package's images are not in {extracted}"
        + ("" if spec.rcc else " nor installed under /")
        + f": run `{SETUP_COMMAND}` (or set {ASSETS_ENV} to the folder it extracted them into)."
    )


def _images(root: Path, entries: tuple[str, ...]) -> list[str]:
    """Image files under ``entries`` (folders or files) of ``root``, relative to it, sorted."""
    found = []
    for entry in entries:
        path = root / entry
        files = [path] if path.is_file() else sorted(path.rglob("*")) if path.is_dir() else []
        found += [str(f.relative_to(root)) for f in files if f.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(set(found))


@functools.cache
def package_objects(package: str) -> tuple[str, ...]:
    """Source ids ``<package>/<path>`` of the candidate object images of ``package``."""
    spec = ASSET_PACKAGES[package]
    return tuple(f"{package}/{path}" for path in _images(package_root(package), spec.objects))


@functools.cache
def package_backgrounds(package: str) -> tuple[str, ...]:
    """Source ids ``<package>/<path>`` of the background photographs of ``package``; of a wallpaper
    shipped at several resolutions, only its largest file up to 2560 pixels wide."""
    spec = ASSET_PACKAGES[package]
    root = package_root(package)
    chosen: dict[str, tuple[int, str]] = {}
    for path in _images(root, spec.backgrounds):
        if Path(path).stem == "screenshot":  # a wallpaper's preview
            continue
        with Image.open(root / path) as image:
            width, height = image.size
        if min(width, height) < 200:
            continue
        # Plasma's wallpapers are <name>/contents/images[_dark]/<W>x<H>.<ext>: one per <name>.
        key = path.split("/contents/")[0]
        score = width if width <= 2560 else -width
        if key not in chosen or score > chosen[key][0]:
            chosen[key] = (score, path)
    return tuple(f"{package}/{path}" for _, path in sorted(chosen.values(), key=lambda item: item[1]))


def split_packages(split: str) -> list[str]:
    """The asset packages of ``split``, in registry order."""
    return [p.name for p in ASSET_PACKAGES.values() if p.split == split]


def source_package(source: str) -> str:
    """The package a source id belongs to: an asset id's first path part, or a classic source's package."""
    if source in PHOTO_SOURCES:
        return PHOTO_SOURCES[source].package
    return source.split("/", 1)[0]


def _path(source: str) -> Path:
    package, path = source.split("/", 1)
    return package_root(package) / path


@functools.lru_cache(maxsize=48)
def load_background(source: str) -> np.ndarray:
    """Background ``source`` as ``(H, W, 3)`` uint8 RGB, its longer side at most 1280 pixels."""
    with Image.open(_path(source)) as image:
        image.draft("RGB", (MAX_BACKGROUND_SIDE, MAX_BACKGROUND_SIDE))
        image = image.convert("RGB")
        image.thumbnail((MAX_BACKGROUND_SIDE, MAX_BACKGROUND_SIDE), Image.LANCZOS)
        return np.asarray(image)


@functools.lru_cache(maxsize=512)
def load_object(source: str) -> np.ndarray | None:
    """Object ``source`` as ``(H, W, 4)`` uint8 RGBA cropped to its alpha (longer side at most 512),
    or ``None`` when it is no cut-out: no alpha, or alpha covering under 5 % or over 95 % of its box,
    or a box under 24 pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(_path(source))
    except Image.DecompressionBombError:  # a few clip-art posters are gigapixel-sized
        return None
    with opened as image:
        if image.mode not in ("RGBA", "LA", "PA") and "transparency" not in image.info:
            return None
        if image.width * image.height > MAX_OBJECT_PIXELS:
            return None
        rgba = np.asarray(image.convert("RGBA"))
    alpha = rgba[:, :, 3] >= 128
    if not alpha.any():
        return None
    rows, cols = np.nonzero(alpha)
    crop = rgba[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    cover = float((crop[:, :, 3] >= 128).mean())
    if min(crop.shape[:2]) < 24 or not 0.05 <= cover <= 0.95:
        return None
    image = Image.fromarray(np.ascontiguousarray(crop), "RGBA")
    image.thumbnail((MAX_OBJECT_SIDE, MAX_OBJECT_SIDE), Image.LANCZOS)
    return np.asarray(image)


def object_category(source: str) -> str:
    """Objects of one folder of one package with the same name but for a numbered suffix (the pieces of
    one painting, the details of one monument, ``bird_01`` and ``bird_02``) are similar distractors
    for each other."""
    path = Path(source)
    stem = re.sub(r"[_-]*[a-z]?\d+$", "", path.stem) or path.stem
    return f"asset:{path.parent}/{stem}".replace(":", "_").replace("asset_", "asset:", 1)


# --- setup: fetch and extract the packages once -----------------------------------------------


def read_rcc(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """``(path, bytes)`` of every file in a Qt binary resource (``.rcc``, format versions 1-3)."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' header).")
    version, tree, data, names = struct.unpack(">IIII", blob[4:20])
    node_size = 14 if version == 1 else 22  # version 2 added a 64-bit modification time

    def name(offset: int) -> str:
        length = struct.unpack(">H", blob[names + offset : names + offset + 2])[0]
        return blob[names + offset + 6 : names + offset + 6 + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[base : base + 6])
        here = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # a directory: count and index of its first child
            count, first = struct.unpack(">II", blob[base + 6 : base + 14])
            for child in range(first, first + count):
                yield from walk(child, here)
            return
        offset = struct.unpack(">I", blob[base + 10 : base + 14])[0]
        size = struct.unpack(">I", blob[data + offset : data + offset + 4])[0]
        payload = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{here}: zstd-compressed resources are not supported.")
        yield here.lstrip("/"), zlib.decompress(payload[4:]) if flags & 1 else payload

    yield from walk(0, "")


def extract_rcc(rcc_folder: Path, out: Path) -> int:
    """Unpack the images of every ``*.rcc`` in ``rcc_folder`` into ``out/<file stem>/``; returns the count."""
    count = 0
    for rcc in sorted(rcc_folder.glob("*.rcc")):
        for path, payload in read_rcc(rcc.read_bytes()):
            if Path(path).suffix.lower() in IMAGE_SUFFIXES:
                target = out / rcc.stem / Path(path).name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)
                count += 1
    return count


def setup(root: Path, packages: list[str]) -> None:
    """Fetch ``packages`` with ``apt-get download`` and extract them under ``root/<package>/``."""
    debs = root / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for package in packages:
        target = root / package
        if target.is_dir():
            print(f"{package}: already in {target}")
            continue
        subprocess.run(["apt-get", "download", package], cwd=debs, check=True)
        deb = sorted(debs.glob(f"{package}_*.deb"))[-1]
        partial = root / f".partial-{package}"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(partial)], check=True)
        if ASSET_PACKAGES[package].rcc:
            print(f"{package}: {extract_rcc(partial / _GCOMPRIS_RCC, partial / 'rcc')} images unpacked")
        os.replace(partial, target)
        print(f"{package}: extracted into {target}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog=SETUP_COMMAND, description="Fetch and extract the Debian packages of the generator's wide mix."
    )
    parser.add_argument("--root", type=Path, default=assets_root(), help=f"assets folder (default: ${ASSETS_ENV} "
                        f"or {DEFAULT_ASSETS})")  # fmt: skip
    parser.add_argument("--packages", nargs="+", choices=list(ASSET_PACKAGES), default=list(ASSET_PACKAGES))
    args = parser.parse_args(argv)
    setup(args.root.expanduser(), args.packages)


if __name__ == "__main__":
    main()
