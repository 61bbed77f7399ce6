"""Parameters, FLOPs and speed of the ODTrack model step, like the paper's Table 1.

The official ``tracking/profile_model.py`` (docs/official-implementation.md, "Evaluation") profiles a randomly
initialised network left in train mode (BatchNorm on batch statistics, DropPath active) with 3 templates. Here the model is in eval mode and gets
``tracker_template_number + 1`` templates, as the tracker uses from frame ``2 * tracker_template_number`` on, with
candidate elimination at the configured keep ratios and the temporal token carried from step to step.

FLOPs come from ``torch.utils.flop_counter``: matrix products and convolutions (elementwise operations, softmax
and normalisation are not counted), 2 FLOPs per multiply-accumulate. The paper's "73G FLOPs" and "92M params" are
thop's counts: thop counts MACs of ``nn`` modules only, so it leaves out the attention products ``q @ k^T`` and
``attn @ v`` (plain tensor operations) and the parameters held directly by non-leaf modules (the position tables
and the temporal token). Both are printed; for ODTrack-B with 3 templates they give 73.0 GMACs and 92,120,709
parameters (thop: 73.10 G, 92.12 M).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.flop_counter import FlopCounterMode

if TYPE_CHECKING:
    from ..modeling_odtrack import ODTrackModel


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """``total``, ``trainable`` (``requires_grad``) and ``leaf`` parameters (those of modules without children,
    which is what thop adds up)."""
    leaf = sum(p.numel() for m in model.modules() if not any(m.children()) for p in m.parameters(recurse=False))
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "leaf": leaf,
    }


def _inputs(model: ODTrackModel, num_templates: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    config = model.config
    generator = torch.Generator().manual_seed(0)
    search = torch.randn(1, 3, config.search_size, config.search_size, generator=generator)
    templates = torch.randn(1, num_templates, 3, config.template_size, config.template_size, generator=generator)
    return search.to(device, model.dtype), templates.to(device, model.dtype)


def count_flops(model: ODTrackModel, num_templates: int | None = None) -> dict[str, int]:
    """FLOPs of one eval-mode step (batch 1, with a temporal token) by ``torch.utils.flop_counter``.

    The count runs with eager attention, whose products the counter sees (it has no formula for the fused CPU
    attention kernel); the model's attention implementation is restored afterwards.

    Returns:
        ``flops`` (total) and ``attention_flops`` (the ``q @ k^T`` and ``attn @ v`` products).
    """
    num_templates = num_templates or model.config.tracker_template_number + 1
    search, templates = _inputs(model, num_templates, model.device)
    implementation = model.config._attn_implementation
    model.eval()
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            token = model(search, templates).temporal_token
            with FlopCounterMode(display=False) as counter:
                model(search, templates, temporal_token=token)
    finally:
        model.set_attn_implementation(implementation)
    counts = counter.get_flop_counts()
    attention = sum(
        flops
        for module, per_op in counts.items()
        if module.endswith(".attention")
        for op, flops in per_op.items()
        if op is torch.ops.aten.bmm
    )
    return {"flops": counter.get_total_flops(), "attention_flops": attention}


def time_model(
    model: ODTrackModel, num_templates: int | None = None, warmup: int = 10, iterations: int = 100
) -> dict[str, float]:
    """Mean seconds per model step and steps per second, timed like ``profile_model.py`` (synchronised before
    the warm-up and after the timed loop; the temporal token is carried over), but in eval mode.

    Only the network is timed: no cropping, pre- or post-processing (``odtrack eval`` times the tracker step).
    """
    if iterations < 1 or warmup < 0:
        raise ValueError(f"need iterations >= 1 and warmup >= 0, got {iterations} and {warmup}.")
    num_templates = num_templates or model.config.tracker_template_number + 1
    search, templates = _inputs(model, num_templates, model.device)
    synchronize = torch.cuda.synchronize if model.device.type == "cuda" else lambda: None
    model.eval()
    token = None
    with torch.inference_mode():
        synchronize()
        for _ in range(warmup):
            token = model(search, templates, temporal_token=token).temporal_token
        start = time.perf_counter()
        for _ in range(iterations):
            token = model(search, templates, temporal_token=token).temporal_token
        synchronize()
        seconds = (time.perf_counter() - start) / iterations
    return {"latency_s": seconds, "fps": 1.0 / seconds}


def profile_model(
    model: ODTrackModel, num_templates: int | None = None, warmup: int = 10, iterations: int = 100
) -> dict[str, Any]:
    """Parameters, FLOPs and speed of one model step (see the module docstring for the conventions).

    Args:
        model: the model to profile; it is switched to eval mode.
        num_templates: templates per step (default ``tracker_template_number + 1``, as at inference).
        warmup, iterations: untimed and timed steps.

    Returns:
        ``num_templates``; ``parameters`` / ``trainable_parameters`` / ``leaf_parameters``; ``flops``, ``macs``
        (``flops / 2``), ``attention_macs`` and ``macs_without_attention`` (thop's scope); ``latency_s``, ``fps``.
    """
    num_templates = num_templates or model.config.tracker_template_number + 1
    if num_templates < 1:
        raise ValueError(f"--templates must be >= 1, got {num_templates}.")
    parameters = count_parameters(model)
    flops = count_flops(model, num_templates)
    return {
        "num_templates": num_templates,
        "parameters": parameters["total"],
        "trainable_parameters": parameters["trainable"],
        "leaf_parameters": parameters["leaf"],
        "flops": flops["flops"],
        "macs": flops["flops"] / 2,
        "attention_macs": flops["attention_flops"] / 2,
        "macs_without_attention": (flops["flops"] - flops["attention_flops"]) / 2,
        **time_model(model, num_templates, warmup, iterations),
    }


def _scaled(value: float, unit: str) -> str:
    """``value`` in G (or M below 1e9), e.g. ``73.03 GMACs``."""
    return f"{value / 1e9:.2f} G{unit}" if value >= 1e9 else f"{value / 1e6:.2f} M{unit}"


def format_profile(profile: dict[str, Any], model: ODTrackModel, name: str, threads: int) -> str:
    """The profile as the lines ``odtrack profile`` prints."""
    config = model.config
    ce = (
        f"candidate elimination after blocks {list(config.ce_layers)} keeping {list(config.ce_keep_ratios)}"
        if config.use_candidate_elimination
        else "no candidate elimination"
    )
    lines = [
        f"{name}: eval mode, {model.device}, {threads} CPU threads",
        (
            f"  step: 1 search crop {config.search_size}x{config.search_size}, {profile['num_templates']} "
            f"templates {config.template_size}x{config.template_size}, temporal token, {ce}"
        ),
        (
            f"  parameters: {profile['parameters']:,} ({profile['parameters'] / 1e6:.2f} M), "
            f"{profile['trainable_parameters']:,} trainable; {profile['leaf_parameters']:,} in leaf modules "
            "(thop's count, the paper's \"params\")"
        ),
        (
            f"  FLOPs: {_scaled(profile['flops'], 'FLOPs')} = {_scaled(profile['macs'], 'MACs')} "
            "(torch.utils.flop_counter: matrix products and convolutions, 1 MAC = 2 FLOPs)"
        ),
        (
            f"         {_scaled(profile['macs_without_attention'], 'MACs')} without the attention products "
            f"({_scaled(profile['attention_macs'], 'MACs')}): thop's scope; the paper's \"73G FLOPs\" is this "
            "MAC count for ODTrack-B with 3 templates"
        ),
        (
            f"  speed: {profile['latency_s'] * 1e3:.2f} ms per model step, {profile['fps']:.1f} fps "
            "(network forward only, no cropping or post-processing)"
        ),
    ]
    return "\n".join(lines)
