"""Convert an official ODTrack checkpoint into a transformers folder, reload it and compare outputs.

    python examples/convert_official_checkpoint.py ODTrack_ep0300.pth.tar --preset odtrack-base --output-dir out
    python examples/convert_official_checkpoint.py --output-dir odtrack-tiny   # no checkpoint at hand

Steps:
1. read the checkpoint safely (``weights_only=True``; the weights are under ``"net"``) and load the renamed
   tensors strictly into the preset's ``ODTrackModel`` (what ``odtrack convert`` does);
2. ``save_pretrained`` through the ``object-tracking`` pipeline, so the folder also holds the processor and
   the code that ``trust_remote_code=True`` loads;
3. reload the folder with ``AutoModel`` and with ``pipeline(...)`` and check that both reproduce the
   converted model's outputs exactly (raw forward on random crops, and boxes on a short synthetic clip).

The official weights are distributed by the authors (https://github.com/GXNU-ZhongLab/ODTrack) and cannot
be downloaded here. Without a checkpoint path the example writes a tiny, randomly initialised checkpoint
with the official key names, shapes and file layout, and converts that.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModel, pipeline

from odtrack_hf import ODTrackConfig, ODTrackProcessor, odtrack_preset
from odtrack_hf.conversion import convert_official_checkpoint

TINY = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    template_size=32,
    search_size=64,
    pretrain_image_size=64,
    head_channels=16,
    ce_layers=[1],
    ce_keep_ratios=[0.7],
)


def official_state_dict(config: ODTrackConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors named and shaped like the official ``ODTrack.state_dict()``
    (docs/official-implementation.md, "Checkpoints and weight loading")."""
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int, offset: float = 0.0) -> torch.Tensor:
        return offset + 0.02 * torch.randn(*shape, generator=generator)

    width, patch = config.hidden_size, config.patch_size
    mlp = int(width * config.mlp_ratio)
    state = {
        "backbone.cls_token": rand(1, 1, width),
        "backbone.pos_embed": rand(1, 1 + (config.pretrain_image_size // patch) ** 2, width),
        "backbone.pos_embed_z": rand(1, (config.template_size // patch) ** 2, width),
        "backbone.pos_embed_x": rand(1, (config.search_size // patch) ** 2, width),
        "backbone.cls_pos_embed": rand(1, 1, width),
        "backbone.patch_embed.proj.weight": rand(width, 3, patch, patch),
        "backbone.patch_embed.proj.bias": rand(width),
        "backbone.norm.weight": rand(width, offset=1.0),
        "backbone.norm.bias": rand(width),
    }
    for block in range(config.num_hidden_layers):
        for name, shape in (
            ("norm1", (width,)),
            ("attn.qkv", (3 * width, width)),
            ("attn.proj", (width, width)),
            ("norm2", (width,)),
            ("mlp.fc1", (mlp, width)),
            ("mlp.fc2", (width, mlp)),
        ):
            state[f"backbone.blocks.{block}.{name}.weight"] = rand(*shape, offset=1.0 if "norm" in name else 0.0)
            state[f"backbone.blocks.{block}.{name}.bias"] = rand(shape[0])
    channels = [width] + [config.head_channels // 2**k for k in range(4)]
    for branch, outputs in (("ctr", 1), ("offset", 2), ("size", 2)):
        for layer, (c_in, c_out) in enumerate(zip(channels, channels[1:]), start=1):
            conv, norm = f"box_head.conv{layer}_{branch}.0", f"box_head.conv{layer}_{branch}.1"
            state[f"{conv}.weight"], state[f"{conv}.bias"] = rand(c_out, c_in, 3, 3), rand(c_out)
            state[f"{norm}.weight"], state[f"{norm}.bias"] = rand(c_out, offset=1.0), rand(c_out)
            # non-trivial running statistics, so that eval-mode BatchNorm matters
            state[f"{norm}.running_mean"], state[f"{norm}.running_var"] = rand(c_out), rand(c_out, offset=1.0)
            state[f"{norm}.num_batches_tracked"] = torch.tensor(1000)
        state[f"box_head.conv5_{branch}.weight"] = rand(outputs, channels[-1], 1, 1)
        state[f"box_head.conv5_{branch}.bias"] = rand(outputs)
    return state


def max_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", nargs="?", type=Path, help="official *.pth.tar (default: make a tiny one)")
    parser.add_argument("--preset", default="odtrack-base", help="official model of the checkpoint")
    parser.add_argument("--output-dir", type=Path, default=Path("odtrack-converted"), help="folder to write")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        if args.checkpoint is None:
            config = ODTrackConfig(**TINY)
            checkpoint = Path(scratch) / "ODTrack_ep0300.pth.tar"
            # the layout of an official training checkpoint: the model weights under "net"
            torch.save({"net": official_state_dict(config), "epoch": 300, "net_type": "ODTrack"}, checkpoint)
            print(f"No checkpoint given: converting a tiny official-format checkpoint ({checkpoint.name})")
        else:
            config, checkpoint = odtrack_preset(args.preset), args.checkpoint
        model = convert_official_checkpoint(checkpoint, config)  # strict: every tensor must fit
    print(f"Converted {model.num_parameters():,} parameters")

    processor = ODTrackProcessor.from_model_config(config)
    tracker = pipeline("object-tracking", model=model, processor=processor, device="cpu")
    tracker.save_pretrained(args.output_dir)
    print(f"Saved model, processor and code to {args.output_dir}: {sorted(p.name for p in args.output_dir.iterdir())}")

    generator = torch.Generator().manual_seed(0)
    search = torch.randn(1, 3, config.search_size, config.search_size, generator=generator)
    templates = torch.randn(1, config.num_templates, 3, config.template_size, config.template_size, generator=generator)
    reloaded = AutoModel.from_pretrained(args.output_dir)
    with torch.no_grad():
        expected, got = model(search, templates), reloaded(search, templates)
    differences = {
        name: max_difference(getattr(expected, name), getattr(got, name))
        for name in ("pred_boxes", "score_map", "last_hidden_state")
    }
    print("Max abs difference, converted vs reloaded:", differences)

    side = 4 * config.search_size
    frames = list(np.random.default_rng(0).integers(0, 256, size=(4, side * 3 // 4, side, 3), dtype=np.uint8))
    box = [side * 0.4, side * 0.3, side * 0.55, side * 0.45]  # xmin, ymin, xmax, ymax on the first frame
    boxes_in_memory = tracker(frames, boxes=[box])
    boxes_reloaded = pipeline(model=str(args.output_dir), trust_remote_code=True, device="cpu")(frames, boxes=[box])
    print("Tracked boxes (reloaded folder):", [frame[0]["box"] for frame in boxes_reloaded])

    if any(differences.values()) or boxes_reloaded != boxes_in_memory:
        print("MISMATCH: the saved folder does not reproduce the converted model", file=sys.stderr)
        return 1
    print("OK: the saved folder reproduces the converted model exactly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
