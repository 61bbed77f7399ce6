"""Train for a fixed time from the newest checkpoint, and carry the checkpoint between machines in small files.

The recipe for a borrowed GPU machine (it runs the same on a CPU, only slower):

    # there: join the checkpoint brought along, make any missing data, train 8 minutes, split the result
    python scripts/train_for_minutes.py examples/configs/default_model_stage4.yaml --minutes 8 \
        --from-parts parts/in --parts-out parts/out \
        --generate data/train "--num-sequences 400 --seed 0 --width 320 --min-frames 60 --max-frames 120"
    # back here: join the files and go on training on the CPU (--minutes 0 only joins)
    python scripts/train_for_minutes.py examples/configs/default_model_stage4.yaml --from-parts parts/out --minutes 30

The same for the shipped model's last stage (three dataset roots, and the image packages it needs) is in
docs/training.md, "Training for a fixed time on a borrowed machine".

Steps, in order:

1. ``--from-parts DIR``: the checkpoint split by an earlier run (``DIR/manifest.json`` and its parts) is
   checked (size and SHA-256 of every part and of the whole) and unpacked into
   ``<output_dir>/checkpoints/step_<n>/`` of the config, unless that step is already there.
2. Every ``folder`` dataset of the config whose root is missing is generated with ``odtrack generate-data
   --out <parent> --split <name> ARGS``, ARGS given per root with ``--generate ROOT ARGS``; a missing root
   without ``--generate`` stops the run before anything is trained.
3. Training (``odtrack_hf.training.train``) resumes from the newest checkpoint of ``output_dir`` and stops
   after about ``--minutes``: it runs in chunks of steps (``max_steps``), each ending with a checkpoint, and
   sizes the next chunk from the time the chunks so far took per step, so a stop costs no work and resume
   is exact (the training loop restores the sampler, the optimiser and the random state).
4. ``--parts-out DIR``: the newest checkpoint is packed (tar) and split into files of at most
   ``--part-mb`` MB (default 16) with ``DIR/manifest.json``; ``--from-parts`` reads them back.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from odtrack_hf.cli import main as cli_main
from odtrack_hf.training import TrainingConfig, list_checkpoints, train

MANIFEST = "manifest.json"
MB = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(MB), b""):
            digest.update(block)
    return digest.hexdigest()


def split_checkpoint(checkpoint: Path, out: Path, part_bytes: int = 16 * MB) -> list[Path]:
    """Pack ``checkpoint`` (a ``step_<n>`` folder) as tar, split it into ``out/<name>.tar.<k>`` files of at most
    ``part_bytes`` and write ``out/manifest.json`` (last, so a complete manifest means complete parts)."""
    if part_bytes < 1:
        raise ValueError(f"part size must be at least one byte, got {part_bytes}.")
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        archive = Path(scratch) / "checkpoint.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(checkpoint, arcname=checkpoint.name)
        parts = []
        with open(archive, "rb") as file:
            for index, block in enumerate(iter(lambda: file.read(part_bytes), b"")):
                part = out / f"{checkpoint.name}.tar.{index:03d}"
                part.write_bytes(block)
                parts.append(part)
        manifest = {
            "checkpoint": checkpoint.name,
            "sha256": _sha256(archive),
            "size": archive.stat().st_size,
            "parts": [{"file": p.name, "size": p.stat().st_size, "sha256": _sha256(p)} for p in parts],
        }
    temporary = out / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, out / MANIFEST)
    return parts


def join_checkpoint(parts_dir: Path, checkpoints_dir: Path) -> Path:
    """Check the parts listed in ``parts_dir/manifest.json`` and unpack the checkpoint into ``checkpoints_dir``.

    Returns the checkpoint folder. An existing folder of the same step is kept as it is.
    """
    manifest_path = parts_dir / MANIFEST
    if not manifest_path.is_file():
        raise FileNotFoundError(
            f"{manifest_path} is missing: give the folder that --parts-out wrote (its manifest comes last)."
        )
    manifest = json.loads(manifest_path.read_text())
    target = checkpoints_dir / manifest["checkpoint"]
    if target.is_dir():
        return target
    checkpoints_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=checkpoints_dir) as scratch:
        archive = Path(scratch) / "checkpoint.tar"
        with open(archive, "wb") as joined:
            for entry in manifest["parts"]:
                part = parts_dir / entry["file"]
                if not part.is_file() or part.stat().st_size != entry["size"] or _sha256(part) != entry["sha256"]:
                    raise ValueError(f"{part} is missing or damaged (size or SHA-256 differs); copy it again.")
                joined.write(part.read_bytes())
        if _sha256(archive) != manifest["sha256"]:
            raise ValueError(f"the parts in {parts_dir} join to a different file than was split; copy them again.")
        with tarfile.open(archive) as tar:
            tar.extractall(scratch, filter="data")
        os.replace(Path(scratch) / manifest["checkpoint"], target)
    return target


def missing_roots(config: TrainingConfig, generate: dict[str, str]) -> list[tuple[Path, str]]:
    """The folder datasets to generate: ``(root, generate-data arguments)``; an error for one nobody can make."""
    missing = []
    for spec in config.datasets:
        root = Path(spec.root)
        if spec.type != "folder" or root.is_dir():
            continue
        if spec.root not in generate:
            raise FileNotFoundError(
                f"dataset root {root} is missing; make it here with --generate {root} "
                "'--num-sequences N --seed S ...' (the arguments of odtrack generate-data) or copy it over."
            )
        missing.append((root, generate[spec.root]))
    return missing


def generate_data(root: Path, arguments: str) -> None:
    """``odtrack generate-data --out <root's parent> --split <root's name> ARGS``."""
    code = cli_main(["generate-data", "--out", str(root.parent), "--split", root.name, *shlex.split(arguments)])
    if code:
        raise SystemExit(code)


def train_for(config: TrainingConfig, seconds: float, first_chunk: int | None = None) -> int:
    """Train from the newest checkpoint for about ``seconds`` in chunks ending in a checkpoint; the last step."""
    start = time.monotonic()
    chunk = first_chunk or config.save_steps
    step = _newest_step(config)
    spent_per_step = None
    while True:
        left = seconds - (time.monotonic() - start)
        if spent_per_step is not None:
            chunk = int(left / spent_per_step)
        if chunk < 1 or left <= 0:
            return step
        chunk_start = time.monotonic()
        result = train(_replace(config, max_steps=step + chunk))
        done = result.state.step - step
        if done < 1:  # the schedule's last epoch is reached
            return result.state.step
        step = result.state.step
        # wall time per step including each chunk's start-up: sizes the next chunk to end before the limit
        spent_per_step = (time.monotonic() - chunk_start) / done


def _newest_step(config: TrainingConfig) -> int:
    found = list_checkpoints(config.output_dir)
    return int(found[-1].name.rsplit("_", 1)[1]) if found else 0


def _replace(config: TrainingConfig, **values) -> TrainingConfig:
    return TrainingConfig.from_dict({**config.to_dict(), **values})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="training config (.yaml); its output_dir holds the checkpoints")
    parser.add_argument("--minutes", type=float, required=True, help="training time; 0 only joins / splits")
    parser.add_argument("--from-parts", type=Path, help="folder of a split checkpoint to resume from")
    parser.add_argument("--parts-out", type=Path, help="split the newest checkpoint into this folder at the end")
    parser.add_argument("--part-mb", type=float, default=16.0, help="largest part, in MB (default 16)")
    parser.add_argument(
        "--generate",
        nargs=2,
        action="append",
        default=[],
        metavar=("ROOT", "ARGS"),
        help="generate the dataset root ROOT if it is missing, with these odtrack generate-data arguments",
    )
    parser.add_argument("--first-chunk", type=int, help="steps of the first chunk (default: the config's save_steps)")
    args = parser.parse_args(argv)
    try:
        config = TrainingConfig.from_file(args.config)
        if args.minutes < 0 or args.part_mb <= 0:
            raise ValueError("--minutes must be >= 0 and --part-mb > 0.")
        checkpoints = Path(config.output_dir) / "checkpoints"
        if args.from_parts is not None:
            print(f"joined {join_checkpoint(args.from_parts, checkpoints)}")
        to_generate = missing_roots(config, dict(args.generate)) if args.minutes > 0 else []
    except (ValueError, FileNotFoundError) as error:
        print(f"train_for_minutes: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    for root, arguments in to_generate:
        generate_data(root, arguments)
    if args.minutes > 0:
        step = train_for(config, args.minutes * 60, args.first_chunk)
        print(f"trained to step {step} in {config.output_dir}")
    if args.parts_out is not None:
        found = list_checkpoints(config.output_dir)
        if not found:
            print(f"train_for_minutes: {config.output_dir} has no checkpoint to split.", file=sys.stderr)
            raise SystemExit(2)
        parts = split_checkpoint(found[-1], args.parts_out, int(args.part_mb * MB))
        print(f"split {found[-1]} into {len(parts)} file(s) under {args.parts_out}")


if __name__ == "__main__":
    main()
