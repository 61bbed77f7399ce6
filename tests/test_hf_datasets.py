"""Export of sequences to a Parquet dataset folder, offline loading, and Dataset-backed sources."""

import shutil
from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from PIL import Image

from odtrack_hf.data import TRACKING_FEATURES, DatasetSource, FolderSource, export_parquet, sequences_to_dataset


@pytest.fixture
def folder(tmp_path) -> Path:
    """Two sequences of distinct 16x16 frames: PNG (lossless) so pixels survive the round trip."""
    root = tmp_path / "videos"
    for name, count, first_only in [("cat", 3, False), ("dog", 2, True)]:
        sequence = root / name
        sequence.mkdir(parents=True)
        for i in range(count):
            Image.new("RGB", (16, 16), (40 * i, 100 if name == "dog" else 0, 7)).save(sequence / f"{i:03d}.png")
        rows = ["1.5,2.25,8,4", "2,3,0,4", "3,4,8,4"][: 1 if first_only else count]
        (sequence / "groundtruth.txt").write_text("\n".join(rows) + "\n")
    return root


def load(directory: Path, tmp_path: Path, **kwargs):
    return load_dataset(str(directory), cache_dir=str(tmp_path / "hf-cache"), **kwargs)


def assert_same_sequences(source, expected) -> None:
    assert source.names == expected.names
    for got, want in zip(source, expected):
        np.testing.assert_array_equal(got.boxes, want.boxes)  # NaN rows compare equal
        np.testing.assert_array_equal(got.visible, want.visible)
        assert len(got) == len(want)
        for i in range(len(want)):
            np.testing.assert_array_equal(np.asarray(got.load_frame(i)), np.asarray(want.load_frame(i)))


def test_parquet_round_trip_embeds_frames(folder, tmp_path):
    original = FolderSource(folder)
    expected = [original[i] for i in range(len(original))]  # decoded below, before the files go
    pixels = [[np.asarray(s.load_frame(i)) for i in range(len(s))] for s in expected]
    out = export_parquet(original, tmp_path / "export")
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    shutil.rmtree(folder)  # the export must not need the original files

    dataset = load(out, tmp_path, split="train")
    assert dataset.features == TRACKING_FEATURES
    source = DatasetSource(dataset)
    assert source.names == ["cat", "dog"]
    for got, want, want_pixels in zip(source, expected, pixels):
        np.testing.assert_array_equal(got.boxes, want.boxes)
        np.testing.assert_array_equal(got.visible, want.visible)
        assert [np.asarray(got.load_frame(i)).tolist() for i in range(len(got))] == [p.tolist() for p in want_pixels]
    dog = source[1]
    assert np.isnan(dog.boxes[1]).all() and dog.visible.tolist() == [True, False]
    assert dog.frames[0]["bytes"] is not None  # a raw image dict: decoded only by load_frame


def test_export_several_splits_and_shards_into_one_folder(folder, tmp_path):
    source = FolderSource(folder)
    out = tmp_path / "export"
    export_parquet(source, out, split="train", max_shard_size=1)  # one shard per sequence
    export_parquet([source[1]], out, split="validation")
    files = sorted(p.name for p in (out / "data").iterdir())
    assert files == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
        "validation-00000-of-00001.parquet",
    ]
    readme = (out / "README.md").read_text()
    assert "path: data/train-*" in readme and "path: data/validation-*" in readme
    splits = load(out, tmp_path)
    assert list(splits["train"]["sequence"]) == ["cat", "dog"]
    assert list(splits["validation"]["sequence"]) == ["dog"]
    # re-exporting a split replaces its shards
    export_parquet([source[0]], out, split="train")
    assert sorted(p.name for p in (out / "data").glob("train-*")) == ["train-00000-of-00001.parquet"]


def test_export_without_embedding_keeps_paths(folder, tmp_path):
    out = export_parquet(FolderSource(folder), tmp_path / "export", embed_frames=False)
    source = DatasetSource(load(out, tmp_path, split="train"))
    frame = source[0].frames[2]
    assert frame["bytes"] is None and frame["path"] == str(folder / "cat" / "002.png")
    assert_same_sequences(source, FolderSource(folder))


def test_in_memory_dataset_as_a_source(folder):
    original = FolderSource(folder)
    assert_same_sequences(DatasetSource(sequences_to_dataset(original)), original)


def test_errors(folder, tmp_path):
    dataset = sequences_to_dataset(FolderSource(folder)).remove_columns("visible")
    with pytest.raises(ValueError, match=r"lacks the columns \['visible'\]"):
        DatasetSource(dataset)
    with pytest.raises(ValueError, match="must match"):
        export_parquet(FolderSource(folder), tmp_path / "export", split="vot-train")
    with pytest.raises(ValueError, match="No sequences"):
        export_parquet([], tmp_path / "export")
