"""Shared helpers of the evaluation tests: a tiny saved tracker and a tiny generated benchmark."""

from pathlib import Path

import torch
from conftest import tiny_config

from odtrack_hf import ODTrackModel, ODTrackProcessor
from odtrack_hf.data.generation import GenerationConfig, generate_split

# 10 frames of 96x72 per sequence
TINY_SEQUENCES = GenerationConfig(min_frames=10, max_frames=10, min_size=(96, 72), max_size=(96, 72))


def tiny_tracker_config(**overrides):
    """Hidden 32, 2 blocks, 2 heads, 32/64 px crops; candidate elimination after block 0."""
    values = dict(num_hidden_layers=2, num_attention_heads=2, ce_layers=[0], ce_keep_ratios=[0.7])
    return tiny_config(**{**values, **overrides})


def save_tiny_tracker(directory: Path, **overrides) -> Path:
    """``save_pretrained`` a randomly initialised tiny model and its processor into ``directory``."""
    torch.manual_seed(0)
    ODTrackModel(tiny_tracker_config(**overrides)).eval().save_pretrained(directory)
    ODTrackProcessor(template_size=32, search_size=64).save_pretrained(directory)
    return directory


def make_benchmark(root: Path, num_sequences: int = 3) -> Path:
    """Generated held-out sequences in ``root/heldout`` (GOT-10k layout, with attributes.json); returns root."""
    generate_split(root, "heldout", num_sequences, seed=0, config=TINY_SEQUENCES)
    return root
