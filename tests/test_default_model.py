"""The model shipped with the package: its files, its card, and that it really tracks.

The tracking check generates a few held-out sequences (photographs never used in training, another seed
than the benchmark's) and compares the shipped model with a tracker that never moves its first box.
"""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from tracking_helpers import fixture_clip

import odtrack_hf
from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackModel, ODTrackProcessor
from odtrack_hf.data.sources import FolderSource
from odtrack_hf.data.generation import GenerationConfig, generate_split
from odtrack_hf.evaluation import evaluate_tracking
from odtrack_hf.evaluation.runner import track_sequence
from odtrack_hf.model_card import validate_model_card
from odtrack_hf.quantization import int8_linear_supported

CARD = DEFAULT_MODEL_DIR.parents[2] / "model_cards" / "odtrack-hf-default.md"


@pytest.fixture(scope="module")
def shipped():
    return ODTrackModel.from_pretrained(DEFAULT_MODEL_DIR).eval(), ODTrackProcessor.from_pretrained(DEFAULT_MODEL_DIR)


def test_files_are_small_float16_and_load_as_float32(shipped):
    model, processor = shipped
    size = sum(f.stat().st_size for f in DEFAULT_MODEL_DIR.iterdir())
    assert size <= 30e6
    with safe_open(DEFAULT_MODEL_DIR / "model.safetensors", "pt") as weights:
        dtypes = {name: weights.get_slice(name).get_dtype() for name in weights.keys()}
    assert {d for n, d in dtypes.items() if not n.endswith(("running_mean", "running_var", "num_batches_tracked"))} == {
        "F16"
    }
    assert model.dtype == torch.float32 and all(torch.isfinite(p).all() for p in model.state_dict().values())
    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    assert "is_untrained_placeholder" not in config and "auto_map" not in config
    assert (processor.template_size, processor.search_size) == (model.config.template_size, model.config.search_size)


def test_card_is_the_packaged_readme_and_validates(shipped):
    model, _ = shipped
    text = CARD.read_text()
    assert (DEFAULT_MODEL_DIR / "README.md").read_text() == text
    card = validate_model_card(CARD)
    assert card.data.license == "apache-2.0"
    assert f"| parameters | {sum(p.numel() for p in model.parameters()):,} |" in text
    assert {r.metric_type for r in card.data.eval_results} == {"auc", "precision", "norm_precision", "ao"}


def test_the_pipeline_defaults_to_it():
    from transformers import pipeline

    tracker = pipeline("object-tracking", device="cpu")
    assert odtrack_hf.DEFAULT_MODEL_DIR.samefile(tracker.model.name_or_path)
    frames, _, _ = fixture_clip()
    results = tracker(list(frames[:3]), boxes=[[30, 44, 54, 64]])
    assert len(results) == 3 and all(len(r) == 1 for r in results)


@pytest.mark.parametrize(
    "dtype",
    [
        torch.float32,
        pytest.param(
            torch.qint8,  # the default on CPUs without native bf16
            marks=pytest.mark.skipif(not int8_linear_supported(), reason="no dynamic int8 CPU kernels in this build"),
        ),
    ],
)
def test_it_tracks_held_out_sequences_clearly_better_than_a_still_box(tmp_path, shipped, dtype):
    model, processor = shipped
    generate_split(tmp_path, "heldout", 3, seed=7, config=GenerationConfig(min_frames=50, max_frames=50, max_size=(320, 240)))
    source = FolderSource(tmp_path / "heldout")
    predictions, still, truth, visible = {}, {}, {}, {}
    for sequence in source:
        predictions[sequence.name], _, _ = track_sequence(model, processor, sequence, dtype=dtype)
        still[sequence.name] = np.repeat(sequence.boxes[:1], len(sequence), axis=0)
        truth[sequence.name], visible[sequence.name] = sequence.boxes, sequence.visible
    ours = evaluate_tracking(predictions, truth, visible)["auc"]
    baseline = evaluate_tracking(still, truth, visible)["auc"]
    # measured 40.5 vs 26.4 (stage 7's model; stage 3's: 47.1, stage 1's: 37.5; 3 short sequences are noisy); the
    # step-1,000 checkpoint scored 29.2, so +8 separates a trained model from an untrained one
    assert ours >= baseline + 8, (ours, baseline)
