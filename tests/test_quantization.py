"""Dynamic int8 linear layers: the copy, its cache, its errors, and a session that tracks with it."""

import pytest
import torch
from conftest import tiny_config
from tracking_helpers import fixture_clip, fixture_tracker

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackInferenceSession, ODTrackModel, ODTrackProcessor, quantization
from odtrack_hf.quantization import quantize_linear_layers

needs_int8 = pytest.mark.skipif(
    not quantization.int8_linear_supported(), reason="this PyTorch build has no dynamic int8 CPU kernels"
)


@needs_int8
def test_every_linear_layer_is_quantised_in_a_copy_that_is_kept_until_the_weights_change():
    model = ODTrackModel(tiny_config(attn_type="separate", ce_layers=[], ce_keep_ratios=[])).eval()
    linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    quantised = quantize_linear_layers(model)
    assert linear > 0 and sum(isinstance(m, torch.nn.Linear) for m in quantised.modules()) == 0
    assert sum(type(m).__name__ == "Linear" and "dynamic" in type(m).__module__ for m in quantised.modules()) == linear
    assert sum(isinstance(m, torch.nn.Linear) for m in model.modules()) == linear  # the model is unchanged
    assert quantize_linear_layers(model) is quantised
    with torch.no_grad():
        next(model.parameters()).add_(0.01)
    assert quantize_linear_layers(model) is not quantised


@needs_int8
def test_a_session_in_qint8_follows_the_float32_boxes_of_the_shipped_model():
    model, processor = ODTrackModel.from_pretrained(DEFAULT_MODEL_DIR).eval(), ODTrackProcessor.from_pretrained(DEFAULT_MODEL_DIR)
    frames, init_box, _ = fixture_clip()

    def boxes(dtype: torch.dtype) -> torch.Tensor:
        session = ODTrackInferenceSession(model, processor, dtype=dtype)
        return torch.cat([session.track(frame, [init_box] if i == 0 else None).boxes for i, frame in enumerate(frames[:4])])

    difference = (boxes(torch.float32) - boxes(torch.qint8)).abs()
    # measured 0.08-0.19 px on frames 1-3 of the 160x120 clip; rounding then compounds frame by frame, so the
    # tracking quality of the int8 path is checked on held-out sequences (tests/test_default_model.py)
    assert 0 < difference.max() < 0.5, difference


def test_qint8_is_refused_off_the_cpu_for_other_dtypes_and_without_kernels(monkeypatch):
    model, processor = fixture_tracker()
    with pytest.raises(ValueError, match="runs on the CPU only"):
        ODTrackInferenceSession(model, processor, inference_device="cuda", dtype=torch.qint8)
    with pytest.raises(ValueError, match="needs a float32 model"):
        quantize_linear_layers(ODTrackModel(tiny_config()).to(torch.bfloat16))
    monkeypatch.setattr(quantization, "int8_linear_supported", lambda: False)
    with pytest.raises(RuntimeError, match="no dynamic int8 linear kernels"):
        quantize_linear_layers(ODTrackModel(tiny_config()))
