"""Is tracker A really better than tracker B on a benchmark? A paired bootstrap over its sequences.

Both runs must have scored the same sequences (``metrics.json`` written by ``odtrack eval`` or by
``opencv_baselines.py``, whose file holds one entry per tracker: name it as ``FILE:TRACKER``). The
benchmark's score is the mean of the per-sequence scores, so resampling the sequences with replacement
(the same draw for both trackers, hence *paired*) shows how much the difference A - B depends on which
sequences happened to be in the set. Printed: the difference on the whole set, its 95 % percentile
interval over the resamples, and in how many sequences A is ahead, behind or level.

    python benchmarks/paired_bootstrap.py runs/eval/token/metrics.json runs/eval/fresh/metrics.json
    python benchmarks/paired_bootstrap.py runs/eval/token/metrics.json \\
        runs/baselines/wide_heldout/metrics.json:CSRT --score auc --resamples 10000
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
    parser.add_argument("--score", default="auc", help="per-sequence score to compare (default: auc)")
    parser.add_argument("--resamples", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    scores_a, scores_b = per_sequence_scores(args.a, args.score), per_sequence_scores(args.b, args.score)
    if set(scores_a) != set(scores_b):
        only = sorted(set(scores_a) ^ set(scores_b))
        raise SystemExit(f"the two runs scored different sequences (e.g. {only[:3]}); compare runs on the same set.")
    names = sorted(scores_a)
    a = np.array([scores_a[n] for n in names])
    b = np.array([scores_b[n] for n in names])
    mean, (low, high) = paired_bootstrap(a, b, args.resamples, args.seed)
    print(f"A = {args.a}\nB = {args.b}\n{len(names)} sequences, score {args.score}")
    print(f"A {a.mean():.2f}, B {b.mean():.2f}: A - B = {mean:+.2f}, 95 % interval [{low:+.2f}, {high:+.2f}]")
    print(f"A ahead in {int((a > b).sum())}, behind in {int((a < b).sum())}, level in {int((a == b).sum())} sequences")


if __name__ == "__main__":
    main()
