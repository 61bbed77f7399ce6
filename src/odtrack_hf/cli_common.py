"""Pieces shared by the ``odtrack`` sub-commands and the web demo: the user-error type, the model
options, box parsing, loading an ONNX tracker, tracking a video while drawing it, and writing boxes. The sub-command modules import these; nothing imports ``cli.py`` itself."""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from .session_odtrack import DEFAULT_MAX_TEMPLATES, ODTrackInferenceSession, ODTrackTrackingOutput
from .video_io import VideoWriter, draw_tracks


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def add_model_arguments(parser: argparse.ArgumentParser, official_memory: bool = False) -> None:
    """Add ``--model``, ``--device`` and ``--max-templates``, shared by the commands that track.

    ``official_memory``: ``--max-templates`` defaults to the official, unbounded template memory (the commands
    that reproduce the official tracker on benchmarks) instead of ``DEFAULT_MAX_TEMPLATES``.
    """
    parser.add_argument(
        "--model",
        help="save_pretrained folder or Hub id of an ODTrack model (default: the model shipped with the package)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), help="where to run the model (default: cuda if available)")
    default = "none" if official_memory else str(DEFAULT_MAX_TEMPLATES)
    parser.add_argument(
        "--max-templates",
        type=parse_max_templates,
        default=parse_max_templates(default),
        metavar="M",
        help=f"bound on the stored templates per object (default {default}); 'none' keeps the official, unbounded "
        "memory and so exactly the official template selection",
    )


def parse_max_templates(text: str) -> int | None:
    """``--max-templates``: a positive integer, or ``none`` for the official, unbounded template memory."""
    if text.strip().lower() == "none":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither a positive integer nor 'none' (the official, unbounded memory), e.g. 64"
        )
    return value


DTYPES = ("float32", "bfloat16", "float16", "qint8")


def add_dtype_argument(parser: argparse.ArgumentParser, automatic: bool = False) -> None:
    """Add ``--dtype``, the compute dtype of the tracking session (``dtype`` of ``ODTrackInferenceSession``).

    ``automatic``: no default here; the command resolves a missing ``--dtype`` with
    ``default_inference_dtype`` (float32 is then an explicit choice). Otherwise the default is float32.
    """
    default = (
        "on the CPU bfloat16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX), else qint8; "
        "elsewhere the model's dtype"
    )
    parser.add_argument(
        "--dtype",
        choices=DTYPES,
        default=None if automatic else "float32",
        help=f"compute dtype of the model step (default: {default if automatic else 'float32'}); bfloat16 / "
        "float16 run a float32 model under autocast: bfloat16 is about 1.4x faster on CPUs with native bf16 and "
        "on GPUs, many times slower on other CPUs; qint8 runs the linear layers in dynamic int8 on the CPU, "
        "about 1.3x faster",
    )


def parse_box(text: str) -> list[float]:
    """``"X,Y,W,H"`` → four floats, or a one-line ``CommandError`` naming the expected form."""
    parts = text.split(",")
    try:
        box = [float(part) for part in parts]
    except ValueError:
        box = []
    if len(box) != 4:
        raise CommandError(f"--box {text!r} must be four comma-separated numbers X,Y,W,H, e.g. --box 62,16,50,76")
    return box


def load_onnx_tracker(path: Path, model_name: str | None):
    """``(ODTrackOnnxModel, processor)``: an exported step and the processor of ``model_name`` (default:
    the crop settings of the configuration stored in the ONNX file)."""
    from .model_loading import load_processor
    from .onnx_model import ODTrackOnnxModel
    from .processing_odtrack import ODTrackProcessor

    try:
        model = ODTrackOnnxModel(path)
    except ImportError as error:
        raise CommandError(str(error)) from None
    config = model.config
    if model.num_templates is not None:
        raise CommandError(
            f"{path} was exported for exactly {model.num_templates} templates, but tracking uses 1 to "
            f"{config.tracker_template_number + 1} as an object's memory grows; export it again without "
            "--num-templates."
        )
    if model_name is None:
        return model, ODTrackProcessor.from_model_config(config)
    processor = load_processor(model_name)
    for name in ("template_size", "search_size"):
        if getattr(processor, name) != getattr(config, name):
            raise CommandError(
                f"{path} was exported for {name.replace('_', ' ')} {getattr(config, name)} but the processor of "
                f"{model_name} uses {getattr(processor, name)}; export the ONNX file from the same model: "
                f"odtrack export-onnx {model_name} --out {path}"
            )
    return model, processor


def track_and_draw(
    session: ODTrackInferenceSession,
    frames: Iterable[np.ndarray],
    boxes: Sequence[Sequence[float]],
    writer: VideoWriter | None = None,
) -> Iterator[ODTrackTrackingOutput]:
    """Track ``boxes`` (x1 y1 x2 y2 on the first frame) through ``frames`` with ``session.propagate`` and
    yield each frame's result, writing the frame with its boxes drawn to ``writer`` when one is given."""
    # one decoded frame feeds both the tracker and the drawing (tee buffers at most one frame)
    drawn, tracked = itertools.tee(frames)
    for frame, result in zip(drawn, session.propagate(tracked, boxes)):
        if writer is not None:
            writer.write(draw_tracks(frame, result.boxes.tolist(), result.object_ids, result.scores.tolist()))
        yield result


def results_path(results: Path, object_id: int, count: int) -> Path:
    """``results`` itself for one object, ``<stem>_obj<id><suffix>`` beside it for each of several."""
    return results if count == 1 else results.with_name(f"{results.stem}_obj{object_id}{results.suffix}")


def write_results(tracks: dict[int, list[list[float]]], results: Path) -> list[Path]:
    """One GOT-10k file (``x,y,w,h`` per frame) per object (see `results_path`), each written atomically.
    Returns the paths."""
    from .utils import write_atomic

    paths = []
    for object_id, boxes in tracks.items():
        path = results_path(results, object_id, len(tracks))
        write_atomic(path, "".join(",".join(f"{v:.4f}" for v in box) + "\n" for box in boxes))
        paths.append(path)
    return paths
