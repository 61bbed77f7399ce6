"""Helpers shared by the official-parity tests: locate fixture sets and build their configs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file

from odtrack_hf import ODTrackConfig
from odtrack_hf.conversion import convert_official_state_dict

# shipped with the tests (see its README.md); ODTRACK_PARITY_FIXTURES points the suite at another set
DEFAULT_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "official-parity"


def fixture_root() -> Path:
    return Path(os.environ.get("ODTRACK_PARITY_FIXTURES") or DEFAULT_FIXTURES)


def fixture_dirs() -> list[Path]:
    """Every directory under the fixture root that holds a complete model fixture."""
    root = fixture_root()
    if not root.is_dir():
        return []
    return sorted(p.parent for p in root.rglob("official_state_dict.safetensors"))


def config_from_fixture(directory: Path) -> ODTrackConfig:
    """The ODTrackConfig of a fixture, from the hyper-parameters recorded in its config.json."""
    meta = json.loads((directory / "config.json").read_text())
    model, tracker = meta["model"], meta.get("tracker", {})
    assert model.get("token_len", 1) == 1 and model.get("add_cls_token", True), "only one temporal token exists"
    assert model.get("head_type", "CENTER") == "CENTER"
    return ODTrackConfig(
        hidden_size=model["embed_dim"],
        num_hidden_layers=model["depth"],
        num_attention_heads=model["num_heads"],
        mlp_ratio=float(model["mlp_ratio"]),
        qkv_bias=model["qkv_bias"],
        layer_norm_eps=model["layer_norm_eps"],
        patch_size=model["patch_size"],
        pretrain_image_size=model.get("pos_embed_img_size", 224),
        template_size=model["template_size"],
        search_size=model["search_size"],
        template_factor=tracker.get("template_factor", 2.0),
        search_factor=tracker.get("search_factor", 5.0),
        tracker_template_number=tracker.get("template_number", 3),
        attn_type=model["attn_type"],
        ce_layers=list(model["ce_loc"]),
        ce_keep_ratios=list(model["ce_keep_ratio"]),
        ce_template_range=(model.get("ce_template_range") or "ctr_point").lower(),
        head_channels=model["head_num_channels"],
        head_batch_norm_eps=model.get("head_batchnorm_eps", 1e-5),
        drop_path_rate=model.get("drop_path_rate", 0.1),
    )


def converted_state_dict(directory: Path):
    return convert_official_state_dict(load_file(directory / "official_state_dict.safetensors"))


def tracker_from_fixture(directory: Path):
    """The converted fixture model (eval mode), a processor with the fixture's tracker settings, and
    the ``tracker`` section of its config.json."""
    from odtrack_hf import ODTrackModel, ODTrackProcessor
    from odtrack_hf.conversion import load_state_dict_strict

    tracker = json.loads((directory / "config.json").read_text())["tracker"]
    model = ODTrackModel(config_from_fixture(directory))
    load_state_dict_strict(model, converted_state_dict(directory), directory.name)
    processor = ODTrackProcessor(
        template_factor=tracker["template_factor"],
        template_size=tracker["template_size"],
        search_factor=tracker["search_factor"],
        search_size=tracker["search_size"],
    )
    return model.eval(), processor, tracker
