"""``odtrack`` command line: an argparse front end over the library, nothing else.

Every sub-command is a ``_add_<name>(subparsers)`` function that registers its parser and sets
``func``. Bad input ends with exit code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


class CommandError(Exception):
    """A user error: printed as one line, exit code 2."""


def _add_convert(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official ODTrack checkpoint (*.pth.tar) to a save_pretrained folder",
        description="Read an official checkpoint (weights under 'net', or a bare state dict) safely with "
        "weights_only=True and write config.json + model.safetensors.",
    )
    parser.add_argument("checkpoint", type=Path, help="official checkpoint, e.g. ODTrack_ep0300.pth.tar")
    parser.add_argument("output_dir", type=Path, help="folder to write (save_pretrained layout)")
    parser.add_argument(
        "--preset",
        default="odtrack-base",
        help="official model the checkpoint belongs to (odtrack-base, odtrack-base-got10k, odtrack-large, "
        "odtrack-large-got10k, odtrack-base-separate)",
    )
    parser.add_argument("--config", type=Path, help="config.json with overrides of the preset (optional)")
    parser.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> None:
    import json

    from .configuration_odtrack import odtrack_preset
    from .conversion import convert_official_checkpoint

    overrides = json.loads(args.config.read_text()) if args.config else {}
    config = odtrack_preset(args.preset, **overrides)
    model = convert_official_checkpoint(args.checkpoint, config, args.output_dir)
    count = sum(p.numel() for p in model.parameters())
    print(f"Converted {args.checkpoint} ({args.preset}, {count:,} parameters) to {args.output_dir}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odtrack", description="ODTrack visual object tracking")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in (_add_convert,):
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"odtrack {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
