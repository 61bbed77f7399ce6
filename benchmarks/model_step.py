"""Time one ODTrack tracking step and print ratios measured side by side in one run.

One step = the model forward for one search crop with the tracker's templates (ODTrack-B: 384-px
search, 192-px templates, concat attention + candidate elimination, fp32, eval mode). Printed:
sdpa vs eager attention, and the achieved GFLOP/s as a fraction of a same-run fp32 matmul.

    python benchmarks/model_step.py --preset odtrack-base --templates 3 --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from odtrack_hf import ODTrackModel, odtrack_preset


def _median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _matmul_gflops(repeats: int) -> float:
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    seconds = _median_seconds(lambda: a @ b, repeats)
    return 2 * 2048**3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="odtrack-base")
    parser.add_argument("--templates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = odtrack_preset(args.preset)
    model = ODTrackModel(config).eval()
    search = torch.randn(1, 3, config.search_size, config.search_size)
    templates = torch.randn(1, args.templates, 3, config.template_size, config.template_size)

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(search, templates)
    gflop = counter.get_total_flops() / 1e9

    results = {}
    for implementation in ("eager", "sdpa"):
        model.set_attn_implementation(implementation)
        with torch.inference_mode():
            results[implementation] = _median_seconds(lambda: model(search, templates), args.repeats)
    matmul = _matmul_gflops(args.repeats)

    print(f"{args.preset}: {args.templates} templates, {config.search_size}-px search, {args.threads} threads, fp32")
    print(f"  FLOPs per step: {gflop:.1f} GFLOP")
    for name, seconds in results.items():
        rate = gflop / seconds
        print(f"  {name:5s}: {seconds * 1e3:8.1f} ms/step  {rate:6.1f} GFLOP/s  = {rate / matmul:.2f} x fp32 matmul")
    print(f"  fp32 matmul 2048^3: {matmul:.1f} GFLOP/s")
    print(f"  sdpa / eager speed-up: {results['eager'] / results['sdpa']:.2f}x")


if __name__ == "__main__":
    main()
