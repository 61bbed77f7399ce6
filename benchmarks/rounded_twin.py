"""A rounding-perturbed twin of a model folder: the same weights rounded to bf16, stored as float32.

Tracking is chaotic: the last bits of the arithmetic can move single sequences of a benchmark by tens of
AUC points, so one run cannot separate two models closer than about 2 points (docs/default_model.md §13).
On a CPU with native bf16 the second run is ``odtrack eval --dtype bfloat16``. Without native bf16 that
is emulated and many times slower, so this makes the second run another way: each weight rounded to the
nearest bf16 value (what bf16 autocast does to the weights), the arithmetic staying float32. Evaluate both
folders and give the twin's metrics to ``paired_bootstrap.py --also-a`` / ``--also-b``:

    python benchmarks/rounded_twin.py runs/my_model runs/my_model_twin
    odtrack eval --dataset folder --root data/wide --split heldout --model runs/my_model_twin \\
        --output-dir runs/eval/my_model_twin
    python benchmarks/paired_bootstrap.py runs/eval/my_model/metrics.json runs/eval/shipped/metrics.json \\
        --also-a runs/eval/my_model_twin/metrics.json --also-b runs/eval/shipped_twin/metrics.json

Leave out the source folder for the model shipped with the package.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

WEIGHTS = "model.safetensors"


def rounded_twin(source: Path, out: Path) -> None:
    """Copy the model folder ``source`` to ``out`` with every floating-point weight rounded to bf16 and
    stored as float32; ``out`` is written under a temporary name and renamed when complete."""
    if not (source / WEIGHTS).is_file():
        raise SystemExit(f"{source} has no {WEIGHTS}: give a save_pretrained folder (scripts/export_checkpoint.py writes one).")
    if out.exists():
        raise SystemExit(f"{out} exists; choose a new folder (nothing was written).")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(source, partial)
    weights = load_file(source / WEIGHTS)
    rounded = {
        name: (value.to(torch.bfloat16).float() if value.is_floating_point() else value).contiguous()
        for name, value in weights.items()
    }
    save_file(rounded, partial / WEIGHTS, metadata={"format": "pt"})
    partial.rename(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, nargs="?", help="model folder (default: the shipped model)")
    parser.add_argument("out", type=Path, help="the twin's folder (must not exist)")
    args = parser.parse_args(argv)
    if args.source is None:
        from odtrack_hf.model_loading import DEFAULT_MODEL_DIR

        args.source = DEFAULT_MODEL_DIR
    rounded_twin(args.source, args.out)
    print(f"{args.out}: {args.source} with its weights rounded to bf16 (stored as float32)")


if __name__ == "__main__":
    main()
