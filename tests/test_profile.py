"""``odtrack profile``: parameter and FLOP counts against a hand count, eval mode, inference template count."""

import itertools

import pytest
import torch
from eval_helpers import save_tiny_tracker, tiny_tracker_config

from odtrack_hf import ODTrackModel
from odtrack_hf.cli import main
from odtrack_hf.evaluation.profile import count_flops, count_parameters, profile_model

C = 32  # hidden size of the tiny model; 2 blocks, 16 px patches, 2x2 template and 4x4 search grids
HEAD = [C, 16, 8, 4, 2]  # CENTER-head channels (head_channels=16, halved three times)


def hand_count_parameters() -> dict[str, int]:
    # the frozen pre-training position table is a buffer, not a parameter
    tables = {"token": C, "token_position": C, "template": 4 * C, "search": 16 * C}
    patch = 3 * 16 * 16 * C + C
    block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
    convs = sum(c_in * c_out * 9 + c_out + 2 * c_out for c_in, c_out in itertools.pairwise(HEAD))  # conv + BN affine
    head = sum(convs + HEAD[-1] * out + out for out in (1, 2, 2))  # score, offset, size branches
    total = sum(tables.values()) + patch + 2 * block + 2 * C + head
    return {"total": total, "trainable": total, "leaf": total - sum(tables.values())}


def hand_count_flops(templates: int) -> dict[str, int]:
    """2 FLOPs per multiply-accumulate of every matrix product and convolution (no candidate elimination)."""
    tokens = 1 + 4 * templates + 16
    patch = 2 * (4 * templates + 16) * C * (3 * 16 * 16)
    attention = 2 * tokens * tokens * C * 2  # q @ k^T and attn @ v over all heads
    block = 2 * tokens * C * 3 * C + attention + 2 * tokens * C * C + 2 * tokens * C * 4 * C * 2
    gate = 2 * 16 * C
    head = 3 * sum(2 * 16 * c_in * c_out * 9 for c_in, c_out in itertools.pairwise(HEAD)) + sum(
        2 * 16 * HEAD[-1] * out for out in (1, 2, 2)
    )
    return {"flops": patch + 2 * block + gate + head, "attention_flops": 2 * attention}


def test_parameters_and_flops_match_a_hand_count():
    model = ODTrackModel(tiny_tracker_config(ce_layers=[], ce_keep_ratios=[]))
    assert count_parameters(model) == hand_count_parameters()
    assert count_flops(model, 3) == hand_count_flops(3)
    assert model.config._attn_implementation == "sdpa"  # counted with eager attention, then restored


def test_profile_uses_eval_mode_and_the_inference_template_count():
    model = ODTrackModel(tiny_tracker_config(ce_layers=[], ce_keep_ratios=[])).train()
    running_mean = model.head.score_branch.blocks[0].norm.running_mean.clone()
    profile = profile_model(model, warmup=1, iterations=2)
    # BatchNorm in train mode would have updated its running statistics
    assert not model.training and torch.equal(model.head.score_branch.blocks[0].norm.running_mean, running_mean)
    assert profile["num_templates"] == model.config.tracker_template_number + 1 == 4
    flops = hand_count_flops(4)
    assert profile["flops"] == flops["flops"] and profile["macs"] == flops["flops"] / 2
    assert profile["macs_without_attention"] == (flops["flops"] - flops["attention_flops"]) / 2
    assert profile["parameters"] == hand_count_parameters()["total"]
    assert profile["fps"] == pytest.approx(1 / profile["latency_s"]) and profile["fps"] > 0


def test_candidate_elimination_reduces_the_count():
    with_ce = ODTrackModel(tiny_tracker_config(ce_layers=[0], ce_keep_ratios=[0.5]))
    assert count_flops(with_ce, 4)["flops"] < hand_count_flops(4)["flops"]


def test_profile_command(capsys, tmp_path):
    directory = save_tiny_tracker(tmp_path / "tiny", ce_layers=[], ce_keep_ratios=[])
    threads = torch.get_num_threads()
    try:
        code = main(["profile", "--model", str(directory), "--device", "cpu", "--iterations", "2", "--warmup", "1",
                     "--threads", "1"])  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    out, err = capsys.readouterr()
    assert code == 0, err
    counts, flops = hand_count_parameters(), hand_count_flops(4)
    assert "eval mode, cpu, 1 CPU threads" in out and "4 templates 32x32" in out
    assert f"parameters: {counts['total']:,}" in out and f"{counts['leaf']:,} in leaf modules" in out
    assert f"{flops['flops'] / 1e6:.2f} MFLOPs = {flops['flops'] / 2e6:.2f} MMACs" in out
    with pytest.raises(SystemExit):
        main(["profile", "--model", str(directory), "--preset", "odtrack-base"])
