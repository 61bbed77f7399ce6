"""ODTrackProcessor: template/search modes, saving and loading through the Auto classes."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoImageProcessor, AutoProcessor

from odtrack_hf import ODTrackImageProcessor, ODTrackProcessor

IMAGE = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
BOX = [[30.0, 44.0, 24.0, 20.0]]


def test_modes_pick_their_factor_and_size():
    processor = ODTrackProcessor(template_factor=2.0, template_size=112, search_factor=5.0, search_size=128)
    template = processor(IMAGE, BOX, mode="template")
    search = processor(IMAGE, BOX, mode="search")
    assert template["pixel_values"].shape == (1, 3, 112, 112) and template["crop_boxes"][0, 2].item() == 44
    assert search["pixel_values"].shape == (1, 3, 128, 128) and search["crop_boxes"][0, 2].item() == 110
    direct = ODTrackImageProcessor()(IMAGE, BOX, crop_factor=5.0, output_size=128)
    assert torch.equal(search["pixel_values"], direct["pixel_values"])


@pytest.mark.parametrize("backend", ["opencv", "torch"])
@pytest.mark.parametrize("mode", ["template", "search"])
def test_crop_frame_returns_what_a_call_returns(mode, backend):
    processor = ODTrackProcessor(template_size=112, search_size=128)
    boxes = [BOX[0], [100.0, 60.0, 30.0, 50.0]]
    image = processor.image_processor.process_image(IMAGE, crop_backend=backend)
    for normalize in (True, False):
        flags = {} if normalize else {"do_rescale": False, "do_normalize": False}
        called = processor(IMAGE, boxes, mode=mode, crop_backend=backend, **flags)
        cropped = processor.crop_frame(image, boxes, mode, crop_backend=backend, normalize=normalize)
        assert set(cropped) == set(called)
        for name in called:
            assert cropped[name].dtype == called[name].dtype and torch.equal(cropped[name], called[name]), name
    expected = processor.crop_frame(image, boxes, mode, crop_backend=backend)["pixel_values"]
    for as_array in (np.asarray(boxes), torch.tensor(boxes)):  # arrays and tensors, as a call takes them
        assert torch.equal(processor.crop_frame(image, as_array, mode, crop_backend=backend)["pixel_values"], expected)
    with pytest.raises(ValueError, match=r"Box 0 .* lies outside the 160x120 frame"):
        processor.crop_frame(image, [[500.0, 10.0, 5.0, 5.0]], mode)


def test_unknown_mode_and_missing_inputs_are_rejected():
    with pytest.raises(ValueError, match=r"mode must be one of \('template', 'search'\)"):
        ODTrackProcessor()(IMAGE, BOX, mode="reference")
    with pytest.raises(ValueError, match=r"mode must be one of \('template', 'search'\)"):
        ODTrackProcessor().crop_frame(IMAGE, BOX, "reference")
    with pytest.raises(ValueError, match="Give both images"):
        ODTrackProcessor()(IMAGE)


def test_save_and_load_processor_config(tmp_path):
    processor = ODTrackProcessor(template_factor=2.5, template_size=112, search_factor=4.0, search_size=128)
    processor.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["processor_class"] == "ODTrackProcessor"
    settings = ("template_factor", "template_size", "search_factor", "search_size")
    assert [saved[name] for name in settings] == [2.5, 112, 4.0, 128]
    assert saved["image_processor"]["image_processor_type"] == "ODTrackImageProcessor"

    for loaded in (AutoProcessor.from_pretrained(tmp_path), ODTrackProcessor.from_pretrained(tmp_path)):
        assert isinstance(loaded, ODTrackProcessor) and isinstance(loaded.image_processor, ODTrackImageProcessor)
        assert [getattr(loaded, name) for name in settings] == [2.5, 112, 4.0, 128]
        assert torch.equal(loaded(IMAGE, BOX)["pixel_values"], processor(IMAGE, BOX)["pixel_values"])
    assert isinstance(AutoImageProcessor.from_pretrained(tmp_path), ODTrackImageProcessor)


def test_saved_processor_keeps_the_crop_backend(tmp_path):
    ODTrackProcessor(ODTrackImageProcessor(crop_backend="torch"), search_size=128).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert saved["image_processor"]["crop_backend"] == "torch"
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert loaded.image_processor.crop_backend == "torch"
    expected = ODTrackProcessor(search_size=128)(IMAGE, BOX)["pixel_values"]
    assert torch.equal(loaded(IMAGE, BOX)["pixel_values"], expected)


def test_crop_settings_default_to_the_configuration_and_a_session_refuses_other_factors():
    from conftest import tiny_config

    from odtrack_hf import ODTrackConfig, ODTrackInferenceSession, ODTrackModel

    defaults = ODTrackConfig()
    processor = ODTrackProcessor()
    assert (processor.template_factor, processor.template_size, processor.search_factor, processor.search_size) == (
        defaults.template_factor,
        defaults.template_size,
        defaults.search_factor,
        defaults.search_size,
    )
    assert (ODTrackImageProcessor().crop_factor, ODTrackImageProcessor().output_size) == (2.0, 192)

    config = tiny_config()
    assert config.search_factor == 5.0
    model = ODTrackModel(config).eval()
    ODTrackInferenceSession(model, ODTrackProcessor.from_model_config(config))  # matching settings are accepted
    narrow = ODTrackProcessor.from_model_config(config)
    narrow.search_factor = 3.0
    with pytest.raises(ValueError, match=r"processor.search_factor \(3.0\) differs from model.config.search_factor"):
        ODTrackInferenceSession(model, narrow)
