"""Benchmark runner: track every sequence of a dataset, write the official result files, score and plot them.

``odtrack eval --dataset lasot --root LaSOT --output-dir runs/lasot`` writes the files listed in
:mod:`odtrack_hf.evaluation.benchmarks`; the per-frame times are taken around the tracker step as the official
harness does (frame reading excluded; frame 0 is the initialisation, see docs/official-implementation.md,
"Evaluation"), and ``metrics.json`` holds auc, precision, norm_precision, ao, sr50, sr75, fps and
fps_end_to_end, per sequence and per attribute.

A sequence whose ``<seq>.txt`` exists is finished and skipped, so an interrupted run resumes. Sequences are
split between processes with Accelerate; ``num_processes > 1`` starts them with ``torch.distributed.run``
(torchrun), which works on CPU and GPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..model_loading import load_tracker
from ..session_odtrack import ODTrackInferenceSession
from ..utils import resolve_device, write_atomic
from .benchmarks import (
    ATTRIBUTES_FILE,
    METRICS_FILE,
    PLOTS_DIR,
    RESULTS_DIR,
    TIMING_DIR,
    check_result_file,
    compare_folders,
    format_attribute_table,
    has_ground_truth,
    open_dataset,
    read_times,
    read_tracker_folder,
    sequence_attributes,
    write_got10k_submission,
    write_sequence_results,
    write_trackingnet_submission,
)
from .metrics import CONVENTIONS, SCORE_KEYS, evaluate_tracking

if TYPE_CHECKING:
    import torch

    from ..data.sources import FileSource
    from ..data.sources import Sequence as TrackingSequence
    from ..modeling_odtrack import ODTrackModel
    from ..processing_odtrack import ODTrackProcessor



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
        dtype: compute dtype of the tracking session (``"float32"``, ``"bfloat16"`` / ``"float16"`` autocast, or
            ``"qint8"`` dynamic int8 linear layers on the CPU).
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
    session = ODTrackInferenceSession(model, processor, max_templates=max_templates, dtype=dtype)
    read_at: list[float] = []

    def frames() -> Iterator[Any]:
        for index in range(len(sequence)):
            frame = sequence.load_frame(index)
            read_at.append(time.perf_counter())  # a step's clock starts once its frame is read
            yield frame

    boxes, times = [], []
    start = time.perf_counter()
    for result in session.propagate(frames(), [first.tolist()]):
        boxes.append(result.boxes[0].tolist())  # on the CPU: the step is finished when the clock stops
        times.append(time.perf_counter() - read_at[-1])
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


# --- processes ----------------------------------------------------------------------------------


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


def _main(argv: list[str]) -> int:
    """Entry point of each process that :func:`evaluate_benchmark` starts (``-m odtrack_hf.evaluation.runner
    CONFIG_JSON``); the launching process prints the summary."""
    try:
        run_benchmark(EvalConfig(**json.loads(argv[0])))
    except (ValueError, FileNotFoundError) as error:
        print(f"odtrack eval: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
