"""Tracking sequences as Hugging Face ``datasets``: export to a Parquet folder, and read a Dataset back
as a [`SequenceSource`].

One row per sequence: ``sequence`` (string), ``frames`` (``List(Image())``),
``boxes`` (``List(List(float32, length=4))``, ``x, y, w, h`` in pixels) and ``visible`` (``List(bool)``).
An exported folder loads offline with ``datasets.load_dataset(folder, split=...)``; it has the layout of
a Hub dataset repository, so the same folder can be uploaded as is.
"""

import collections.abc
import math
import os
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
from datasets import Dataset, Features, Image, List, Value
from datasets.table import embed_table_storage
from huggingface_hub import DatasetCard, DatasetCardData

from .sources import FrameRef, Sequence, SequenceSource

TRACKING_FEATURES = Features(
    {
        "sequence": Value("string"),
        "frames": List(Image()),
        "boxes": List(List(Value("float32"), length=4)),
        "visible": List(Value("bool")),
    }
)
DEFAULT_MAX_SHARD_SIZE = 500 * 2**20  # bytes of frame files per Parquet shard, as push_to_hub

_CARD_BODY = """
# Tracking sequences

One row per sequence: `sequence` (name), `frames` (images), `boxes` (`x, y, w, h` in pixels, NaN where a
frame has no annotation) and `visible` (the source dataset's visibility rule). Written by `odtrack_hf`;
read it with `datasets.load_dataset(<this folder>, split=...)` and `odtrack_hf.data.DatasetSource`.
"""


def sequences_to_dataset(sequences: collections.abc.Iterable[Sequence]) -> Dataset:
    """An in-memory ``Dataset`` with one row per sequence; frames are kept as references (paths or
    ``{"bytes", "path"}`` dicts), not read.

    Boxes are stored as float32. Names, classes and attributes other than these four columns are not kept.
    """
    columns: dict[str, list] = {name: [] for name in TRACKING_FEATURES}
    for sequence in sequences:
        columns["sequence"].append(sequence.name)
        columns["frames"].append(list(sequence.frames))
        columns["boxes"].append(sequence.boxes.astype(np.float32).tolist())
        columns["visible"].append(sequence.visible.tolist())
    return Dataset.from_dict(columns, features=TRACKING_FEATURES)


def export_parquet(
    sequences: collections.abc.Iterable[Sequence],
    directory: str | os.PathLike,
    split: str = "train",
    embed_frames: bool = True,
    max_shard_size: int = DEFAULT_MAX_SHARD_SIZE,
) -> Path:
    """Write ``sequences`` as split ``split`` of a Parquet dataset folder that ``load_dataset`` reads.

    Writes ``<directory>/data/<split>-NNNNN-of-MMMMM.parquet`` (replacing an earlier export of the same
    split) and a ``README.md`` whose YAML lists every split in ``data/``, so several splits can be
    exported into one folder.

    Args:
        sequences: the sequences, e.g. a [`SequenceSource`].
        directory: the output folder.
        split: split name (letters, digits and underscores, as ``datasets`` requires).
        embed_frames: store the image bytes in the Parquet files (a self-contained copy, as
            ``push_to_hub`` does); ``False`` stores only the frame paths, which must stay valid.
        max_shard_size: approximate bytes of frame files per shard; a shard is embedded in memory.

    Returns:
        the output folder.
    """
    if not re.fullmatch(r"\w+(\.\w+)*", split):
        raise ValueError(f"split {split!r} must match \\w+(\\.\\w+)* (e.g. 'train', 'val'), as datasets requires.")
    sequences = list(sequences)
    if not sequences:
        raise ValueError("No sequences to export.")
    num_shards = 1
    if embed_frames:
        total = sum(_frame_size(frame) for sequence in sequences for frame in sequence.frames)
        num_shards = min(len(sequences), max(1, math.ceil(total / max_shard_size)))
    dataset = sequences_to_dataset(sequences)
    data_dir = Path(directory) / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    for stale in data_dir.glob(f"{split}-*.parquet"):
        stale.unlink()
    for index in range(num_shards):
        shard = dataset.shard(num_shards, index, contiguous=True)
        if embed_frames:
            # the same step push_to_hub takes: replace every image path by the file's bytes
            shard = shard.with_format("arrow").map(
                embed_table_storage, batched=True, keep_in_memory=True, desc="Embedding frames"
            )
        shard.to_parquet(str(data_dir / f"{split}-{index:05d}-of-{num_shards:05d}.parquet"))
    _write_card(Path(directory))
    return Path(directory)


def _frame_size(frame: FrameRef) -> int:
    if isinstance(frame, dict):
        return len(frame["bytes"]) if frame["bytes"] is not None else os.path.getsize(frame["path"])
    return os.path.getsize(frame)


def _write_card(directory: Path) -> None:
    """README.md whose ``configs`` YAML maps every split found in ``data/`` to its files."""
    splits = sorted({path.name.rsplit("-", 3)[0] for path in (directory / "data").glob("*.parquet")})
    card_data = DatasetCardData(
        configs=[
            {"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}
        ],
        tags=["object-tracking"],
    )
    DatasetCard(f"---\n{card_data.to_yaml()}\n---\n{_CARD_BODY}").save(directory / "README.md")


class _ArrowFrames(collections.abc.Sequence):
    """The frames of one row as a list of ``{"bytes", "path"}`` dicts, read one at a time from Arrow."""

    def __init__(self, frames: pa.StructArray):
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index: int) -> FrameRef:
        return self._frames[index].as_py()


class DatasetSource(SequenceSource):
    """The sequences of a ``datasets.Dataset`` with the tracking schema, as a [`SequenceSource`].

    Rows are read as Arrow (memory-mapped for datasets loaded from disk), and a frame's bytes are only
    read and decoded when [`Sequence.load_frame`] asks for it, so long sequences stay cheap to sample.
    The frames are the raw ``{"bytes", "path"}`` dicts that ``Image(decode=False)`` would give.

    Args:
        dataset: a Dataset with the columns of ``TRACKING_FEATURES``.
        dataset_name: name reported as ``dataset_name``.
    """

    def __init__(self, dataset: Dataset, dataset_name: str = "hf"):
        missing = [name for name in TRACKING_FEATURES if name not in dataset.column_names]
        if missing:
            raise ValueError(
                f"The dataset lacks the columns {missing}; expected one row per sequence with the features "
                f"{TRACKING_FEATURES}."
            )
        self.dataset_name = dataset_name
        self._rows = dataset.with_format("arrow")
        self.names = self._rows["sequence"].to_pylist()

    def _load(self, index: int) -> Sequence:
        row = self._rows[index]  # a one-row Arrow table: no frame bytes are copied yet
        return Sequence(
            self.names[index],
            _ArrowFrames(row.column("frames")[0].values),
            np.asarray(row.column("boxes")[0].as_py(), dtype=np.float64).reshape(-1, 4),
            np.asarray(row.column("visible")[0].as_py(), dtype=bool),
        )


__all__ = ["DEFAULT_MAX_SHARD_SIZE", "TRACKING_FEATURES", "DatasetSource", "export_parquet", "sequences_to_dataset"]
