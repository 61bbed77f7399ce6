"""``odtrack train`` says when it resumes, and a fine-tuning config naming a missing model fails in one line."""

import pytest
import torch
from test_training import make_videos, tiny_values

from odtrack_hf.training import TrainingConfig, build_model, train


def test_a_missing_model_name_or_path_is_named_with_the_fix(tmp_path):
    values = tiny_values(tmp_path / "run", tmp_path, model_name_or_path=str(tmp_path / "my-odtrack"))
    with pytest.raises(FileNotFoundError, match="no model folder .*my-odtrack.* here") as error:
        build_model(TrainingConfig.from_dict(values))
    assert "odtrack convert" in str(error.value) and "\n" not in str(error.value)


def test_a_rerun_says_that_it_resumes(tmp_path, capsys):
    torch.set_num_threads(1)
    videos = make_videos(tmp_path / "videos")
    values = tiny_values(tmp_path / "run", videos, save_steps=1, resume_from_checkpoint="latest")
    train(TrainingConfig.from_dict({**values, "max_steps": 1}))
    assert "Resuming" not in capsys.readouterr().out
    train(TrainingConfig.from_dict({**values, "max_steps": 2}))
    out = capsys.readouterr().out
    assert "Resuming from " in out and "step_00000001 (step 1)" in out, out
