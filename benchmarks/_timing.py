"""Timing helpers shared by the benchmark scripts (not a test: no thresholds).

The machine is shared, so variants are timed in interleaved rounds (A, B, C, A, B, C, ...) and
compared by their medians: a burst of load from another job then hits every variant alike.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable

import torch


def interleaved_medians(variants: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per call of every variant, after one warm-up call each, timed in interleaved rounds."""
    for fn in variants.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def matmul_fn(size: int = 2048) -> tuple[Callable[[], object], float]:
    """A square fp32 matmul and its GFLOP, the reference rate of the machine."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return (lambda: a @ b), 2 * size**3 / 1e9


def machine_line(threads: int) -> str:
    """One line describing the run: torch version, threads, and the 1/5/15-minute load averages now."""
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, {threads} threads, "
        f"load average {load} (1/5/15 min) at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
