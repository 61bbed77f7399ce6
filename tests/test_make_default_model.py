"""scripts/make_default_model.py: the shipped model's training stages, and the card's commands that
continue one stage's run in the next stage's folder."""

import json
import shlex
import subprocess
import sys

import pytest
import torch
import yaml
from safetensors.torch import load_file
from script_helpers import REPO, load_script
from conftest import tiny_config
from test_training import make_videos, tiny_values

from odtrack_hf import ODTrackModel
from odtrack_hf.training import TrainingConfig, list_checkpoints, read_log, train


@pytest.fixture(scope="module")
def make():
    return load_script("scripts/make_default_model.py")


def test_stages_match_their_configs(make):
    first_fine_tuning = next(i for i, stage in enumerate(make.STAGES) if stage.from_model)
    resumed = make.STAGES[:first_fine_tuning]
    first = TrainingConfig.from_file(REPO / resumed[0].config)
    for stage in make.STAGES:
        config = TrainingConfig.from_file(REPO / stage.config)
        assert config.output_dir == stage.output_dir
        steps_per_epoch = config.samples_per_epoch // config.per_device_train_batch_size
        assert stage.last_step <= config.num_epochs * steps_per_epoch
    for stage in resumed:
        # stages 2-4 resume the previous stage's checkpoint: same architecture, same sampler seed
        config = TrainingConfig.from_file(REPO / stage.config)
        assert config.model_config == first.model_config and config.seed == first.seed
    assert [s.last_step for s in resumed] == sorted({s.last_step for s in resumed})
    # every fine-tuning stage starts from the model folder its commands make
    for fine_tuning in make.STAGES[first_fine_tuning:]:
        assert fine_tuning.from_model
        folder = TrainingConfig.from_file(REPO / fine_tuning.config).model_name_or_path
        assert any(folder in command for command in fine_tuning.commands)


def test_the_cards_commands_continue_a_run_in_a_new_folder(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = tiny_values("stage1", make_videos(tmp_path / "videos"), save_steps=4, max_steps=8, logging_steps=1)
    train(TrainingConfig.from_dict(first))
    more = make_videos(tmp_path / "more_videos", num_sequences=5)
    # stage 2: more data and a new learning-rate drop (x0.1 after epoch 3 = step 12), 16 steps in all
    second = tiny_values("stage2", more, save_steps=4, num_epochs=4, lr_drop_epoch=3, logging_steps=1)
    for name, values in (("s1.yaml", first), ("s2.yaml", second)):
        (tmp_path / name).write_text(yaml.safe_dump(values))
    monkeypatch.setattr(make, "ROOT", tmp_path)
    stages = (
        make.Stage("s1.yaml", 8, ("odtrack generate-data --out d1",), "first"),
        make.Stage("s2.yaml", 16, ("odtrack generate-data --out d2", *make.resume("s1.yaml", 8, "s2.yaml")), "second"),
    )
    monkeypatch.setattr(make, "STAGES", stages)

    bullets, commands = make.training_section(16)
    assert "  - Stage 1, steps 1-8: `s1.yaml`; first." in bullets and "steps 9-16: `s2.yaml`; second." in bullets
    assert "odtrack generate-data --out d2\nmkdir" in commands and "odtrack train s2.yaml --max-steps 16" in commands
    for line in commands.splitlines():
        if line.startswith(("mkdir ", "cp ")):
            subprocess.run(line, shell=True, check=True)
    result = train(TrainingConfig.from_dict(second))

    assert result.state.step == 16
    assert [p.name for p in list_checkpoints("stage2")] == ["step_00000012", "step_00000016"]
    log = read_log(tmp_path / "stage2" / "logs" / "train.jsonl")
    assert [record["step"] for record in log] == list(range(1, 17))
    assert log[:8] == read_log(tmp_path / "stage1" / "logs" / "train.jsonl")  # stage 1's records kept
    assert [record["lr_head"] for record in log[8:]] == pytest.approx([1e-2] * 4 + [1e-3] * 4)

    # the last command exports the newest checkpoint as the shipped model is configured
    export = commands.splitlines()[-1]
    program, *argv = shlex.split(export)[1:]
    assert program == "scripts/export_checkpoint.py"
    assert argv[-4:] == ["--temporal-token-horizon", str(make.EXPORT_HORIZON), "--template-refresh-interval", str(make.EXPORT_REFRESH)]
    monkeypatch.setattr(sys, "argv", [program, *argv])
    load_script(program).main()
    out = tmp_path / "stage2" / "export" / "latest"
    exported_config = json.loads((out / "config.json").read_text())
    assert exported_config["propagate_temporal_token"] is True
    assert exported_config["temporal_token_horizon"] == make.EXPORT_HORIZON
    assert exported_config["template_refresh_interval"] == make.EXPORT_REFRESH
    assert (out / "processor_config.json").exists()
    weights = load_file(tmp_path / "stage2" / "checkpoints" / "step_00000016" / "model.safetensors")
    exported = ODTrackModel.from_pretrained(out).state_dict()
    assert all(torch.equal(exported[name], tensor) for name, tensor in weights.items())


def test_evaluations_must_be_of_the_export_and_its_fresh_twin_in_their_dtypes(make, tmp_path):
    export, fresh = tmp_path / "export", tmp_path / "fresh"
    ODTrackModel(tiny_config(propagate_temporal_token=True)).save_pretrained(export)
    ODTrackModel(tiny_config(propagate_temporal_token=False)).save_pretrained(fresh)
    compare = {name: {} for name in make.BASELINES}
    metrics = {
        "eval_wide": {"model": str(export), "compare": compare, "dtype": "float32"},
        "eval_wide_fresh": {"model": str(fresh), "compare": compare, "dtype": "float32"},
        "eval_classic": {"model": str(export), "compare": compare, "dtype": "float32"},
    }
    make.check_evaluations(metrics, export)
    bf16 = {"model": str(export), "compare": compare, "dtype": "bfloat16"}
    make.check_evaluations({**metrics, "eval_wide_bf16": bf16}, export)
    with pytest.raises(ValueError, match="--eval-wide-bf16 ran in float32; rerun odtrack eval with --dtype bfloat16"):
        make.check_evaluations({**metrics, "eval_wide_bf16": metrics["eval_wide"]}, export)
    with pytest.raises(ValueError, match="--eval-wide-bf16 scored .*fresh, not"):
        make.check_evaluations({**metrics, "eval_wide_bf16": {**bf16, "model": str(fresh)}}, export)
    qint8 = {"model": str(export), "compare": compare, "dtype": "qint8"}
    make.check_evaluations({**metrics, "eval_wide_bf16": bf16, "eval_wide_qint8": qint8}, export)
    with pytest.raises(ValueError, match="--eval-wide-qint8 ran in bfloat16; rerun odtrack eval with --dtype qint8"):
        make.check_evaluations({**metrics, "eval_wide_qint8": bf16}, export)
    with pytest.raises(ValueError, match="--eval-wide ran in bfloat16; rerun odtrack eval with --dtype float32"):
        make.check_evaluations({**metrics, "eval_wide": bf16}, export)
    with pytest.raises(ValueError, match="--eval-classic scored .*fresh, not"):
        make.check_evaluations({**metrics, "eval_classic": metrics["eval_wide_fresh"]}, export)
    with pytest.raises(ValueError, match="--eval-wide-fresh scored a model that carries its token"):
        make.check_evaluations({**metrics, "eval_wide_fresh": metrics["eval_wide"]}, export)
    with pytest.raises(ValueError, match="--eval-wide was scored without --compare CSRT KCF MIL"):
        make.check_evaluations({**metrics, "eval_wide": {"model": str(export), "compare": {}}}, export)


def test_the_cards_limits_name_the_attributes_behind_csrt(make):
    def row(ours: float, csrt: float) -> dict:
        return {"num_sequences": 3, "ours": {"auc": ours}, **{name: {"auc": csrt} for name in make.BASELINES}}

    metrics = {
        "compare": {name: {} for name in make.BASELINES},
        "per_attribute": {"smooth_motion": row(39.2, 43.6), "rotation": row(40.8, 24.2), "camouflage": row(30.0, 30.0)},
    }
    assert make.behind_csrt(metrics) == ["smooth_motion"]
    metrics["per_attribute"]["camouflage"] = row(29.9, 30.0)
    assert make.behind_csrt(metrics) == ["camouflage", "smooth_motion"]
