"""scripts/run_ablation.py: derived configs, a tiny train + score run per variant, resume, the table."""

import json
import subprocess
import sys

import pytest
import yaml
from script_helpers import REPO, load_script
from test_training import SUBPROCESS_ENV, make_videos, tiny_values

SCRIPT = REPO / "scripts" / "run_ablation.py"


@pytest.fixture(scope="module")
def ablation():
    return load_script("scripts/run_ablation.py")


def test_derive_config_applies_the_variant_seed_and_folder(ablation, tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(tiny_values(tmp_path / "out", tmp_path / "data", seed=3)))
    values = ablation.derive_config(base, "search3", 7, tmp_path / "runs" / "search3_s7")
    assert values["seed"] == 7 and values["output_dir"] == str(tmp_path / "runs" / "search3_s7")
    assert values["model_config"]["num_search_frames"] == 3
    assert values["model_config"]["hidden_size"] == 32  # the base's own changes are kept
    no_token = ablation.derive_config(base, "no_token", 7, tmp_path / "x")
    assert no_token["model_config"]["propagate_temporal_token"] is False
    base.write_text(yaml.safe_dump({**tiny_values(tmp_path / "out", tmp_path / "data"), "batch": 3}))
    with pytest.raises(ValueError, match="Unknown key"):  # before any training starts
        ablation.derive_config(base, "full", 1, tmp_path / "y")


def test_runs_score_both_inference_modes_resume_and_tabulate(ablation, tmp_path):
    data = make_videos(tmp_path / "data" / "clips", num_sequences=2, num_frames=12)
    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump(tiny_values(tmp_path / "unused", data, save_steps=1)))
    runs = tmp_path / "runs"

    def run(variant: str, seed: int, *extra: str) -> None:
        command = [sys.executable, str(SCRIPT), "run", str(base), "--variant", variant, "--seed", str(seed),
                   "--max-steps", "2", "--runs", str(runs), "--data-root", str(data.parent), "--split", "clips",
                   "--dtype", "float32", *extra]
        subprocess.run(command, check=True, env=SUBPROCESS_ENV, capture_output=True)

    run("full", 1)
    run("full", 2, "--modes", "token")
    run("no_token", 1, "--modes", "token")  # a model trained without propagation is scored without it
    assert not (runs / "full_s2" / "eval_notoken").exists()
    full = runs / "full_s1"
    assert json.loads((full / "model" / "config.json").read_text())["propagate_temporal_token"] is True
    assert json.loads((full / "eval_notoken_model" / "config.json").read_text())["propagate_temporal_token"] is False
    assert {p.name for p in runs.glob("no_token_s1/eval_*") if p.is_dir()} == {"eval_notoken", "eval_notoken_model"}

    # a second call finds every stage done and leaves the outputs alone
    stamps = {p: p.stat().st_mtime_ns for p in (full / "model" / "model.safetensors", full / "eval_token" / "metrics.json")}
    run("full", 1)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    lines = ablation.table(runs).splitlines()
    rows = {tuple(cell.strip() for cell in line.split("|")[1:3]): line for line in lines[2:]}
    assert set(rows) == {("full", "token"), ("full", "notoken"), ("no_token", "notoken")}
    assert "| 1 |" in rows[("full", "notoken")]  # seed 2 was scored with the token only
    aucs = [json.loads((runs / f"full_s{seed}" / "eval_token" / "metrics.json").read_text())["auc"] for seed in (1, 2)]
    row = rows[("full", "token")]
    assert f"| 2 | {sum(aucs) / 2:.1f} ({min(aucs):.1f}–{max(aucs):.1f})" in row
    assert f"1: {aucs[0]:.1f}, 2: {aucs[1]:.1f}" in row
