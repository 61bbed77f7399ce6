"""Pieces shared by the ``odtrack`` sub-commands: the user-error type, the model options, box parsing
and loading a tracker. The sub-command modules import these; nothing imports ``cli.py`` itself."""

from __future__ import annotations

import argparse


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--model``, ``--device`` and ``--max-templates``, shared by the commands that track."""
    parser.add_argument(
        "--model",
        help="save_pretrained folder or Hub id of an ODTrack model (default: the model shipped with the package)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), help="where to run the model (default: cuda if available)")
    parser.add_argument(
        "--max-templates",
        type=int,
        help="bound the template memory per object (default: the official, unbounded memory)",
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


def load_tracker(model_name: str | None, device: str):
    """``(model in eval mode, processor)`` from a folder or Hub id (default: the packaged model)."""
    from transformers import AutoModel, AutoProcessor
    from transformers.utils import logging

    from . import DEFAULT_MODEL_DIR

    logging.disable_progress_bar()  # keep stderr to the tracking progress and one-line errors

    source = model_name or str(DEFAULT_MODEL_DIR)
    try:
        model = AutoModel.from_pretrained(source).to(device).eval()
        processor = AutoProcessor.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot load the model {source!r}: {str(error).splitlines()[0]}") from None
    return model, processor
