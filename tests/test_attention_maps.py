"""Temporal-token attention maps: columns mapped back to raster positions under candidate elimination, PNG output."""

import math

import numpy as np
import pytest
import torch
from eval_helpers import make_benchmark, save_tiny_tracker, tiny_tracker_config
from PIL import Image

from odtrack_hf import ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.cli import main
from odtrack_hf.evaluation.attention_maps import (
    attention_overlay,
    record_outputs,
    temporal_token_attention,
    track_attention_maps,
)

# candidate elimination after blocks 0 and 1: the last block (2) sees 16 -> 12 -> 9 search tokens
CE_CONFIG = dict(num_hidden_layers=3, ce_layers=[0, 1], ce_keep_ratios=[0.7, 0.7])


def frames(count: int = 5) -> list[np.ndarray]:
    generator = np.random.default_rng(0)
    return [generator.integers(0, 256, (72, 96, 3), dtype=np.uint8) for _ in range(count)]


def test_search_columns_are_mapped_back_to_their_raster_positions():
    torch.manual_seed(0)
    model = ODTrackModel(tiny_tracker_config(**CE_CONFIG)).eval()
    search, templates = torch.randn(1, 3, 64, 64), torch.randn(1, 3, 3, 32, 32)
    with torch.inference_mode(), record_outputs(model) as calls:
        outputs = model(search, templates, output_hidden_states=True)
    assert len(calls) == 1 and calls[0] is outputs  # the recorder asked for the attentions and kept the output
    attentions, search_indices = outputs.attentions, outputs.search_indices[:-1]  # the blocks' inputs
    assert len(attentions) == len(search_indices) == 3
    assert [index.shape[1] for index in search_indices] == [16, 12, 9]
    # independent check of the last block's column order: its outputs, normalised, are the rows of
    # last_hidden_state at the raster positions the columns are mapped to
    num_template_tokens = 3 * 4
    with torch.inference_mode():
        kept = model.layernorm(outputs.hidden_states[-1])[0, 1 + num_template_tokens :]
    restored = outputs.last_hidden_state[0, 1 + num_template_tokens :]
    torch.testing.assert_close(kept, restored[outputs.search_indices[-1][0]])

    grid = temporal_token_attention(attentions[-1], search_indices[-1], 4)[0]
    removed = torch.cat([indices[0] for indices in outputs.removed_search_indices])
    assert sorted(torch.nonzero(grid.isnan().flatten()).flatten().tolist()) == sorted(removed.tolist())
    row = attentions[-1][0, :, 0, -9:].mean(dim=0)  # token row over the kept search columns
    torch.testing.assert_close(grid.flatten()[search_indices[-1][0]], row)
    assert 0 < float(grid.nansum()) < 1  # the rest of the row goes to the token and the templates


@pytest.mark.parametrize("overrides", [CE_CONFIG, dict(attn_type="separate", ce_layers=[], ce_keep_ratios=[])])
def test_tracking_returns_maps_on_the_chosen_frames(overrides):
    torch.manual_seed(0)
    model = ODTrackModel(tiny_tracker_config(**overrides)).eval()
    processor = ODTrackProcessor(template_size=32, search_size=64)
    maps = track_attention_maps(model, processor, frames(), [30, 20, 24, 18], [3, 1])
    assert [item.frame_index for item in maps] == [1, 3]
    # the tracked boxes are those of a plain session: recording does not change the tracking
    session = ODTrackInferenceSession(model, processor)
    boxes = [o.boxes[0].tolist() for o in session.propagate(frames(), boxes=[[30, 20, 24, 18]])]
    assert [item.box for item in maps] == [boxes[1], boxes[3]]
    for item in maps:
        assert item.crop.shape == (64, 64, 3) and item.crop.dtype == np.uint8 and item.grid.shape == (4, 4)
        eliminated = 16 - math.ceil(0.7 * math.ceil(0.7 * 16)) if model.config.ce_layers else 0
        assert np.isnan(item.grid).sum() == eliminated
    overlay = attention_overlay(maps[0].crop, maps[0].grid)
    assert overlay.shape == (64, 64, 3) and not np.array_equal(overlay, maps[0].crop)


def test_frames_and_blocks_are_checked():
    model = ODTrackModel(tiny_tracker_config(**CE_CONFIG)).eval()
    processor = ODTrackProcessor(template_size=32, search_size=64)
    with pytest.raises(ValueError, match="frame 0 initialises the tracker"):
        track_attention_maps(model, processor, frames(), [30, 20, 24, 18], [0, 2])
    with pytest.raises(ValueError, match="the video has 5 frames; frame 7 does not exist"):
        track_attention_maps(model, processor, frames(), [30, 20, 24, 18], [2, 7])
    with pytest.raises(ValueError, match="--layer 3 does not exist"):
        track_attention_maps(model, processor, frames(), [30, 20, 24, 18], [2], layer=3)


def test_attention_command_writes_pngs_of_the_search_crop_size(capsys, tmp_path):
    directory = save_tiny_tracker(tmp_path / "tiny")
    sequence = make_benchmark(tmp_path / "data", num_sequences=1) / "heldout" / "SYN_Heldout_000001"
    output = tmp_path / "maps"
    code = main(["attention", str(sequence), "--frames", "2,5", "--model", str(directory), "--device", "cpu",
                 "--output-dir", str(output)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert sorted(p.name for p in output.iterdir()) == ["frame_000002.png", "frame_000005.png"]
    assert Image.open(output / "frame_000002.png").size == (64, 64)
    assert "block 1, heads averaged" in out

    code = main(["attention", str(sequence), "--frames", "0", "--model", str(directory), "--output-dir", str(output)])
    _, err = capsys.readouterr()
    assert code == 2 and err.count("\n") == 1 and "frame 0 initialises the tracker" in err
