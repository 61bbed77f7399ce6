"""Time one ODTrack tracking step and print ratios measured side by side in one run.

One step = the model forward for one search crop with the tracker's templates (ODTrack-B: 384-px
search, 192-px templates, concat attention + candidate elimination, eval mode). Printed, all timed in
interleaved rounds of the same run:

- sdpa (fast path) vs eager (faithful written-out softmax, as the official code), fp32, with the max
  abs difference of their outputs;
- bf16 under ``torch.autocast`` (float32 weights) and with bf16 weights, vs fp32 sdpa, with their
  max abs difference;
- achieved GFLOP/s (``torch.utils.flop_counter``) as a fraction of a same-run fp32 2048^3 matmul;
- with ``--compile``: the bf16-weights step through ``torch.compile`` (inductor), with and without
  inductor's ``freezing`` (weights folded into the graph as constants and pre-packed for oneDNN, which
  an inference-only step can afford). Compiling takes minutes on a CPU; it happens before the timing.

    python benchmarks/model_step.py --preset odtrack-base --templates 3 --threads 2 --repeats 5 --compile
"""

from __future__ import annotations

import argparse
import copy

import torch
from _timing import interleaved_medians, machine_line, matmul_fn
from torch.utils.flop_counter import FlopCounterMode

from odtrack_hf import ODTrackModel, odtrack_preset

COMPARED = ("pred_boxes", "score_map", "size_map", "offset_map", "temporal_token")


def max_abs_differences(outputs, reference) -> str:
    """Max abs difference of each compared output, e.g. ``pred_boxes 1.2e-06, score_map ...``."""
    return ", ".join(
        f"{k} {(getattr(outputs, k).float() - getattr(reference, k).float()).abs().max().item():.1e}" for k in COMPARED
    )


def compiled_variants(model: ODTrackModel, search: torch.Tensor, templates: torch.Tensor) -> dict:
    """The bf16 step compiled by inductor, without and with ``freezing``, each compiled here (first call)."""
    variants = {}
    for name, freezing in (("bf16 weights compiled", False), ("bf16 weights compiled+frozen", True)):
        # the options make each a backend of its own, so the second is compiled anew, not served from cache
        compiled = torch.compile(copy.deepcopy(model), options={"freezing": freezing})
        with torch.inference_mode():
            compiled(search, templates)
        variants[name] = lambda compiled=compiled: compiled(search, templates)
    return variants


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="odtrack-base")
    parser.add_argument("--templates", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd bf16 steps")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = odtrack_preset(args.preset)
    model = ODTrackModel(config).eval()
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    bf16_weights = copy.deepcopy(model).to(torch.bfloat16)
    search = torch.randn(1, 3, config.search_size, config.search_size)
    templates = torch.randn(1, args.templates, 3, config.template_size, config.template_size)

    def autocast_step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return model(search, templates)

    variants = {
        "eager fp32": lambda: eager(search, templates),
        "sdpa fp32": lambda: model(search, templates),
        "sdpa bf16 autocast": autocast_step,
        "sdpa bf16 weights": lambda: bf16_weights(search.bfloat16(), templates.bfloat16()),
    }
    if args.compile:
        variants.update(compiled_variants(bf16_weights, search.bfloat16(), templates.bfloat16()))
    matmul, matmul_gflop = matmul_fn()
    with torch.inference_mode():
        # counted on the eager copy: the counter has no formula for the fused CPU attention kernel, so
        # under sdpa it would miss the attention products (26 of 172 GFLOP for ODTrack-B)
        with FlopCounterMode(display=False) as counter:
            eager(search, templates)
        gflop = counter.get_total_flops() / 1e9
        reference = variants["sdpa fp32"]()
        differences = {
            name: max_abs_differences(fn(), reference) for name, fn in variants.items() if name != "sdpa fp32"
        }
        seconds = interleaved_medians({**variants, "fp32 matmul": matmul}, args.repeats)
    matmul_rate = matmul_gflop / seconds.pop("fp32 matmul")

    print(f"{args.preset}: {args.templates} templates, {config.search_size}-px search, attn_type={config.attn_type}, "
          f"CE layers {config.ce_layers}")
    print(f"  {machine_line(args.threads)}")
    print(f"  FLOPs per step: {gflop:.1f} GFLOP; fp32 2048^3 matmul: {matmul_rate:.1f} GFLOP/s")
    fp32 = seconds["sdpa fp32"]
    for name, value in seconds.items():
        rate = gflop / value
        print(f"  {name:19s}: {value * 1e3:8.1f} ms/step  {rate:6.1f} GFLOP/s = {rate / matmul_rate:.2f} x fp32 matmul  "
              f"speed {fp32 / value:.2f}x sdpa fp32")
    for name, diff in differences.items():
        print(f"  max |{name} - sdpa fp32|: {diff}")
    print(f"  sdpa / eager speed-up (fp32): {seconds['eager fp32'] / fp32:.2f}x")


if __name__ == "__main__":
    main()
