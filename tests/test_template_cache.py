"""Template cache of separate attention: the cached path reproduces the uncached one and the official code."""

import json

import numpy as np
import pytest
import torch
from parity import config_from_fixture, converted_state_dict, fixture_dirs, tracker_from_fixture
from safetensors.torch import load_file

from odtrack_hf import ODTrackConfig, ODTrackInferenceSession, ODTrackModel, TemplateMemoryPolicy
from odtrack_hf.conversion import load_state_dict_strict
from odtrack_hf.modeling_odtrack import ODTrackTemplateCache

OUTPUTS = ("pred_boxes", "pred_scores", "score_map", "size_map", "offset_map", "temporal_token", "last_hidden_state")
SEPARATE = [
    d for d in fixture_dirs() if json.loads((d / "config.json").read_text())["model"]["attn_type"] == "separate"
]


def tiny_model(attn_type: str = "separate", attn_implementation: str = "sdpa", seed: int = 0) -> ODTrackModel:
    torch.manual_seed(seed)
    config = ODTrackConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=4,
        patch_size=16,
        template_size=32,
        search_size=64,
        head_channels=16,
        attn_type=attn_type,
        ce_layers=[1] if attn_type == "concat" else [],
        ce_keep_ratios=[0.7] if attn_type == "concat" else [],
    )
    config._attn_implementation = attn_implementation
    return ODTrackModel(config).eval()


def assert_same_outputs(cached, uncached, atol: float = 1e-6) -> None:
    for name in OUTPUTS:
        torch.testing.assert_close(getattr(cached, name), getattr(uncached, name), atol=atol, rtol=0, msg=name)


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("batch_size, num_templates", [(1, 1), (2, 3), (3, 4)])
def test_cached_forward_matches_uncached_on_random_models(attn_implementation, batch_size, num_templates):
    model = tiny_model(attn_implementation=attn_implementation, seed=batch_size)
    templates = torch.randn(batch_size, num_templates, 3, 32, 32)
    with torch.no_grad():
        cache = model.encode_templates(templates)
        token = None
        for _ in range(3):  # one cache, several search frames and temporal tokens
            search = torch.randn(batch_size, 3, 64, 64)
            uncached = model(search, templates, temporal_token=token)
            cached = model(search, template_cache=cache, temporal_token=token)
            assert_same_outputs(cached, uncached)
            token = uncached.temporal_token


def test_per_object_caches_concatenate_to_the_batched_cache():
    model = tiny_model()
    templates, search = torch.randn(2, 3, 3, 32, 32), torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        batched = model.encode_templates(templates)
        rows = batched.split()
        assert [row.batch_size for row in rows] == [1, 1]
        joined = ODTrackTemplateCache.concatenate([model.encode_templates(templates[i : i + 1]) for i in range(2)])
        assert_same_outputs(model(search, template_cache=joined), model(search, template_cache=batched))
        assert_same_outputs(model(search[1:], template_cache=rows[1]), model(search[1:], templates[1:]))
        with pytest.raises(ValueError, match="same number of templates"):
            ODTrackTemplateCache.concatenate([rows[0], model.encode_templates(templates[:1, :2])])


def test_cache_is_refused_where_it_does_not_apply():
    concat = tiny_model("concat")
    with pytest.raises(ValueError, match="attn_type='separate'"):
        concat.encode_templates(torch.randn(1, 2, 3, 32, 32))
    model = tiny_model()
    templates, search = torch.randn(1, 2, 3, 32, 32), torch.randn(1, 3, 64, 64)
    cache = model.encode_templates(templates)
    with pytest.raises(ValueError, match="attn_type='separate'"):
        concat(search, template_cache=cache)
    with pytest.raises(ValueError, match="not both"):
        model(search, templates, template_cache=cache)
    with pytest.raises(ValueError, match="not both"):
        model(search)
    for flag in ("output_hidden_states", "output_attentions"):
        with pytest.raises(ValueError, match="a template cache does not keep"):
            model(search, template_cache=cache, **{flag: True})
    with pytest.raises(ValueError, match="Batch sizes differ"):
        model(torch.randn(2, 3, 64, 64), template_cache=cache)


@pytest.mark.skipif(not SEPARATE, reason="no separate-attention official-parity fixture")
@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_separate_fixture_matches_official_through_the_cache(attn_implementation):
    directory = SEPARATE[0]
    config = config_from_fixture(directory)
    config._attn_implementation = attn_implementation
    model = ODTrackModel(config).eval()
    load_state_dict_strict(model, converted_state_dict(directory), directory.name)
    inputs, outputs = load_file(directory / "inputs.safetensors"), load_file(directory / "outputs.safetensors")
    templates, search = inputs["template"].transpose(0, 1), inputs["search"].transpose(0, 1)
    names = {"pred_boxes": "pred_boxes", "score_map": "score_map", "size_map": "size_map", "offset_map": "offset_map",
             "last_hidden_state": "backbone_feat", "temporal_token": "track_query"}  # fmt: skip
    with torch.no_grad():
        cache = model.encode_templates(templates)
        token = None
        for run in ("seq", "cont"):  # cont carries the token on from the end of seq
            for frame in range(search.shape[1]):
                if f"{run}.frame{frame}.pred_boxes" not in outputs:
                    continue
                ours = model(search[:, frame], template_cache=cache, temporal_token=token)
                for name, official in names.items():
                    value = getattr(ours, name).unsqueeze(1) if name == "pred_boxes" else getattr(ours, name)
                    expected = outputs[f"{run}.frame{frame}.{official}"]
                    torch.testing.assert_close(value, expected, atol=1e-4, rtol=1e-4, msg=f"{run}.{frame}.{name}")
                token = ours.temporal_token


@pytest.mark.skipif(not SEPARATE, reason="no separate-attention official-parity fixture")
def test_session_reencodes_templates_only_when_the_selection_changes():
    directory = SEPARATE[0]
    model, processor, tracker = tracker_from_fixture(directory)
    video = load_file(directory / tracker["video_file"])
    clip = video["frames"].numpy()
    frames = np.concatenate([clip, clip[::-1], clip, clip[::-1]])  # 48 frames: f // n changes several times
    init_box = video["init_box_xywh"].tolist()

    encoded = []
    encode_templates = model.encode_templates
    model.encode_templates = lambda templates: encoded.append(templates.shape[1]) or encode_templates(templates)
    session = ODTrackInferenceSession(model, processor)
    assert session.use_template_cache
    cached = [output.boxes for output in session.propagate(frames, boxes=[init_box, [60.0, 50.0, 30.0, 24.0]])]

    policy = TemplateMemoryPolicy(tracker["template_number"])
    selections = [policy.select(f, range(f)) for f in range(len(frames))]
    changes = [f for f in range(1, len(frames)) if f == 1 or selections[f] != selections[f - 1]]
    assert 2 * tracker["template_number"] < len(changes) < len(frames) - 1
    # both objects share each re-encoding (one batched call), once per change of the selection
    assert encoded == [len(selections[f]) for f in changes]

    reference = ODTrackInferenceSession(model, processor)
    reference.use_template_cache = False
    uncached = [output.boxes for output in reference.propagate(frames, boxes=[init_box, [60.0, 50.0, 30.0, 24.0]])]
    torch.testing.assert_close(torch.stack(cached), torch.stack(uncached), atol=1e-6, rtol=0)
    assert len(encoded) == len(changes)  # the uncached session never encoded templates


@pytest.mark.skipif(not SEPARATE, reason="no separate-attention official-parity fixture")
@pytest.mark.parametrize("interval", [3, 7])
def test_template_refresh_interval_chooses_templates_every_k_frames(interval):
    """With ``template_refresh_interval`` k the session chooses templates on tracked frames 1, 1 + k, ...
    only, re-encodes at most that often, and keeps the held templates stored: a session without the
    cache, which reads the crops on every frame, tracks the same even with the smallest memory."""
    directory = SEPARATE[0]
    model, processor, tracker = tracker_from_fixture(directory)
    model.config.template_refresh_interval = interval
    video = load_file(directory / tracker["video_file"])
    clip = video["frames"].numpy()
    frames = np.concatenate([clip, clip[::-1], clip, clip[::-1]])
    init_box = video["init_box_xywh"].tolist()
    smallest_memory = 2 * (tracker["template_number"] + 1)

    def track(use_template_cache: bool) -> tuple[torch.Tensor, list[int], int]:
        session = ODTrackInferenceSession(model, processor, max_templates=smallest_memory)
        session.use_template_cache = use_template_cache
        chosen_on, encodings, select = [], [], session.template_policy.select
        session.template_policy.select = lambda frame, stored: chosen_on.append(frame) or select(frame, stored)
        session._encode_templates = lambda templates: encodings.append(1) or model.encode_templates(templates)
        boxes = torch.stack([output.boxes for output in session.propagate(frames, boxes=[init_box])])
        return boxes, chosen_on, len(encodings)

    cached, chosen_on, encodings = track(use_template_cache=True)
    assert chosen_on == list(range(1, len(frames), interval))
    assert 2 <= encodings <= len(chosen_on)
    uncached, _, no_encodings = track(use_template_cache=False)
    assert no_encodings == 0
    torch.testing.assert_close(cached, uncached, atol=1e-6, rtol=0)
