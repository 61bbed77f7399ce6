"""Benchmark runner: track every sequence of a dataset, write the official result files, score and plot them.

``odtrack eval --dataset lasot --root LaSOT --output-dir runs/lasot`` writes::

    OUT/results/<seq>.txt          one box per frame, x<TAB>y<TAB>w<TAB>h as integers (the official tracker's
                                   ``astype(int)`` files; frame 0 holds the initial box)
    OUT/results/<seq>_time.txt     seconds per frame, timed around the tracker step as the official harness
                                   does (reference §3.9: frame reading excluded; frame 0 is the initialisation)
    OUT/timing/<seq>.json          frames, tracker seconds and wall-clock seconds including frame decoding
    OUT/metrics.json               auc, precision, norm_precision, ao, sr50, sr75, fps, fps_end_to_end, per
                                   sequence and per attribute
    OUT/attributes.md              per-attribute table (datasets with attributes)
    OUT/plots/*.png                success, precision and normalised-precision plots, with --compare overlays
    OUT/got10k_submission/ + .zip  GOT-10k: <seq>/<seq>_001.txt (comma-separated) and <seq>/<seq>_time.txt
    OUT/trackingnet_submission.zip TrackingNet: <seq>.txt (comma-separated) at the top of the archive

A sequence whose ``<seq>.txt`` exists is finished and skipped, so an interrupted run resumes; every file is
written to a temporary name and renamed, so a crash leaves no half file. Nothing is ever deleted (the official
submission converters delete the result folders). Sequences are split between processes with Accelerate;
``num_processes > 1`` starts them with ``torch.distributed.run`` (torchrun), which works on CPU and GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..utils import resolve_device, write_atomic
from .metrics import CONVENTIONS, SCORE_KEYS, evaluate_tracking, read_results

if TYPE_CHECKING:
    import torch

    from ..data.sources import FileSource
    from ..data.sources import Sequence as TrackingSequence
    from ..modeling_odtrack import ODTrackModel
    from ..processing_odtrack import ODTrackProcessor

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


@dataclasses.dataclass
class EvalConfig:
    """What to evaluate and where to write it (the options of ``odtrack eval``).

    Attributes:
        dataset: one of ``DATASETS``.
        root: the dataset folder, laid out as the official release (see ``odtrack_hf.data.sources``).
        output_dir: folder for results, metrics and plots; reusing it resumes the run.
        split: ``got10k``: ``test`` (default), ``val`` or ``ltrval`` (pytracking's validation part of train);
            ``lasot``: ``test`` (default) or ``train``; ``trackingnet``: ``test`` (default) or ``train``;
            ``folder``: an optional sub-folder of ``root`` (e.g. the generator's ``heldout``); others: none.
        model: ``save_pretrained`` folder or Hub id (default: the model shipped with the package).
        device: ``"cpu"`` or ``"cuda"`` (default: cuda if available).
        max_templates: bound on the template memory per object (default: the official, unbounded memory).
        dtype: compute dtype of the tracking session (``"float32"``, or ``"bfloat16"`` / ``"float16"`` autocast).
        compare: other trackers' result folders (``<seq>.txt`` files, or a folder written by this runner),
            optionally as ``LABEL=DIR``, scored the same way and overlaid on the plots.
        convention: metric conventions, see :func:`odtrack_hf.evaluation.evaluate_tracking`.
        attributes_dir: LaSOT toolkit attribute files (``<seq>.txt``); default ``<root>/att`` if present.
        num_processes: processes to track with (split by sequence).
    """

    dataset: str
    root: str
    output_dir: str
    split: str | None = None
    model: str | None = None
    device: str | None = None
    max_templates: int | None = None
    dtype: str = "float32"
    compare: list[str] = dataclasses.field(default_factory=list)
    convention: str = "odtrack"
    attributes_dir: str | None = None
    num_processes: int = 1


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


# --- tracking ------------------------------------------------------------------------------------


def track_sequence(
    model: ODTrackModel,
    processor: ODTrackProcessor,
    sequence: TrackingSequence,
    max_templates: int | None = None,
    dtype: torch.dtype | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Track one sequence from its first box with a fresh session, timed like the official harness.

    Returns:
        ``(boxes (N, 4) float64, per-frame tracker seconds (N,), wall-clock seconds including decoding)``.
    """
    first = sequence.boxes[0]
    if not (np.isfinite(first).all() and first[2] > 0 and first[3] > 0):
        raise ValueError(f"sequence {sequence.name!r}: the first box {first.tolist()} is not a valid x,y,w,h box.")
    session = processor.init_tracking_session(model, max_templates=max_templates, dtype=dtype)
    boxes, times = [], []
    start = time.perf_counter()
    for index in range(len(sequence)):
        frame = sequence.load_frame(index)
        tic = time.perf_counter()
        result = session.track(frame, [first.tolist()] if index == 0 else None)
        box = result.boxes[0].tolist()  # on the CPU: the step is finished when the clock stops
        times.append(time.perf_counter() - tic)
        boxes.append(box)
    return np.asarray(boxes, dtype=np.float64), np.asarray(times), time.perf_counter() - start


def finished_sequences(source: FileSource, output_dir: Path) -> list[bool]:
    """Per sequence, whether its result file exists; existing files are checked (see :func:`check_result_file`)."""
    finished = []
    for index, name in enumerate(source.names):
        path = output_dir / RESULTS_DIR / f"{name}.txt"
        if path.is_file():
            check_result_file(path, source[index])
        finished.append(path.is_file())
    return finished


def run_benchmark(config: EvalConfig) -> dict[str, Any] | None:
    """Track the unfinished sequences in this process's share, then (main process) write submissions, metrics,
    attribute table and plots.

    Call it in every process of an Accelerate / torchrun launch, or in a single plain process.

    Returns:
        On the main process, the summary: ``metrics`` (the dict written to ``metrics.json``), ``tracked`` and
        ``skipped`` sequence counts and the written ``paths``; ``None`` on the other processes.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm import tqdm

    output_dir = Path(config.output_dir)
    source = open_dataset(config.dataset, config.root, config.split)
    compare_folders(config.compare)  # a wrong path fails now, not after tracking
    finished = finished_sequences(source, output_dir)
    pending = [index for index, done in enumerate(finished) if not done]
    device = resolve_device(config.device)
    # PartialState rather than Accelerator: nothing is prepared, only the sequences are split
    state = PartialState(cpu=device == "cpu")
    tracked = []
    with state.split_between_processes(pending) as mine:
        if mine:
            import torch

            from ..cli_common import load_tracker

            dtype = getattr(torch, config.dtype)
            model, processor = load_tracker(config.model, "cpu" if device == "cpu" else str(state.device))
            desc = f"{config.dataset} [{state.process_index}]" if state.num_processes > 1 else config.dataset
            for index in tqdm(mine, desc=desc, unit="seq", file=sys.stderr, disable=None):
                sequence = source[index]
                boxes, times, wall = track_sequence(model, processor, sequence, config.max_templates, dtype)
                write_sequence_results(output_dir, sequence.name, boxes, times, wall)
                tracked.append(sequence.name)
    tracked = gather_object(tracked)
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    summary = finalize(config, source)
    return {**summary, "tracked": len(tracked), "skipped": len(finished) - len(pending)}


# --- scoring -------------------------------------------------------------------------------------


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


def _model_label(model: str | None) -> str:
    return f"ODTrack ({Path(model).name})" if model else "ODTrack (default model)"


def _json_ready(value: Any) -> Any:
    """Arrays to lists and NaN to None, so that ``metrics.json`` is strict JSON."""
    if isinstance(value, Mapping):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_json_ready(item) for item in value]
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def _scores(result: Mapping[str, Any]) -> dict[str, float]:
    return {key: result[key] for key in SCORE_KEYS}


CURVE_KEYS = (
    "iou_thresholds",
    "success_curve",
    "pixel_thresholds",
    "precision_curve",
    "norm_thresholds",
    "norm_precision_curve",
)


def finalize(config: EvalConfig, source: FileSource | None = None) -> dict[str, Any]:
    """Score the finished result folder: submissions (GOT-10k, TrackingNet), ``metrics.json``, the attribute
    table and the plots. Sequences annotated on the first frame only are not scored (a note says so).

    Returns:
        ``{"metrics": ..., "paths": {what: path}}``.

    Raises:
        ValueError: a sequence without results, a result file with the wrong number of lines, NaN or a negative
            size (naming the sequence and the line), or a ``--compare`` folder that lacks a sequence.
    """
    output_dir = Path(config.output_dir)
    source = source or open_dataset(config.dataset, config.root, config.split)
    results = output_dir / RESULTS_DIR
    attributes_dir = Path(config.attributes_dir) if config.attributes_dir else Path(config.root) / "att"
    attributes_dir = attributes_dir if attributes_dir.is_dir() else None
    predictions, ground_truth, visible, attributes = {}, {}, {}, {}
    num_frames, times, walls = {}, {}, {}
    for index, name in enumerate(source.names):
        sequence = source[index]
        path = results / f"{name}.txt"
        if not path.is_file():
            raise ValueError(f"sequence {name!r}: no result file {path}; run the evaluation to track it.")
        boxes = check_result_file(path, sequence)
        num_frames[name] = len(sequence)
        times[name] = read_times(results / f"{name}_time.txt", len(sequence), name)
        timing = output_dir / TIMING_DIR / f"{name}.json"
        walls[name] = json.loads(timing.read_text())["wall_seconds"] if timing.is_file() else None
        if has_ground_truth(sequence):
            predictions[name], ground_truth[name], visible[name] = boxes, sequence.boxes, sequence.visible
            attributes[name] = sequence_attributes(sequence, attributes_dir)

    paths: dict[str, Path] = {"results": results}
    if config.dataset == "got10k":
        paths["got10k_submission"] = write_got10k_submission(output_dir, source.names)
    if config.dataset == "trackingnet":
        paths["trackingnet_submission"] = write_trackingnet_submission(output_dir, source.names)

    metrics: dict[str, Any] = {
        "dataset": config.dataset,
        "split": config.split,
        "model": config.model,
        "dtype": config.dtype,
        "convention": config.convention,
        "num_sequences": len(source.names),
        "num_frames": int(sum(num_frames.values())),
        **dict.fromkeys(SCORE_KEYS),
        **_fps(num_frames, times, walls),
    }
    notes = []
    if len(ground_truth) < len(source.names):
        notes.append(
            f"{len(source.names) - len(ground_truth)} of {len(source.names)} sequences have only a first-frame "
            "box: they are not scored here; submit the result files to the benchmark's evaluation server."
        )
    if metrics["fps"] is None:
        notes.append("some sequences have no _time.txt file: fps is not reported.")
    if ground_truth:
        label = _model_label(config.model)
        trackers = {label: predictions}
        for other, folder in compare_folders(config.compare).items():
            if other in trackers:
                raise ValueError(f"--compare: {other!r} is the name of the evaluated tracker; use LABEL=DIR.")
            trackers[other] = read_tracker_folder(folder, list(ground_truth))

        def score(boxes: Mapping[str, np.ndarray], names: list[str]) -> dict[str, Any]:
            # source.dataset_name is pytracking's name: "lasot" and "uav" change how invalid frames count
            return evaluate_tracking(
                {name: boxes[name] for name in names},
                {name: ground_truth[name] for name in names},
                {name: visible[name] for name in names},
                config.convention,
                source.dataset_name,
            )

        scored = {name: score(boxes, list(ground_truth)) for name, boxes in trackers.items()}
        result = scored[label]
        metrics.update(_scores(result))
        metrics["curves"] = {key: result[key] for key in CURVE_KEYS}
        metrics["per_sequence"] = {
            name: {
                **_scores(entry),
                "num_frames": entry["num_frames"],
                "num_valid": entry["num_valid"],
                "fps": None if times[name] is None else len(times[name]) / float(np.sum(times[name])),
            }
            for name, entry in result["per_sequence"].items()
        }
        metrics["compare"] = {name: _scores(other) for name, other in scored.items() if name != label}
        by_attribute: dict[str, list[str]] = {}
        for name, tags in attributes.items():
            for tag in tags:
                by_attribute.setdefault(tag, []).append(name)
        if by_attribute:
            table = {
                tag: {
                    "num_sequences": len(names),
                    **{name: _scores(score(boxes, names)) for name, boxes in trackers.items()},
                }
                for tag, names in sorted(by_attribute.items())
            }
            metrics["per_attribute"] = table
            paths["attributes"] = output_dir / ATTRIBUTES_FILE
            write_atomic(paths["attributes"], format_attribute_table(table, list(trackers)))
        from .plots import save_plots

        paths["plots"] = output_dir / PLOTS_DIR
        save_plots(scored, paths["plots"], title=config.dataset + (f" {config.split}" if config.split else ""))
    metrics["notes"] = notes
    paths["metrics"] = output_dir / METRICS_FILE
    write_atomic(paths["metrics"], json.dumps(_json_ready(metrics), indent=1) + "\n")
    return {"metrics": metrics, "paths": paths}


def _fps(num_frames: Mapping[str, int], times: Mapping[str, Any], walls: Mapping[str, Any]) -> dict[str, Any]:
    """Official fps (frames / summed tracker-step seconds) and end-to-end fps (frames / wall-clock seconds
    including frame decoding); ``None`` when some sequence lacks its timing file."""
    total = sum(num_frames.values())
    has_times = all(value is not None for value in times.values())
    has_walls = all(value is not None for value in walls.values())
    return {
        "fps": total / sum(float(np.sum(t)) for t in times.values()) if has_times and total else None,
        "fps_end_to_end": total / sum(walls.values()) if has_walls and total else None,
    }


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


# --- processes and command line ------------------------------------------------------------------


def evaluate_benchmark(config: EvalConfig) -> dict[str, Any] | None:
    """Run the benchmark in ``config.num_processes`` processes (see :func:`run_benchmark`).

    With more than one process (and outside an existing torchrun / ``accelerate launch``), the result folder
    is checked here, then ``python -m torch.distributed.run --standalone`` starts the processes; each tracks
    its share and the first one scores everything.

    Returns:
        The summary of :func:`run_benchmark` (re-read from ``metrics.json`` after a multi-process launch).
    """
    if config.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {config.num_processes}.")
    if config.convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {config.convention!r}; choose one of {', '.join(CONVENTIONS)}.")
    if config.num_processes == 1 or "WORLD_SIZE" in os.environ:
        return run_benchmark(config)
    # fail here, in one line, on a bad dataset folder or result file rather than in every process
    compare_folders(config.compare)
    finished = finished_sequences(open_dataset(config.dataset, config.root, config.split), Path(config.output_dir))
    env = dict(os.environ)
    if resolve_device(config.device) == "cpu":
        env["ACCELERATE_USE_CPU"] = "1"
        # one share of the cores per process (torchrun would pin each to one thread)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // config.num_processes)))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={config.num_processes}",
        "-m", __name__, json.dumps(dataclasses.asdict(config)),
    ]  # fmt: skip
    completed = subprocess.run(command, env=env, check=False)
    if completed.returncode != 0:
        raise ValueError(
            f"a tracking process failed (torchrun exit code {completed.returncode}); its error is printed above. "
            "Finished sequences are kept: run the same command again to resume."
        )
    metrics = json.loads((Path(config.output_dir) / METRICS_FILE).read_text())
    return {"metrics": metrics, "paths": {}, "tracked": finished.count(False), "skipped": finished.count(True)}


def format_summary(summary: Mapping[str, Any], output_dir: str | os.PathLike) -> str:
    """One line for the terminal: counts, scores, speed and where the files are."""
    metrics = summary["metrics"]
    parts = [f"{summary['tracked']} sequences tracked, {summary['skipped']} already finished"]
    if metrics.get("auc") is not None:
        parts.append(
            "AUC {auc:.1f}, P {precision:.1f}, P_norm {norm_precision:.1f}, AO {ao:.1f}, SR0.5 {sr50:.1f}, "
            "SR0.75 {sr75:.1f}".format(**metrics)
        )
    if metrics.get("fps") is not None:
        speed = f"{metrics['fps']:.1f} fps"
        if metrics.get("fps_end_to_end") is not None:
            speed += f" ({metrics['fps_end_to_end']:.1f} fps with frame decoding)"
        parts.append(speed)
    line = "; ".join(parts) + f". Results, metrics.json and plots in {output_dir}"
    return "\n".join([line, *metrics.get("notes", [])])


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``odtrack eval``."""
    from ..cli_common import add_dtype_argument, add_model_arguments

    parser = subparsers.add_parser(
        "eval",
        help="track a benchmark, write the official result files, metrics.json and plots",
        description="Track every sequence of a benchmark (finished sequences are skipped, so a stopped run "
        "resumes), write per-sequence results in the official formats (plus GOT-10k / TrackingNet submission "
        "files), score them (metrics.json, a per-attribute table) and draw success / precision plots. "
        "Test sets with first-frame boxes only (GOT-10k, TrackingNet) are not scored here.",
    )
    parser.add_argument("--dataset", required=True, choices=DATASETS, help="benchmark layout of --root")
    parser.add_argument("--root", required=True, type=Path, help="dataset folder")
    parser.add_argument(
        "--split",
        help="got10k: test (default), val, ltrval; lasot, trackingnet: test (default), train; "
        "folder: a sub-folder of --root, e.g. heldout",
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="folder for results, metrics and plots")
    add_model_arguments(parser)
    add_dtype_argument(parser)
    parser.add_argument(
        "--num-processes", type=int, default=1, help="processes to track with, sequences split between them (default 1)"
    )
    parser.add_argument(
        "--compare",
        nargs="+",
        action="extend",
        default=[],
        metavar="[LABEL=]DIR",
        help="other trackers' result folders (<seq>.txt per sequence) to score and overlay on the plots",
    )
    parser.add_argument(
        "--convention", choices=CONVENTIONS, default="odtrack", help="metric conventions (default: official ODTrack)"
    )
    parser.add_argument(
        "--attributes-dir", type=Path, help="LaSOT toolkit attribute files <seq>.txt (default: ROOT/att if present)"
    )
    parser.set_defaults(func=run_eval)
    return parser


def run_eval(args: argparse.Namespace) -> None:
    """Run ``odtrack eval`` with parsed arguments and print the summary."""
    config = EvalConfig(
        dataset=args.dataset,
        root=str(args.root),
        output_dir=str(args.output_dir),
        split=args.split,
        model=args.model,
        device=args.device,
        max_templates=args.max_templates,
        dtype=args.dtype,
        compare=list(args.compare),
        convention=args.convention,
        attributes_dir=str(args.attributes_dir) if args.attributes_dir else None,
        num_processes=args.num_processes,
    )
    summary = evaluate_benchmark(config)
    if summary is not None:
        print(format_summary(summary, args.output_dir))


def _main(argv: list[str]) -> int:
    """Entry point of each process that :func:`evaluate_benchmark` starts (``-m odtrack_hf.evaluation.runner
    CONFIG_JSON``); the launching process prints the summary."""
    from ..cli_common import CommandError

    try:
        run_benchmark(EvalConfig(**json.loads(argv[0])))
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"odtrack eval: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
