"""Benchmark files: which reader opens a dataset, and the official result and submission formats.

A run folder ``OUT`` holds::

    OUT/results/<seq>.txt          one box per frame, x<TAB>y<TAB>w<TAB>h as integers (the official tracker's
                                   ``astype(int)`` files; frame 0 holds the initial box)
    OUT/results/<seq>_time.txt     seconds per frame of the tracker step
    OUT/timing/<seq>.json          frames, tracker seconds and wall-clock seconds including frame decoding
    OUT/metrics.json               scores (written by :mod:`odtrack_hf.evaluation.runner`)
    OUT/attributes.md              per-attribute table (datasets with attributes)
    OUT/plots/*.png                success, precision and normalised-precision plots
    OUT/got10k_submission/ + .zip  GOT-10k: <seq>/<seq>_001.txt (comma-separated) and <seq>/<seq>_time.txt
    OUT/trackingnet_submission.zip TrackingNet: <seq>.txt (comma-separated) at the top of the archive

Every file is written to a temporary name and renamed, so a crash leaves no half file, and nothing is ever
deleted (the official submission converters delete the result folders).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..utils import write_atomic
from .metrics import read_results

if TYPE_CHECKING:
    from ..data.sources import FileSource
    from ..data.sources import Sequence as TrackingSequence

DATASETS: tuple[str, ...] = ("got10k", "lasot", "lasot_ext", "trackingnet", "otb", "tnl2k", "nfs", "uav", "folder")
# LaSOT toolkit attribute files (<seq>.txt: 14 comma-separated 0/1 flags), in the toolkit's order.
LASOT_ATTRIBUTES: tuple[str, ...] = (
    "Illumination Variation",
    "Partial Occlusion",
    "Deformation",
    "Motion Blur",
    "Camera Motion",
    "Rotation",
    "Background Clutter",
    "Viewpoint Change",
    "Scale Variation",
    "Full Occlusion",
    "Fast Motion",
    "Out-of-View",
    "Low Resolution",
    "Aspect Ratio Change",
)
RESULTS_DIR = "results"
TIMING_DIR = "timing"
PLOTS_DIR = "plots"
METRICS_FILE = "metrics.json"
ATTRIBUTES_FILE = "attributes.md"
GOT10K_SUBMISSION = "got10k_submission"
TRACKINGNET_SUBMISSION = "trackingnet_submission.zip"


# --- datasets ------------------------------------------------------------------------------------


def open_dataset(dataset: str, root: str | os.PathLike, split: str | None = None) -> FileSource:
    """The sequences of a benchmark, read by the matching ``odtrack_hf.data.sources`` reader.

    Raises:
        ValueError: unknown dataset, a split the dataset does not have, or a folder in the wrong layout.
    """
    from ..data import sources

    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    root = Path(root)
    if dataset == "folder":
        return sources.FolderSource(root / split if split else root)
    if dataset == "got10k":
        split = split or "test"
        if split == "ltrval":
            return sources.GOT10kSource(root, "train", "val")
        if split not in ("test", "val"):
            raise ValueError(f"GOT-10k split must be 'test', 'val' or 'ltrval', got {split!r}.")
        return sources.GOT10kSource(root, split)
    if dataset == "lasot":
        return sources.LaSOTSource(root, split or "test")
    if dataset == "trackingnet":
        return sources.TrackingNetSource(root, split or "test")
    if split is not None:
        raise ValueError(f"--split is not used by {dataset} (it has one evaluation set).")
    readers = {
        "lasot_ext": sources.LaSOTExtSource,
        "otb": sources.OTBSource,
        "tnl2k": sources.TNL2KSource,
        "nfs": sources.NfSSource,
        "uav": sources.UAV123Source,
    }
    return readers[dataset](root)


def has_ground_truth(sequence: TrackingSequence) -> bool:
    """False for sequences annotated on the first frame only (GOT-10k test, TrackingNet test)."""
    return len(sequence) == 1 or not np.isnan(sequence.boxes[1:]).all()


def sequence_attributes(sequence: TrackingSequence, attributes_dir: Path | None) -> list[str]:
    """Attribute tags of a sequence: a LaSOT toolkit file ``<attributes_dir>/<seq>.txt``, else the
    generator's ``attributes.json`` next to the frames, else the ``attributes`` line of ``meta_info.ini``."""
    if attributes_dir is not None and (attributes_dir / f"{sequence.name}.txt").is_file():
        path = attributes_dir / f"{sequence.name}.txt"
        flags = path.read_text().replace(",", " ").split()
        if len(flags) != len(LASOT_ATTRIBUTES):
            raise ValueError(f"{path}: {len(flags)} flags; a LaSOT attribute file has {len(LASOT_ATTRIBUTES)}.")
        return [name for name, flag in zip(LASOT_ATTRIBUTES, flags) if float(flag) > 0]
    frame = sequence.frames[0] if len(sequence.frames) else None
    if isinstance(frame, str) and (Path(frame).parent / "attributes.json").is_file():
        flags = json.loads((Path(frame).parent / "attributes.json").read_text()).get("attributes", {})
        return [name for name, present in flags.items() if present]
    tags = sequence.attributes.get("attributes", "")
    return [tag.strip() for tag in tags.split(",") if tag.strip()]


# --- result files --------------------------------------------------------------------------------


def _box_lines(boxes: np.ndarray, separator: str) -> str:
    # int() truncates toward zero, as the official tracker's astype(int)
    return "".join(separator.join(str(int(v)) for v in box) + "\n" for box in boxes)


def write_sequence_results(
    output_dir: Path, name: str, boxes: np.ndarray, times: Sequence[float], wall_seconds: float
) -> Path:
    """Write ``<seq>_time.txt``, ``timing/<seq>.json`` and, last (it marks the sequence finished), ``<seq>.txt``."""
    results = output_dir / RESULTS_DIR
    write_atomic(results / f"{name}_time.txt", "".join(f"{t:f}\n" for t in times))
    timing = {"num_frames": len(times), "track_seconds": float(sum(times)), "wall_seconds": wall_seconds}
    write_atomic(output_dir / TIMING_DIR / f"{name}.json", json.dumps(timing) + "\n")
    path = results / f"{name}.txt"
    write_atomic(path, _box_lines(boxes, "\t"))
    return path


def check_result_file(path: Path, sequence: TrackingSequence) -> np.ndarray:
    """Read a result file and check it has one valid box per frame of ``sequence``.

    Raises:
        ValueError: naming the sequence, the file and the 1-based line.
    """
    try:
        boxes = read_results(path)
    except ValueError as error:
        raise ValueError(f"sequence {sequence.name!r}: {error}") from None
    if len(boxes) != len(sequence):
        line = (
            f"line {len(boxes) + 1} is missing" if len(boxes) < len(sequence) else f"line {len(sequence) + 1} is extra"
        )
        raise ValueError(
            f"sequence {sequence.name!r}: {path} has {len(boxes)} boxes for {len(sequence)} frames ({line}); "
            "fix or delete the file (a deleted file is tracked again)."
        )
    return boxes


def read_times(path: Path, num_frames: int, name: str) -> np.ndarray | None:
    """Per-frame seconds of a ``<seq>_time.txt`` file, or ``None`` if there is none."""
    if not path.is_file():
        return None
    times = np.loadtxt(path, dtype=np.float64, ndmin=1)
    if len(times) != num_frames:
        raise ValueError(f"sequence {name!r}: {path} has {len(times)} times for {num_frames} frames.")
    return times


def write_got10k_submission(output_dir: Path, names: Sequence[str]) -> Path:
    """GOT-10k server layout: ``got10k_submission/<seq>/<seq>_001.txt`` (comma-separated) and ``<seq>_time.txt``,
    plus ``got10k_submission.zip`` of the same tree; the result folder is left as it is."""
    folder = output_dir / GOT10K_SUBMISSION
    archive: dict[str, str] = {}
    for name in names:
        results = output_dir / RESULTS_DIR
        archive[f"{name}/{name}_001.txt"] = _box_lines(read_results(results / f"{name}.txt"), ",")
        times = results / f"{name}_time.txt"
        if times.is_file():
            archive[f"{name}/{name}_time.txt"] = times.read_text()
    for member, text in archive.items():
        write_atomic(folder / member, text)
    write_atomic(folder.with_suffix(".zip"), _zip_bytes(archive))
    return folder


def write_trackingnet_submission(output_dir: Path, names: Sequence[str]) -> Path:
    """TrackingNet server archive: ``trackingnet_submission.zip`` with ``<seq>.txt`` (comma-separated) at its top."""
    results = output_dir / RESULTS_DIR
    archive = {f"{name}.txt": _box_lines(read_results(results / f"{name}.txt"), ",") for name in names}
    path = output_dir / TRACKINGNET_SUBMISSION
    write_atomic(path, _zip_bytes(archive))
    return path


def _zip_bytes(members: Mapping[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(member, text)
    return buffer.getvalue()


# --- other trackers ------------------------------------------------------------------------------


def compare_folders(entries: Sequence[str]) -> dict[str, Path]:
    """``[LABEL=]DIR`` entries → label → folder holding ``<seq>.txt`` files (``DIR/results`` for a folder written
    by this runner). The default label is the folder's name."""
    folders: dict[str, Path] = {}
    for entry in entries:
        label, _, path = entry.rpartition("=")
        folder = Path(path)
        if not folder.is_dir():
            raise ValueError(f"--compare {entry!r}: {folder} is not a folder.")
        if (folder / RESULTS_DIR).is_dir():
            folder = folder / RESULTS_DIR
        label = label or (folder.parent.name if folder.name == RESULTS_DIR else folder.name)
        if label in folders:
            raise ValueError(f"--compare: two trackers named {label!r}; name them with LABEL=DIR.")
        folders[label] = folder
    return folders


def read_tracker_folder(folder: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The ``<seq>.txt`` boxes of ``names`` in another tracker's result folder.

    Raises:
        ValueError: a missing file, or a bad line (naming the sequence and the line).
    """
    boxes = {}
    for name in names:
        path = folder / f"{name}.txt"
        if not path.is_file():
            raise ValueError(f"--compare {folder}: no result file for sequence {name!r} ({path}).")
        try:
            boxes[name] = read_results(path)
        except ValueError as error:
            raise ValueError(f"sequence {name!r}: {error}") from None
    return boxes


def format_attribute_table(table: Mapping[str, Mapping[str, Any]], trackers: Sequence[str]) -> str:
    """Markdown table: one row per attribute with its sequence count, then AUC / P / P_norm per tracker."""
    header = ["attribute", "sequences"] + [f"{label} {key}" for label in trackers for key in ("AUC", "P", "P_norm")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for tag, row in table.items():
        cells = [tag, str(row["num_sequences"])]
        for label in trackers:
            cells += [f"{row[label][key]:.1f}" for key in ("auc", "precision", "norm_precision")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
