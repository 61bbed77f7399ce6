import subprocess
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from transformers import AutoProcessor

from odtrack_hf import ODTrackModel
from odtrack_hf.cli import main as cli_main
from odtrack_hf.conversion import (
    CheckpointMismatchError,
    convert_official_checkpoint,
    convert_official_state_dict,
    load_checkpoint_file,
    load_mae_backbone,
)
from conftest import tiny_config
from parity import config_from_fixture, fixture_dirs

FIXTURES = fixture_dirs()
needs_fixtures = pytest.mark.skipif(not FIXTURES, reason="no official-parity fixtures found")


def _official_state_dict():
    return load_file(FIXTURES[0] / "official_state_dict.safetensors")


@needs_fixtures
def test_every_official_key_maps_one_to_one():
    official = _official_state_dict()
    converted = convert_official_state_dict(official)
    model_keys = set(ODTrackModel(config_from_fixture(FIXTURES[0])).state_dict())
    assert len(converted) == len(official) == len(model_keys) == 147
    assert set(converted) == model_keys
    assert torch.equal(converted["head.score_branch.blocks.0.conv.weight"], official["box_head.conv1_ctr.0.weight"])
    assert torch.equal(converted["head.size_branch.output.bias"], official["box_head.conv5_size.bias"])
    assert torch.equal(converted["embeddings.temporal_token"], official["backbone.cls_token"])


@needs_fixtures
@pytest.mark.parametrize("wrapped", [True, False], ids=["net", "bare"])
def test_convert_checkpoint_file_and_save(tmp_path, wrapped):
    official = _official_state_dict()
    path = tmp_path / "ODTrack_ep0300.pth.tar"
    torch.save({"net": official, "epoch": 300, "net_type": "ODTrack"} if wrapped else official, path)
    config = config_from_fixture(FIXTURES[0])
    model = convert_official_checkpoint(path, config, tmp_path / "hf")
    reloaded = ODTrackModel.from_pretrained(tmp_path / "hf")
    for key, value in reloaded.state_dict().items():
        assert torch.equal(value, model.state_dict()[key]), key


@needs_fixtures
def test_unstripped_checkpoint_with_pickled_repo_objects(tmp_path):
    """Official training checkpoints pickle repo classes; they load without those modules and
    without executing anything from the file."""
    package = tmp_path / "maker" / "lib" / "train" / "admin"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    (package / "settings.py").write_text(
        textwrap.dedent(
            """
            import os
            class Settings:
                def __init__(self):
                    self.env = 'workspace'
            class Payload:
                def __reduce__(self):  # would run on load with weights_only=False
                    return (os.system, ('touch PWNED',))
            """
        )
    )
    checkpoint = tmp_path / "ODTrack_ep0300.pth.tar"
    state_path = tmp_path / "state.safetensors"
    from safetensors.torch import save_file

    save_file(_official_state_dict(), state_path)
    maker = (
        "import sys, torch; sys.path.insert(0, 'maker');"
        "from safetensors.torch import load_file; from lib.train.admin.settings import Settings;"
        f"torch.save({{'net': load_file('{state_path}'), 'settings': Settings(), 'epoch': 300}}, '{checkpoint}')"
    )
    subprocess.run([sys.executable, "-c", maker], cwd=tmp_path, check=True)
    loaded = load_checkpoint_file(checkpoint)  # this process cannot import lib.*
    assert "net" in loaded and loaded["epoch"] == 300 and loaded["settings"].env == "workspace"
    model = convert_official_checkpoint(checkpoint, config_from_fixture(FIXTURES[0]))
    assert torch.equal(model.embeddings.temporal_token, _official_state_dict()["backbone.cls_token"])

    # a file whose pickle would call a function is refused, and nothing runs
    evil = tmp_path / "evil.pth.tar"
    maker = maker.replace("Settings()", "Payload()").replace("import Settings", "import Payload").replace(
        str(checkpoint), str(evil)
    )
    subprocess.run([sys.executable, "-c", maker], cwd=tmp_path, check=True)
    with pytest.raises(ValueError, match="cannot be loaded safely"):
        load_checkpoint_file(evil)
    assert not (tmp_path / "PWNED").exists()


@needs_fixtures
def test_mismatches_are_listed(tmp_path):
    official = _official_state_dict()
    del official["backbone.norm.weight"]
    path = tmp_path / "broken.pth.tar"
    torch.save({"net": official}, path)
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): layernorm.weight"):
        convert_official_checkpoint(path, config_from_fixture(FIXTURES[0]))
    wrong_size = config_from_fixture(FIXTURES[0])
    wrong_size.head_channels = 64
    torch.save({"net": _official_state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch .*head\.") as error:
        convert_official_checkpoint(path, wrong_size)
    assert "Fix:" in str(error.value)
    extra = dict(_official_state_dict(), **{"backbone.extra_norm.weight": torch.zeros(3)})
    torch.save({"net": extra}, path)
    with pytest.raises(CheckpointMismatchError, match="backbone.extra_norm.weight"):
        convert_official_checkpoint(path, config_from_fixture(FIXTURES[0]))


def test_not_a_checkpoint(tmp_path):
    junk = tmp_path / "junk.pth.tar"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable PyTorch checkpoint"):
        load_checkpoint_file(junk)
    with pytest.raises(FileNotFoundError):
        load_checkpoint_file(tmp_path / "missing.pth.tar")


@needs_fixtures
def test_cli_convert(tmp_path, capsys):
    path = tmp_path / "ck.pth.tar"
    torch.save({"net": _official_state_dict()}, path)
    fixture_config = config_from_fixture(FIXTURES[0])
    overrides = tmp_path / "overrides.json"
    overrides.write_text(fixture_config.to_json_string())
    assert cli_main(["convert", str(path), str(tmp_path / "out"), "--preset", "odtrack-base", "--config", str(overrides)]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()
    processor = AutoProcessor.from_pretrained(tmp_path / "out")
    assert (processor.template_size, processor.search_size) == (fixture_config.template_size, fixture_config.search_size)
    assert (processor.template_factor, processor.search_factor) == (
        fixture_config.template_factor,
        fixture_config.search_factor,
    )
    assert "Converted" in capsys.readouterr().out
    # a checkpoint that does not fit the preset: exit code 2 and the mismatch, no traceback
    assert cli_main(["convert", str(path), str(tmp_path / "out2"), "--preset", "odtrack-base"]) == 2
    assert "shape mismatch" in capsys.readouterr().err


def _mae_checkpoint(config, path, drop=None):
    """An MAE-style encoder checkpoint: timm ViT keys under 'model', plus decoder keys."""
    encoder = ODTrackModel(config)
    grid = config.pretrain_grid_size
    weights = {
        "cls_token": torch.randn(1, 1, config.hidden_size),
        "pos_embed": torch.cat([torch.zeros(1, 1, config.hidden_size), torch.randn(1, grid * grid, config.hidden_size)], 1),
        "patch_embed.proj.weight": torch.randn_like(encoder.embeddings.patch_embeddings.projection.weight),
        "patch_embed.proj.bias": torch.randn(config.hidden_size),
        "norm.weight": torch.rand(config.hidden_size),
        "norm.bias": torch.randn(config.hidden_size),
        "mask_token": torch.zeros(1, 1, 16),
        "decoder_embed.weight": torch.zeros(16, config.hidden_size),
    }
    for i, layer in enumerate(encoder.encoder.layers):
        for name, value in layer.state_dict().items():
            official = name.replace("attention.", "attn.")
            weights[f"blocks.{i}.{official}"] = torch.randn_like(value)
    if drop:
        del weights[drop]
    torch.save({"model": weights}, path)
    return weights


def test_mae_initialisation_with_position_surgery(tmp_path):
    config = tiny_config()
    weights = _mae_checkpoint(config, tmp_path / "mae.pth")
    model = ODTrackModel(config)
    head_before = model.head.score_branch.output.weight.clone()
    load_mae_backbone(model, tmp_path / "mae.pth")
    emb = model.embeddings
    assert torch.equal(emb.temporal_token, weights["cls_token"])
    assert torch.equal(emb.pretrain_position_embeddings, weights["pos_embed"])
    assert torch.equal(emb.temporal_position_embeddings, weights["pos_embed"][:, :1])  # zeros for MAE
    grid = weights["pos_embed"][:, 1:].transpose(1, 2).reshape(1, 32, 4, 4)
    for table, side in ((emb.template_position_embeddings, 2), (emb.search_position_embeddings, 4)):
        expected = F.interpolate(grid, size=(side, side), mode="bicubic", align_corners=False)
        torch.testing.assert_close(table.data, expected.flatten(2).transpose(1, 2))
    assert torch.equal(model.encoder.layers[1].attention.qkv.weight, weights["blocks.1.attn.qkv.weight"])
    assert torch.equal(model.layernorm.bias, weights["norm.bias"])
    assert torch.equal(model.head.score_branch.output.weight, head_before)


def test_failed_mae_load_is_an_error(tmp_path):
    config = tiny_config()
    _mae_checkpoint(config, tmp_path / "mae.pth", drop="blocks.0.mlp.fc1.weight")
    with pytest.raises(CheckpointMismatchError, match=r"missing \(1\): encoder.layers.0.mlp.fc1.weight"):
        load_mae_backbone(ODTrackModel(config), tmp_path / "mae.pth")
    _mae_checkpoint(tiny_config(hidden_size=64), tmp_path / "wide.pth")
    with pytest.raises(CheckpointMismatchError, match="shape mismatch"):
        load_mae_backbone(ODTrackModel(config), tmp_path / "wide.pth")
