"""The converted official weights reproduce the official code's outputs (fixtures of the official repo).

Every fixture directory under ``$ODTRACK_PARITY_FIXTURES`` (default ``tests/fixtures/official-parity``)
is checked frame by frame: a fresh sequence (``seq``), continuing with the carried token (``cont``), and
every frame alone (``noquery``), plus the per-block hidden states and candidate-elimination choices.
"""

import re

import pytest
import torch
from safetensors.torch import load_file

from odtrack_hf import ODTrackModel
from odtrack_hf.conversion import load_state_dict_strict
from odtrack_hf.training import forward_clip
from odtrack_hf.training.loop import CLIP_OUTPUTS
from parity import config_from_fixture, converted_state_dict, fixture_dirs

ATOL = RTOL = 1e-4
FIXTURES = fixture_dirs()
pytestmark = pytest.mark.skipif(not FIXTURES, reason="no official-parity fixtures found")


def _model(directory, attn_implementation):
    config = config_from_fixture(directory)
    config._attn_implementation = attn_implementation
    model = ODTrackModel(config).eval()
    load_state_dict_strict(model, converted_state_dict(directory), str(directory))
    return model


def _frames(outputs, run):
    return sorted({int(m.group(1)) for k in outputs if (m := re.match(rf"^{run}\.frame(\d+)\.", k))})


def _check_frame(ours, outputs, prefix):
    expected = {
        "pred_boxes": ours.pred_boxes.unsqueeze(1),  # official (B, 1, 4)
        "score_map": ours.score_map,
        "size_map": ours.size_map,
        "offset_map": ours.offset_map,
        "backbone_feat": ours.last_hidden_state,
        "track_query": ours.temporal_token,
    }
    for name, value in expected.items():
        torch.testing.assert_close(value, outputs[f"{prefix}.{name}"], atol=ATOL, rtol=RTOL, msg=f"{prefix}.{name}")
    # candidate elimination removes exactly the official tokens (compared as sets)
    removed_keys = sorted(k for k in outputs if k.startswith(f"{prefix}.removed_indexes_s."))
    if removed_keys:
        ours_removed = ours.removed_search_indices
        assert ours_removed is not None and len(ours_removed) == len(removed_keys)
        for k, key in enumerate(removed_keys):
            reference = outputs[key].long()
            mine = ours_removed[k]
            assert mine.shape == reference.shape
            for b in range(reference.shape[0]):
                assert set(mine[b].tolist()) == set(reference[b].tolist()), f"{key} batch {b}"


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("directory", FIXTURES, ids=[d.name for d in FIXTURES])
def test_model_outputs_match_official(directory, attn_implementation):
    model = _model(directory, attn_implementation)
    inputs = load_file(directory / "inputs.safetensors")
    outputs = load_file(directory / "outputs.safetensors")
    templates = inputs["template"].transpose(0, 1)  # official list (T, B, ...) -> (B, T, ...)
    search = inputs["search"].transpose(0, 1)  # (F, B, ...) -> (B, F, ...)

    with torch.no_grad():
        # seq: one training clip from a fresh token, carried frame to frame by the training loop, and
        # the same frames one call at a time, threading the token by hand
        clip = forward_clip(model, search, templates)
        seq_frames = _frames(outputs, "seq")
        assert seq_frames == list(range(search.shape[1]))
        token = None
        for i in seq_frames:
            frame = model(search[:, i], templates, temporal_token=token)
            _check_frame(frame, outputs, f"seq.frame{i}")
            for name in CLIP_OUTPUTS:
                if model.config.attn_type == "separate":
                    # the training loop runs the template path once per clip: the same sums in another
                    # order, so equal to float32 rounding rather than bit for bit
                    torch.testing.assert_close(
                        getattr(clip, name)[:, i], getattr(frame, name), atol=1e-5, rtol=1e-5, msg=f"clip {name} frame {i}"
                    )
                else:
                    assert torch.equal(getattr(clip, name)[:, i], getattr(frame, name)), f"clip {name} frame {i}"
            token = frame.temporal_token

        # cont: a second call continuing from the last token of seq
        for i in _frames(outputs, "cont"):
            frame = model(search[:, i], templates, temporal_token=token)
            _check_frame(frame, outputs, f"cont.frame{i}")
            token = frame.temporal_token

        # noquery: every frame as the start of a new sequence
        for i in _frames(outputs, "noquery"):
            _check_frame(model(search[:, i], templates), outputs, f"noquery.frame{i}")


@pytest.mark.parametrize("directory", FIXTURES, ids=[d.name for d in FIXTURES])
def test_block_hidden_states_match_official(directory):
    """Hidden states after every block of frame 0, in the official internal token order."""
    model = _model(directory, "eager")
    inputs = load_file(directory / "inputs.safetensors")
    outputs = load_file(directory / "outputs.safetensors")
    templates = inputs["template"].transpose(0, 1)
    with torch.no_grad():
        frame = model(inputs["search"][0], templates, output_hidden_states=True)
    blocks = sorted(
        {int(m.group(1)) for k in outputs if (m := re.match(r"^debug\.seq\.frame0\.block(\d+)\.hidden$", k))}
    )
    assert blocks, "fixture has no per-block debug tensors"
    assert len(frame.hidden_states) == model.config.num_hidden_layers + 1
    for j in blocks:
        reference = outputs[f"debug.seq.frame0.block{j}.hidden"]
        torch.testing.assert_close(frame.hidden_states[j + 1], reference, atol=ATOL, rtol=RTOL, msg=f"block {j}")

