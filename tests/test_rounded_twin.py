"""benchmarks/rounded_twin.py: a model folder's twin with its weights rounded to bf16, stored as float32."""

import pytest
import torch
from safetensors.torch import load_file
from script_helpers import load_script

from odtrack_hf import ODTrackConfig, ODTrackModel

twin = load_script("benchmarks/rounded_twin.py")


@pytest.fixture
def model_folder(tmp_path):
    torch.manual_seed(0)
    config = ODTrackConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, template_size=32, search_size=64,
                           pretrain_image_size=64, head_channels=16, patch_size=16, ce_layers=[], ce_keep_ratios=[])  # fmt: skip
    ODTrackModel(config).save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def test_the_twin_holds_the_weights_rounded_to_bf16_as_float32(model_folder, tmp_path):
    twin.main([str(model_folder), str(tmp_path / "twin")])
    original, rounded = load_file(model_folder / "model.safetensors"), load_file(tmp_path / "twin" / "model.safetensors")
    assert original.keys() == rounded.keys()
    changed = 0
    for name, value in original.items():
        assert rounded[name].dtype == value.dtype
        if not value.is_floating_point():  # BatchNorm's batch counters stay as they are
            assert torch.equal(rounded[name], value)
            continue
        assert value.dtype == torch.float32 and torch.equal(rounded[name], value.to(torch.bfloat16).float())
        changed += int(not torch.equal(rounded[name], value))
    assert changed >= 20  # a real perturbation of every random matrix, not a copy (ones and zeros stay exact)
    assert (tmp_path / "twin" / "config.json").read_text() == (model_folder / "config.json").read_text()
    assert not (tmp_path / "twin.partial").exists()
    # it loads and tracks like the original up to the rounding
    inputs = dict(pixel_values=torch.rand(1, 3, 64, 64), template_pixel_values=torch.rand(1, 2, 3, 32, 32))
    with torch.no_grad():
        a = ODTrackModel.from_pretrained(model_folder).eval()(**inputs).pred_boxes
        b = ODTrackModel.from_pretrained(tmp_path / "twin").eval()(**inputs).pred_boxes
    assert not torch.equal(a, b) and torch.allclose(a, b, atol=0.05)


def test_an_existing_output_or_a_folder_without_weights_is_refused(model_folder, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="exists; choose a new folder"):
        twin.main([str(model_folder), str(tmp_path / "taken")])
    with pytest.raises(SystemExit, match="has no model.safetensors"):
        twin.main([str(tmp_path / "taken"), str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_without_a_source_it_twins_the_shipped_model(tmp_path):
    twin.main([str(tmp_path / "shipped_twin")])
    assert (tmp_path / "shipped_twin" / "config.json").is_file()
    assert (tmp_path / "shipped_twin" / "model.safetensors").stat().st_size > 0
