"""``odtrack eval``, ``odtrack profile`` and ``odtrack attention``: the argparse front ends of
:mod:`odtrack_hf.evaluation`, registered by ``odtrack_hf.cli``.

The library functions they call raise ``ValueError`` / ``FileNotFoundError`` for bad input; ``odtrack_hf.cli``
prints those as one line with exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .cli_common import add_dtype_argument, add_model_arguments, parse_box
from .model_loading import load_tracker
from .evaluation.benchmarks import DATASETS
from .evaluation.metrics import CONVENTIONS
from .utils import resolve_device


def add_eval_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``odtrack eval``."""
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
    add_model_arguments(parser, official_memory=True)
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
    from .evaluation.runner import EvalConfig, evaluate_benchmark, format_summary

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


def add_profile_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``odtrack profile``."""
    parser = subparsers.add_parser(
        "profile",
        help="print parameters, FLOPs and fps of the model step (the paper's Table 1)",
        description="Profile one model step in eval mode with tracker_template_number + 1 templates, as the "
        "tracker runs it: parameters (total, trainable, thop's count), FLOPs and MACs by torch.utils.flop_counter, "
        "and the speed of the network forward.",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--model", help="save_pretrained folder or Hub id (default: the model shipped with the package)"
    )
    source.add_argument("--preset", help="official architecture with random weights, e.g. odtrack-base, odtrack-large")
    parser.add_argument("--templates", type=int, help="templates per step (default: tracker_template_number + 1)")
    parser.add_argument("--device", choices=("cpu", "cuda"), help="where to run (default: cuda if available)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's default)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default 10)")
    parser.add_argument("--iterations", type=int, default=100, help="timed steps (default 100)")
    parser.set_defaults(func=run_profile)
    return parser


def run_profile(args: argparse.Namespace) -> None:
    """Run ``odtrack profile`` with parsed arguments."""
    import torch

    from .configuration_odtrack import odtrack_preset
    from .evaluation.profile import format_profile, profile_model
    from .modeling_odtrack import ODTrackModel

    device = resolve_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}.")
        torch.set_num_threads(args.threads)
    if args.preset:
        torch.manual_seed(0)
        model, name = ODTrackModel(odtrack_preset(args.preset)).to(device).eval(), f"{args.preset} (random weights)"
    else:
        model, _ = load_tracker(args.model, device)
        name = args.model or "default model"
    profile = profile_model(model, args.templates, args.warmup, args.iterations)
    print(format_profile(profile, model, name, torch.get_num_threads()))


def add_attention_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``odtrack attention``."""
    parser = subparsers.add_parser(
        "attention",
        help="draw the temporal token's attention over the search region on chosen frames (paper Fig. 6)",
        description="Track an object and, on the chosen frames, write frame_<index>.png: the search crop with "
        "the temporal token's attention (one block, heads averaged) blended over it. Tokens removed by candidate "
        "elimination before that block show as zero.",
    )
    parser.add_argument("input", type=Path, help="video file, or a sequence folder (frames + groundtruth.txt)")
    parser.add_argument("--box", metavar="X,Y,W,H", help="box on the first frame (default for a folder: its first row)")
    parser.add_argument("--frames", required=True, help="comma-separated frame indices >= 1, e.g. 1,10,20")
    parser.add_argument("--layer", type=int, default=-1, help="block to show (default -1: the last)")
    parser.add_argument("--output-dir", type=Path, required=True, help="folder for the PNG files")
    add_model_arguments(parser, official_memory=True)
    parser.set_defaults(func=run_attention)
    return parser


def run_attention(args: argparse.Namespace) -> None:
    """Run ``odtrack attention`` with parsed arguments."""
    from .evaluation.attention_maps import save_attention_maps, track_attention_maps

    try:
        frame_indices = [int(text) for text in args.frames.split(",")]
    except ValueError:
        raise ValueError(f"--frames {args.frames!r} must be comma-separated integers, e.g. 1,10,20.") from None
    if args.input.is_dir():
        from .data.sources import read_sequence_folder

        sequence = read_sequence_folder(args.input, args.input.name)
        box = parse_box(args.box) if args.box else sequence.boxes[0].tolist()
        frames: Iterable[Any] = (sequence.load_frame(index) for index in range(len(sequence)))
    else:
        from .video_io import read_video_frames

        if not args.box:
            raise ValueError("--box X,Y,W,H is required for a video (a sequence folder has its own first box).")
        box, frames = parse_box(args.box), read_video_frames(args.input)
    device = resolve_device(args.device)
    model, processor = load_tracker(args.model, device)
    maps = track_attention_maps(model, processor, frames, box, frame_indices, args.layer, args.max_templates)
    paths = save_attention_maps(maps, args.output_dir)
    block = args.layer % model.config.num_hidden_layers
    print(
        f"Wrote {len(paths)} attention maps (temporal token over the search crop, block {block}, heads averaged) "
        f"to {args.output_dir}: " + ", ".join(path.name for path in paths)
    )
