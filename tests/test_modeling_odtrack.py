import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from odtrack_hf import ODTrackModel
from odtrack_hf.modeling_odtrack import decode_boxes
from conftest import tiny_config


def _model(**overrides):
    torch.manual_seed(0)
    model = ODTrackModel(tiny_config(**overrides)).eval()
    # non-trivial BatchNorm statistics so that the head is not an identity-like map
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def test_single_frame_shapes(tiny_inputs):
    search, templates = tiny_inputs
    with torch.no_grad():
        out = _model()(search, templates)
    assert out.pred_boxes.shape == (2, 4) and out.pred_scores.shape == (2,)
    assert out.score_map.shape == (2, 1, 4, 4)
    assert out.size_map.shape == out.offset_map.shape == (2, 2, 4, 4)
    assert out.temporal_token.shape == (2, 1, 32)
    assert out.last_hidden_state.shape == (2, 1 + 3 * 4 + 16, 32)
    assert ((out.score_map >= 1e-4) & (out.score_map <= 1 - 1e-4)).all()
    # the output token is the first row of the final hidden states, detached
    assert torch.equal(out.temporal_token, out.last_hidden_state[:, :1])
    assert not out.temporal_token.requires_grad


def test_candidate_elimination_counts_and_zero_rows(tiny_inputs):
    search, templates = tiny_inputs
    with torch.no_grad():
        out = _model()(search, templates)
    # 16 search tokens -> ceil(0.7*16)=12 -> ceil(0.7*12)=9 kept
    removed = out.removed_search_indices
    assert [r.shape for r in removed] == [(2, 4), (2, 3)]
    for b in range(2):
        gone = torch.cat([r[b] for r in removed])
        assert len(set(gone.tolist())) == 7
        search_rows = out.last_hidden_state[b, 13:]
        zero_rows = (search_rows == 0).all(dim=1).nonzero().flatten()
        assert set(zero_rows.tolist()) == set(gone.tolist())


def test_keep_rate_override(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    with torch.no_grad():
        off = model(search, templates, ce_keep_rate=1.0)  # training warm-up: no elimination
        half = model(search, templates, ce_keep_rate=0.5)
    assert off.removed_search_indices is None
    assert not (off.last_hidden_state == 0).all(dim=2).any()
    assert [r.shape[1] for r in half.removed_search_indices] == [8, 4]


def test_ctr_point_vote_rows_on_even_and_odd_grids():
    config = tiny_config()
    model = ODTrackModel(config)
    # 2x2 grid: cell ((2-1)//2, (2-1)//2) = (0, 0); +1 for the temporal token
    assert model.ce_vote_rows(3, torch.device("cpu")).tolist() == [1, 5, 9]
    base = ODTrackModel.__new__(ODTrackModel)
    torch.nn.Module.__init__(base)
    base.config = tiny_config(template_size=192, pretrain_image_size=64)
    # ODTrack-B 12x12 template grid: official CTR_POINT cell (5, 5) = 65 (reference §1.9)
    assert base.ce_vote_rows(2, torch.device("cpu")).tolist() == [1 + 65, 1 + 144 + 65]
    base.config = tiny_config(template_size=112, pretrain_image_size=64)  # 7x7 -> (3, 3) = 24
    assert base.ce_vote_rows(1, torch.device("cpu")).tolist() == [25]
    base.config = tiny_config(ce_template_range="all")
    assert base.ce_vote_rows(2, torch.device("cpu")).tolist() == list(range(1, 9))


def test_clip_forward_threads_the_token_and_starts_fresh(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    clip = torch.stack([search, search.flip(-1), search.roll(8, -2)], dim=1)  # (B, 3 frames, ...)
    with torch.no_grad():
        first = model(clip, templates)
        second = model(clip, templates)  # a second clip must not inherit the first clip's token
        token, frames = None, []
        for i in range(3):
            frames.append(model(clip[:, i], templates, temporal_token=token))
            token = frames[-1].temporal_token
    assert first.pred_boxes.shape == (2, 3, 4) and first.score_map.shape == (2, 3, 1, 4, 4)
    assert torch.equal(first.pred_boxes, second.pred_boxes)
    for i, frame in enumerate(frames):
        torch.testing.assert_close(first.score_map[:, i], frame.score_map, atol=0, rtol=0)
        torch.testing.assert_close(first.temporal_token[:, i], frame.temporal_token, atol=0, rtol=0)
    # the carried token changes the prediction of later frames
    with torch.no_grad():
        fresh = model(clip[:, 1], templates)
    assert (fresh.last_hidden_state - first.last_hidden_state[:, 1]).abs().max() > 1e-3


def test_batch_equals_single_runs(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    with torch.no_grad():
        token = model(search, templates).temporal_token
        batched = model(search, templates, temporal_token=token)
        singles = [model(search[i : i + 1], templates[i : i + 1], temporal_token=token[i : i + 1]) for i in range(2)]
    for i, single in enumerate(singles):
        torch.testing.assert_close(batched.last_hidden_state[i : i + 1], single.last_hidden_state, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched.pred_boxes[i : i + 1], single.pred_boxes, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides", [{}, {"attn_type": "separate", "ce_layers": [], "ce_keep_ratios": []}, {"ce_template_range": "all"}]
)
def test_eager_matches_sdpa(tiny_inputs, overrides):
    search, templates = tiny_inputs
    results = {}
    for implementation in ("eager", "sdpa"):
        model = _model(**overrides)
        model.set_attn_implementation(implementation)
        with torch.no_grad():
            results[implementation] = model(search, templates)
    torch.testing.assert_close(
        results["eager"].last_hidden_state, results["sdpa"].last_hidden_state, atol=1e-5, rtol=1e-5
    )
    torch.testing.assert_close(results["eager"].pred_boxes, results["sdpa"].pred_boxes, atol=1e-5, rtol=1e-5)


def test_separate_attention_isolates_templates_and_token(tiny_inputs):
    search, templates = tiny_inputs
    model = _model(attn_type="separate", ce_layers=[], ce_keep_ratios=[])
    token = torch.randn(2, 1, 32)
    with torch.no_grad():
        base = model(search, templates, temporal_token=token).last_hidden_state
        other_search = model(search.flip(-1), templates, temporal_token=token).last_hidden_state
        other_token = model(search, templates, temporal_token=-token).last_hidden_state
    templates_rows = slice(1, 13)
    # templates attend only to templates: neither the search frame nor the token reaches them
    torch.testing.assert_close(base[:, templates_rows], other_search[:, templates_rows], atol=1e-6, rtol=0)
    # the token reads from the frame but never feeds back into template or search tokens
    torch.testing.assert_close(base[:, 1:], other_token[:, 1:], atol=1e-6, rtol=0)
    assert (base[:, 0] - other_token[:, 0]).abs().max() > 1e-3
    # under concat attention the token does feed back
    concat = _model()
    with torch.no_grad():
        a = concat(search, templates, temporal_token=token).last_hidden_state
        b = concat(search, templates, temporal_token=-token).last_hidden_state
    assert (a[:, 1:13] - b[:, 1:13]).abs().max() > 1e-4


@pytest.mark.parametrize("num_templates", [1, 2, 5])
def test_number_of_templates_may_change(tiny_inputs, num_templates):
    search, templates = tiny_inputs
    templates = templates[:, :1].expand(-1, num_templates, -1, -1, -1).contiguous()
    with torch.no_grad():
        out = _model()(search, templates)
    assert out.last_hidden_state.shape[1] == 1 + 4 * num_templates + 16


def test_attentions_and_hidden_states(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    with torch.no_grad():
        out = model(search, templates, output_attentions=True, output_hidden_states=True)
    # 29 tokens; CE after block 1 leaves 1 + 12 + 12 = 25, after block 2 1 + 12 + 9 = 22
    assert [a.shape for a in out.attentions] == [(2, 4, 29, 29), (2, 4, 29, 29), (2, 4, 25, 25)]
    assert [h.shape[1] for h in out.hidden_states] == [29, 29, 25, 22]
    torch.testing.assert_close(out.attentions[0].sum(-1), torch.ones(2, 4, 29))
    separate = _model(attn_type="separate", ce_layers=[], ce_keep_ratios=[])
    with torch.no_grad():
        attentions = separate(search, templates, output_attentions=True).attentions
    assert all(a.shape == (2, 4, 1, 29) for a in attentions)  # the temporal token's row
    with pytest.raises(ValueError, match="per frame"):
        model(search.unsqueeze(1), templates, output_attentions=True)


def test_return_dict_false_and_main_input(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    with torch.no_grad():
        as_tuple = model(search, templates, return_dict=False)
        as_output = model(search, templates)
    assert isinstance(as_tuple, tuple)
    for left, right in zip(as_tuple, as_output.to_tuple()):
        if isinstance(left, torch.Tensor):
            assert torch.equal(left, right)
    first = list(inspect.signature(ODTrackModel.forward).parameters)[1]
    assert first == ODTrackModel.main_input_name == "pixel_values"


@pytest.mark.parametrize(
    "search_shape, template_shape, message",
    [
        ((2, 3, 48, 48), (2, 3, 3, 32, 32), "search crops of 64x64"),
        ((2, 3, 64, 64), (2, 3, 3, 48, 48), r"\(B, T, 3, 32, 32\)"),
        ((2, 3, 64, 64), (2, 3, 32, 32), r"\(B, T, 3, 32, 32\)"),
        ((2, 3, 64, 64), (1, 3, 3, 32, 32), "Batch sizes differ"),
        ((3, 64, 64), (2, 3, 3, 32, 32), r"\(B, 3, S, S\)"),
        ((2, 1, 64, 64), (2, 3, 3, 32, 32), "image channels"),
    ],
)
def test_bad_inputs_raise_clear_errors(search_shape, template_shape, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(search_shape), torch.zeros(template_shape))


def test_decode_boxes_by_hand():
    score = torch.zeros(1, 1, 4, 4)
    score[0, 0, 2, 1] = 0.9  # row 2, column 1
    score[0, 0, 0, 3] = 0.5
    size = torch.zeros(1, 2, 4, 4)
    size[0, :, 2, 1] = torch.tensor([0.25, 0.5])
    offset = torch.zeros(1, 2, 4, 4)
    offset[0, :, 2, 1] = torch.tensor([0.5, 0.25])
    boxes, scores = decode_boxes(score, size, offset)
    torch.testing.assert_close(boxes, torch.tensor([[(1 + 0.5) / 4, (2 + 0.25) / 4, 0.25, 0.5]]))
    assert scores.item() == pytest.approx(0.9)
    # a window moves the peak but the reported score stays the raw map value
    window = torch.zeros(4, 4)
    window[0, 3] = 1.0
    boxes, scores = decode_boxes(score, size, offset, score * window)
    torch.testing.assert_close(boxes, torch.tensor([[3 / 4, 0.0, 0.0, 0.0]]))
    assert scores.item() == pytest.approx(0.5)


def test_score_map_window_selects_the_peak_only(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    window = torch.zeros(4, 4)
    window[3, 0] = 1.0
    with torch.no_grad():
        plain = model(search, templates)
        windowed = model(search, templates, score_map_window=window)
    assert torch.equal(plain.score_map, windowed.score_map)
    expected_cx = (0 + windowed.offset_map[:, 0, 3, 0]) / 4
    torch.testing.assert_close(windowed.pred_boxes[:, 0], expected_cx)
    torch.testing.assert_close(windowed.pred_scores, plain.score_map[:, 0, 3, 0])


def test_save_load_round_trip_is_bit_identical(tmp_path, tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, ODTrackModel) and not loaded.training
    assert not loaded.embeddings.pretrain_position_embeddings.requires_grad  # still frozen after loading
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with torch.no_grad():
        assert torch.equal(model(search, templates).last_hidden_state, loaded(search, templates).last_hidden_state)


def test_load_in_bfloat16(tmp_path, tiny_inputs):
    search, templates = tiny_inputs
    _model().save_pretrained(tmp_path)
    model = ODTrackModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())
    with torch.no_grad():
        out = model(search.bfloat16(), templates.bfloat16())
    assert out.temporal_token.dtype == out.last_hidden_state.dtype == torch.bfloat16
    # the head's sigmoid maps stay float32 so that the clamp below 1 survives (bf16 rounds 1 - 1e-4 to 1)
    assert out.score_map.dtype == out.pred_boxes.dtype == torch.float32
    assert out.score_map.max() <= 1 - 1e-4 and torch.isfinite(out.pred_boxes).all()


def test_missing_weights_are_initialised(tmp_path):
    from safetensors.torch import load_file, save_file

    _model().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    for key in ("embeddings.temporal_token", "embeddings.search_position_embeddings", "head.score_branch.output.weight"):
        del weights[key]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    model = ODTrackModel.from_pretrained(tmp_path)
    for key in ("embeddings.temporal_token", "embeddings.search_position_embeddings"):
        value = model.state_dict()[key]
        assert torch.isfinite(value).all() and 0 < value.std() < 0.1, key  # trunc_normal(0.02), not garbage
    assert torch.isfinite(model.head.score_branch.output.weight).all()


def _training_loss(model, search, templates):
    out = model(torch.stack([search, search.flip(-1)], dim=1), templates)
    # every output path: boxes, all three maps, the hidden states
    return out.pred_boxes.sum() + out.score_map.mean() + out.size_map.mean() + out.offset_map.mean() + out.last_hidden_state.pow(2).mean()


def test_training_gradients_with_and_without_checkpointing(tiny_inputs):
    search, templates = tiny_inputs
    grads = {}
    for checkpointing in (False, True):
        model = _model(drop_path_rate=0.0).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        _training_loss(model, search, templates).backward()
        grads[checkpointing] = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
    missing = [n for n, g in grads[False].items() if g is None]
    assert missing == [], f"no gradient for {missing}"
    assert not model.embeddings.pretrain_position_embeddings.requires_grad  # never read by forward
    for name, grad in grads[False].items():
        torch.testing.assert_close(grad, grads[True][name], atol=1e-6, rtol=1e-5, msg=name)


def test_drop_path_only_in_training(tiny_inputs):
    search, templates = tiny_inputs
    model = _model(drop_path_rate=0.5)
    with torch.no_grad():
        assert torch.equal(model(search, templates).score_map, model(search, templates).score_map)
        model.train()
        torch.manual_seed(1)
        a = model(search, templates, ce_keep_rate=1.0).last_hidden_state
        torch.manual_seed(2)
        b = model(search, templates, ce_keep_rate=1.0).last_hidden_state
    assert not torch.equal(a, b)


def test_resize_crop_sizes_rederives_position_tables():
    model = _model()
    source = model.embeddings.pretrain_position_embeddings.data[:, 1:]  # 4x4 grid (64 px / 16)
    model.resize_crop_sizes(template_size=48, search_size=96)
    grid = source.transpose(1, 2).reshape(1, 32, 4, 4)
    expected = F.interpolate(grid, size=(6, 6), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)
    torch.testing.assert_close(model.embeddings.search_position_embeddings.data, expected)
    assert model.embeddings.template_position_embeddings.shape == (1, 9, 32)
    with torch.no_grad():
        out = model(torch.randn(1, 3, 96, 96), torch.randn(1, 2, 3, 48, 48))
    assert out.score_map.shape == (1, 1, 6, 6)
    assert model.config.ce_keep_counts() == [math.ceil(0.7 * 36), math.ceil(0.7 * math.ceil(0.7 * 36))]


def test_builds_on_the_meta_device():
    with torch.device("meta"):
        model = ODTrackModel(tiny_config())
    assert all(p.device.type == "meta" for p in model.parameters())
    rates = [layer.drop_path_rate for layer in model.encoder.layers]
    assert rates == pytest.approx([0.0, 0.05, 0.1])  # linspace(0, drop_path_rate, depth)


def test_without_token_propagation_every_frame_starts_fresh(tiny_inputs):
    """The paper's "w/o Token" ablation: frames of a clip, and a passed token, are ignored."""
    search, templates = tiny_inputs
    model = _model(propagate_temporal_token=False)
    clip = torch.stack([search, search], dim=1)
    with torch.no_grad():
        out = model(clip, templates)
        fresh = model(search, templates)
        given = model(search, templates, temporal_token=torch.randn(2, 1, 32))
    torch.testing.assert_close(out.last_hidden_state[:, 1], out.last_hidden_state[:, 0], atol=0, rtol=0)
    torch.testing.assert_close(given.last_hidden_state, fresh.last_hidden_state, atol=0, rtol=0)
    with torch.no_grad():  # with propagation the second frame differs
        carried = _model()(clip, templates)
    assert (carried.last_hidden_state[:, 1] - carried.last_hidden_state[:, 0]).abs().max() > 1e-4
