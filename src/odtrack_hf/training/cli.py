"""``odtrack train CONFIG``: the training sub-command, registered by ``odtrack_hf.cli``.

Errors in the config or the data (a missing dataset folder, a wrong layout, an unknown key) are raised
as ``ValueError`` or ``FileNotFoundError`` with a one-line message, which the CLI prints.
"""

import argparse
import dataclasses
from pathlib import Path


def add_train_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``train`` on ``subparsers`` (its ``func`` is [`run_train`])."""
    parser = subparsers.add_parser(
        "train",
        help="train or fine-tune ODTrack from a YAML/JSON training config",
        description="Train ODTrack with Accelerate. Run it directly for one process, or under a launcher for "
        "several: accelerate launch --config_file examples/accelerate/multi_gpu.yaml -m odtrack_hf.cli train "
        "CONFIG. A run continues from the newest checkpoint in its output_dir (resume_from_checkpoint: latest).",
    )
    parser.add_argument(
        "config", type=Path, help="training config (.yaml, .yml or .json), e.g. examples/configs/odtrack_base.yaml"
    )
    parser.add_argument("--output-dir", help="override the config's output_dir")
    parser.add_argument("--max-steps", type=int, help="stop after this many optimiser steps (the schedules keep num_epochs)")
    parser.add_argument(
        "--resume-from",
        help="checkpoint folder to continue from (output_dir/checkpoints/step_<n>), instead of the config's "
        "resume_from_checkpoint",
    )
    parser.set_defaults(func=run_train)
    return parser


def run_train(args: argparse.Namespace) -> None:
    """Read the config, apply the command-line overrides and train."""
    # heavy imports here, so that `odtrack --help` stays fast
    from accelerate import PartialState

    from .arguments import TrainingConfig
    from .loop import MODEL_DIR, train

    overrides = {
        "output_dir": args.output_dir,
        "max_steps": args.max_steps,
        "resume_from_checkpoint": args.resume_from,
    }
    config = TrainingConfig.from_file(args.config)
    # replace() re-runs the config's validation on the overridden values
    config = dataclasses.replace(config, **{key: value for key, value in overrides.items() if value is not None})
    result = train(config)
    if PartialState().is_main_process:
        print(f"Trained {result.state.step} steps; model written to {result.output_dir / MODEL_DIR}")


__all__ = ["add_train_parser", "run_train"]
