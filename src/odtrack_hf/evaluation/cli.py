"""``odtrack eval``: the argparse front end of :mod:`odtrack_hf.evaluation.runner`, registered by
``odtrack_hf.cli``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli_common import add_dtype_argument, add_model_arguments
from .benchmarks import DATASETS
from .metrics import CONVENTIONS


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
    from .runner import EvalConfig, evaluate_benchmark, format_summary

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
