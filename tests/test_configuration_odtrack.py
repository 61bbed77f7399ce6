import json

import pytest
from transformers import AutoConfig

from odtrack_hf import PRESETS, ODTrackConfig, ODTrackModel, odtrack_preset
from conftest import tiny_config


def test_defaults_are_odtrack_b():
    config = ODTrackConfig()
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (768, 12, 12)
    assert (config.template_size, config.search_size, config.patch_size) == (192, 384, 16)
    assert config.ce_layers == [3, 6, 9] and config.ce_keep_ratios == [0.7, 0.7, 0.7]
    # docs/official-implementation.md, "Attention and candidate elimination"
    assert config.ce_keep_counts() == [404, 283, 199]
    assert config.intermediate_size == 3072 and config.head_dim == 64
    assert config.attn_type == "concat" and config.layer_norm_eps == 1e-6


@pytest.mark.parametrize(
    "name, expected",
    [("odtrack-base", 92_826_501), ("odtrack-large", 312_283_525), ("odtrack-base-separate", 92_826_501)],
)
def test_presets_have_official_parameter_counts(name, expected):
    model = ODTrackModel(odtrack_preset(name))
    # the official code holds the frozen pre-training position table as a parameter; here it is a buffer
    frozen_table = model.embeddings.pretrain_position_embeddings.numel()
    assert sum(p.numel() for p in model.parameters()) + frozen_table == expected


def test_got10k_presets_use_four_memory_segments():
    assert odtrack_preset("odtrack-base-got10k").tracker_template_number == 4
    assert odtrack_preset("odtrack-large-got10k").hidden_size == 1024
    assert set(PRESETS) >= {"odtrack-base", "odtrack-base-got10k", "odtrack-large", "odtrack-large-got10k"}
    with pytest.raises(ValueError, match="Unknown ODTrack preset"):
        odtrack_preset("odtrack-huge")


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"search_size": 100}, "multiple of patch_size"),
        ({"template_size": 200}, "multiple of patch_size"),
        ({"hidden_size": 100, "num_attention_heads": 12}, "divisible by num_attention_heads"),
        ({"ce_keep_ratios": [0.7, 0.0, 0.7]}, r"\(0, 1\]"),
        ({"ce_keep_ratios": [0.7, 1.5, 0.7]}, r"\(0, 1\]"),
        ({"ce_layers": [3, 6]}, "same length"),
        ({"ce_layers": [3, 6, 12]}, "outside the backbone"),
        ({"ce_layers": [6, 3, 9]}, "strictly increasing"),
        ({"attn_type": "separate"}, "only defined for attn_type='concat'"),
        ({"attn_type": "cross"}, "attn_type must be one of"),
        ({"ce_template_range": "gt_box"}, "ce_template_range"),
        ({"head_channels": 12}, "multiple of 8"),
        ({"num_templates": 0}, "num_templates"),
    ],
)
def test_invalid_combinations_raise(overrides, message):
    with pytest.raises(ValueError, match=message):
        ODTrackConfig(**overrides)


def test_strict_types_and_keyword_only():
    with pytest.raises(Exception):
        ODTrackConfig(hidden_size="big")
    with pytest.raises(Exception):
        ODTrackConfig(64)


def test_aliases_and_case_insensitive_range():
    config = ODTrackConfig(num_heads=8, ce_template_range="CTR_POINT")
    assert config.num_attention_heads == 8 and config.depth == 12 and config.embed_dim == 768
    assert config.ce_template_range == "ctr_point"


def test_json_round_trip_and_auto_config(tmp_path):
    config = tiny_config(attn_type="separate", ce_layers=[], ce_keep_ratios=[], tracker_template_number=4)
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "odtrack" and saved["attn_type"] == "separate"
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, ODTrackConfig)
    assert loaded.to_diff_dict() == config.to_diff_dict()
    assert loaded.ce_layers == [] and loaded.tracker_template_number == 4
