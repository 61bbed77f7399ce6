import inspect
import math

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel

from odtrack_hf import ODTrackModel
from odtrack_hf.training import forward_clip
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


def test_keep_ratio_override(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    with torch.no_grad():
        off = model(search, templates, ce_keep_ratios=[1.0, 1.0])  # training warm-up: no elimination
        half = model(search, templates, ce_keep_ratios=[0.5, 0.5])
        with pytest.raises(ValueError, match="one ratio per candidate-elimination block"):
            model(search, templates, ce_keep_ratios=[0.5])
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
    # ODTrack-B 12x12 template grid: official CTR_POINT cell (5, 5) = 65
    # (docs/official-implementation.md, "Attention and candidate elimination")
    assert base.ce_vote_rows(2, torch.device("cpu")).tolist() == [1 + 65, 1 + 144 + 65]
    base.config = tiny_config(template_size=112, pretrain_image_size=64)  # 7x7 -> (3, 3) = 24
    assert base.ce_vote_rows(1, torch.device("cpu")).tolist() == [25]
    base.config = tiny_config(ce_template_range="all")
    assert base.ce_vote_rows(2, torch.device("cpu")).tolist() == list(range(1, 9))


def test_one_frame_per_call(tiny_inputs):
    search, templates = tiny_inputs
    clip = torch.stack([search, search], dim=1)  # (B, N, 3, S, S): a clip is run frame by frame by the caller
    with pytest.raises(ValueError, match=r"\(B, 3, 64, 64\).*once per frame"):
        _model()(clip, templates)


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
    # the search tokens of every hidden state (and attention input), by raster index
    assert [index.shape for index in out.search_indices] == [(2, 16), (2, 16), (2, 12), (2, 9)]
    assert torch.equal(out.search_indices[0][0], torch.arange(16))
    for kept, removed, after in zip(out.search_indices[1:3], out.removed_search_indices, out.search_indices[2:]):
        assert set(kept[0].tolist()) == set(after[0].tolist()) | set(removed[0].tolist())
    # the recorded last block output, normalised, is last_hidden_state at those raster positions
    kept = model.layernorm(out.hidden_states[-1])[:, 13:]
    torch.testing.assert_close(kept[0], out.last_hidden_state[0, 13:][out.search_indices[-1][0]])
    plain = model(search, templates)
    assert plain.attentions is None and plain.hidden_states is None and plain.search_indices is None


def test_separate_attention_returns_the_full_matrix_with_blocked_pairs_zero(tiny_inputs):
    search, templates = tiny_inputs
    model = _model(attn_type="separate", ce_layers=[], ce_keep_ratios=[])
    with torch.no_grad():
        attentions = model(search, templates, output_attentions=True).attentions
    template_rows, search_rows = slice(1, 13), slice(13, 29)
    for attention in attentions:
        assert attention.shape == (2, 4, 29, 29)
        torch.testing.assert_close(attention.sum(-1), torch.ones(2, 4, 29))
        assert (attention[:, :, template_rows, :1] == 0).all() and (attention[:, :, template_rows, search_rows] == 0).all()
        assert (attention[:, :, search_rows, :1] == 0).all()  # search tokens do not read the temporal token
        assert (attention[:, :, 0] > 0).all() and (attention[:, :, search_rows, 1:] > 0).all()


def test_output_flags_come_from_the_config(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    model.set_attn_implementation("eager")  # the config accepts output_attentions only with eager attention
    model.config.output_attentions = model.config.output_hidden_states = True
    with torch.no_grad():
        out = model(search, templates)
        off = model(search, templates, output_attentions=False, output_hidden_states=False)
    assert len(out.attentions) == 3 and len(out.hidden_states) == 4
    assert off.attentions is None and off.hidden_states is None


def test_unknown_keyword_arguments_raise(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    token = torch.zeros(2, 1, 32)
    with pytest.raises(TypeError, match="unexpected keyword argument 'tempral_token'; did you mean 'temporal_token'"):
        model(search, templates, tempral_token=token)
    with pytest.raises(TypeError, match="'score_map_window'"):  # the window belongs to post-processing
        model(search, templates, score_map_window=torch.ones(4, 4))


def test_input_embeddings_and_require_grads_hook(tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    assert model.get_input_embeddings() is model.embeddings.patch_embeddings
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    assert not model(search, templates).last_hidden_state.requires_grad
    model.enable_input_require_grads()  # adapters + gradient checkpointing: the embeddings' output needs grad
    assert len(model._require_grads_hooks) == 1
    assert model(search, templates).last_hidden_state.requires_grad
    model.disable_input_require_grads()
    assert not model(search, templates).last_hidden_state.requires_grad


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
        ((2, 3, 48, 48), (2, 3, 3, 32, 32), r"search crops of shape \(B, 3, 64, 64\)"),
        ((2, 3, 64, 64), (2, 3, 3, 48, 48), r"\(B, T, 3, 32, 32\)"),
        ((2, 3, 64, 64), (2, 3, 32, 32), r"\(B, T, 3, 32, 32\)"),
        ((2, 3, 64, 64), (1, 3, 3, 32, 32), "Batch sizes differ"),
        ((3, 64, 64), (2, 3, 3, 32, 32), r"\(B, 3, 64, 64\).*got \(3, 64, 64\)"),
        ((2, 1, 64, 64), (2, 3, 3, 32, 32), r"\(B, 3, 64, 64\).*got \(2, 1, 64, 64\)"),
    ],
)
def test_bad_inputs_raise_clear_errors(search_shape, template_shape, message):
    model = _model()
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(search_shape), torch.zeros(template_shape))


def test_pred_boxes_are_the_box_map_at_the_raw_peak(tiny_inputs):
    search, templates = tiny_inputs
    with torch.no_grad():
        out = _model()(search, templates)
    assert out.box_map.shape == (2, 4, 4, 4)
    for row in range(2):
        peak = int(out.score_map[row].flatten().argmax())
        y, x = divmod(peak, 4)
        expected = torch.stack([(x + out.offset_map[row, 0, y, x]) / 4, (y + out.offset_map[row, 1, y, x]) / 4])
        torch.testing.assert_close(out.pred_boxes[row], torch.cat([expected, out.size_map[row, :, y, x]]))
        assert out.pred_scores[row] == out.score_map[row, 0, y, x]


def test_save_load_round_trip_is_bit_identical(tmp_path, tiny_inputs):
    search, templates = tiny_inputs
    model = _model()
    model.save_pretrained(tmp_path)
    assert {"config.json", "model.safetensors"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoModel.from_pretrained(tmp_path)
    assert isinstance(loaded, ODTrackModel) and not loaded.training
    # the pre-training table is a buffer: saved and loaded under its key, never trained
    assert "embeddings.pretrain_position_embeddings" in dict(loaded.named_buffers())
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
    out = forward_clip(model, torch.stack([search, search.flip(-1)], dim=1), templates)
    # every output path: boxes and all three maps (the hidden states feed them)
    return out.pred_boxes.sum() + out.score_map.mean() + out.size_map.mean() + out.offset_map.mean()


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
    assert "embeddings.pretrain_position_embeddings" not in grads[False]  # a buffer, never read by forward
    for name, grad in grads[False].items():
        torch.testing.assert_close(grad, grads[True][name], atol=1e-6, rtol=1e-5, msg=name)


def test_drop_path_only_in_training(tiny_inputs):
    search, templates = tiny_inputs
    model = _model(drop_path_rate=0.5)
    with torch.no_grad():
        assert torch.equal(model(search, templates).score_map, model(search, templates).score_map)
        model.train()
        torch.manual_seed(1)
        a = model(search, templates, ce_keep_ratios=[1.0, 1.0]).last_hidden_state
        torch.manual_seed(2)
        b = model(search, templates, ce_keep_ratios=[1.0, 1.0]).last_hidden_state
    assert not torch.equal(a, b)


def test_resize_crop_sizes_rederives_position_tables():
    model = _model()
    source = model.embeddings.pretrain_position_embeddings[:, 1:]  # 4x4 grid (64 px / 16)
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
        out = forward_clip(model, clip, templates)
        fresh = model(search, templates)
        given = model(search, templates, temporal_token=torch.randn(2, 1, 32))
    torch.testing.assert_close(out.temporal_token[:, 1], out.temporal_token[:, 0], atol=0, rtol=0)
    torch.testing.assert_close(given.last_hidden_state, fresh.last_hidden_state, atol=0, rtol=0)
    with torch.no_grad():  # with propagation the second frame differs
        carried = forward_clip(_model(), clip, templates)
    assert (carried.temporal_token[:, 1] - carried.temporal_token[:, 0]).abs().max() > 1e-4


def test_forward_clip_runs_the_separate_template_path_once_with_the_same_outputs_and_gradients(tiny_inputs):
    """With separate attention forward_clip encodes the templates once per clip: the same outputs and
    gradients as running the template path with every frame."""
    search, templates = tiny_inputs
    clip = torch.stack([search, search.flip(-1), search.flip(-2)], dim=1)
    model = _model(attn_type="separate", ce_layers=[], ce_keep_ratios=[])
    clip_outputs = forward_clip(model, clip, templates)
    clip_outputs.pred_boxes.sum().backward()
    shared = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    frames, token = [], None
    for index in range(clip.shape[1]):
        frame = model(clip[:, index], templates, temporal_token=token)
        token = frame.temporal_token
        frames.append(frame.pred_boxes)
    per_frame = torch.stack(frames, dim=1)
    per_frame.sum().backward()
    torch.testing.assert_close(clip_outputs.pred_boxes, per_frame, atol=1e-6, rtol=1e-5)
    assert "embeddings.template_position_embeddings" in shared  # the template path gets gradients
    for name, parameter in model.named_parameters():
        if parameter.grad is not None:
            torch.testing.assert_close(shared[name], parameter.grad, atol=1e-6, rtol=1e-4, msg=name)
