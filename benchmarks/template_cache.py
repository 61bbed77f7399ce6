"""Separate attention with the template cache vs without, measured side by side in one run.

Model: the ``odtrack-base-separate`` preset (ODTrack-B-384, separate attention, no CE). Timed in
interleaved rounds: the uncached step (templates through every block each frame), the cached step
(``template_cache=`` of ``encode_templates``), and ``encode_templates`` itself. The tracker re-encodes
an object's templates only when its selection changes: every frame for the first ``2n`` frames, then
once every ``n`` frames, so the steady-state cost per frame is ``cached + encode / n``.

    python benchmarks/template_cache.py --templates 4 --threads 2 --repeats 5
"""

from __future__ import annotations

import argparse

import torch
from _timing import interleaved_medians, machine_line
from torch.utils.flop_counter import FlopCounterMode

from odtrack_hf import ODTrackModel, odtrack_preset

COMPARED = ("pred_boxes", "score_map", "size_map", "offset_map", "temporal_token", "last_hidden_state")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="odtrack-base-separate")
    parser.add_argument("--templates", type=int, default=4, help="n + 1 = 4: the tracker's count after 2n frames")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = odtrack_preset(args.preset)
    model = ODTrackModel(config).eval()
    search = torch.randn(1, 3, config.search_size, config.search_size)
    templates = torch.randn(1, args.templates, 3, config.template_size, config.template_size)
    token = torch.randn(1, 1, config.hidden_size)
    with torch.inference_mode():
        cache = model.encode_templates(templates)
        uncached = model(search, templates, temporal_token=token)
        cached = model(search, template_cache=cache, temporal_token=token)
        difference = max((getattr(cached, k) - getattr(uncached, k)).abs().max().item() for k in COMPARED)
        gflop = {}
        for name, call in (
            ("uncached step", lambda: model(search, templates, temporal_token=token)),
            ("cached step", lambda: model(search, template_cache=cache, temporal_token=token)),
            ("encode_templates", lambda: model.encode_templates(templates)),
        ):
            with FlopCounterMode(display=False) as counter:
                call()
            gflop[name] = counter.get_total_flops() / 1e9
        seconds = interleaved_medians(
            {
                "uncached step": lambda: model(search, templates, temporal_token=token),
                "cached step": lambda: model(search, template_cache=cache, temporal_token=token),
                "encode_templates": lambda: model.encode_templates(templates),
            },
            args.repeats,
        )
    n = config.tracker_template_number
    amortised = seconds["cached step"] + seconds["encode_templates"] / n

    print(f"{args.preset}: {args.templates} templates of {config.template_size} px, {config.search_size}-px search")
    print(f"  {machine_line(args.threads)}")
    for name, value in seconds.items():
        print(f"  {name:17s}: {value * 1e3:8.1f} ms  {gflop[name]:6.1f} GFLOP  {gflop[name] / value:6.1f} GFLOP/s")
    print(f"  cached / uncached speed-up per step: {seconds['uncached step'] / seconds['cached step']:.2f}x "
          f"(FLOP ratio {gflop['uncached step'] / gflop['cached step']:.2f}x)")
    print(f"  with re-encoding every n = {n} frames (steady state): {seconds['uncached step'] / amortised:.2f}x")
    print(f"  max |cached - uncached| over outputs and last_hidden_state: {difference:.2e}")


if __name__ == "__main__":
    main()
