"""Is tracker A really better than tracker B on a benchmark? A paired bootstrap over its sequences.

Both runs must have scored the same sequences (``metrics.json`` written by ``odtrack eval`` or by
``opencv_baselines.py``, whose file holds one entry per tracker: name it as ``FILE:TRACKER``). The
benchmark's score is the mean of the per-sequence scores, so resampling the sequences with replacement
(the same draw for both trackers, hence *paired*) shows how much the difference A - B depends on which
sequences happened to be in the set. Printed: the difference on the whole set, its 95 % percentile
interval over the resamples, and in how many sequences A is ahead, behind or level.

A tracker's per-sequence scores also move when nothing but the last bits of its arithmetic change (float32
against bf16 autocast, or AVX2 against AVX-512 kernels): after a hard frame the box can settle on another
object, so single sequences flip and the set's AUC moves by up to 2 points (docs/default_model.md §13).
The bootstrap over sequences does not see that spread. ``--also-a`` / ``--also-b`` add more runs of the same
tracker (e.g. the other compute dtype, or on a CPU without native bf16 the twin with bf16-rounded weights
that ``rounded_twin.py`` makes); each sequence's score is then the mean over that tracker's runs.

    python benchmarks/paired_bootstrap.py runs/eval/token/metrics.json runs/eval/fresh/metrics.json
    python benchmarks/paired_bootstrap.py runs/eval/token/metrics.json \\
        runs/baselines/wide_heldout/metrics.json:CSRT --score auc --resamples 10000
    python benchmarks/paired_bootstrap.py runs/eval/new_f32/metrics.json runs/eval/old_f32/metrics.json \\
        --also-a runs/eval/new_bf16/metrics.json --also-b runs/eval/old_bf16/metrics.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def per_sequence_scores(spec: str, score: str) -> dict[str, float]:
    """``{sequence: score}`` from ``metrics.json`` or ``metrics.json:TRACKER``."""
    path, _, tracker = spec.partition(":")
    metrics = json.loads(Path(path).read_text())
    if tracker:
        if tracker not in metrics:
            raise SystemExit(f"{path} has no tracker {tracker!r}; it has {', '.join(metrics)}.")
        metrics = metrics[tracker]
    if "per_sequence" not in metrics:
        raise SystemExit(f"{spec}: no per_sequence scores (for a file of several trackers, add :TRACKER).")
    return {name: float(values[score]) for name, values in metrics["per_sequence"].items()}


def mean_scores(specs: list[str], score: str) -> dict[str, float]:
    """``{sequence: score}`` averaged over several runs of one tracker, which must have scored the same sequences."""
    runs = [per_sequence_scores(spec, score) for spec in specs]
    for spec, run in zip(specs[1:], runs[1:]):
        if set(run) != set(runs[0]):
            only = sorted(set(run) ^ set(runs[0]))
            raise SystemExit(f"{spec} and {specs[0]} scored different sequences (e.g. {only[:3]}); average runs of the same set.")
    return {name: float(np.mean([run[name] for run in runs])) for name in runs[0]}


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, resamples: int, seed: int = 0
) -> tuple[float, tuple[float, float]]:
    """Mean of ``a - b`` and the 2.5 / 97.5 percentiles of that mean over ``resamples`` paired resamples."""
    differences = a - b
    draws = np.random.default_rng(seed).integers(0, len(differences), size=(resamples, len(differences)))
    means = differences[draws].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(differences.mean()), (float(low), float(high))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("a", help="metrics.json of tracker A (FILE or FILE:TRACKER)")
    parser.add_argument("b", help="metrics.json of tracker B (FILE or FILE:TRACKER)")
    parser.add_argument("--also-a", nargs="+", default=[], metavar="FILE", help="more runs of A, averaged per sequence")
    parser.add_argument("--also-b", nargs="+", default=[], metavar="FILE", help="more runs of B, averaged per sequence")
    parser.add_argument("--score", default="auc", help="per-sequence score to compare (default: auc)")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    specs_a, specs_b = [args.a, *args.also_a], [args.b, *args.also_b]
    scores_a, scores_b = mean_scores(specs_a, args.score), mean_scores(specs_b, args.score)
    if set(scores_a) != set(scores_b):
        only = sorted(set(scores_a) ^ set(scores_b))
        raise SystemExit(f"the two runs scored different sequences (e.g. {only[:3]}); compare runs on the same set.")
    names = sorted(scores_a)
    a = np.array([scores_a[n] for n in names])
    b = np.array([scores_b[n] for n in names])
    mean, (low, high) = paired_bootstrap(a, b, args.resamples, args.seed)
    print(f"A = {' + '.join(specs_a)}\nB = {' + '.join(specs_b)}\n{len(names)} sequences, score {args.score}")
    print(f"A {a.mean():.2f}, B {b.mean():.2f}: A - B = {mean:+.2f}, 95 % interval [{low:+.2f}, {high:+.2f}]")
    print(f"A ahead in {int((a > b).sum())}, behind in {int((a < b).sum())}, level in {int((a == b).sum())} sequences")


if __name__ == "__main__":
    main()
