"""Convert official ODTrack checkpoints (``*.pth.tar``) and MAE encoder weights to ``ODTrackModel``.

Loading never unpickles arbitrary objects: files go through ``torch.load(weights_only=True)``. Official
training checkpoints also pickle repository objects (``settings``, ``stats``; docs/official-implementation.md,
"Checkpoints and weight loading"); those classes are replaced by inert stand-ins so that the tensors under
``net`` can still be read.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from .configuration_odtrack import ODTrackConfig
from .modeling_odtrack import ODTrackModel, resample_position_embeddings

_BRANCHES = {"ctr": "score", "offset": "offset", "size": "size"}

# official key (regex) -> our key (template); ordered, first match wins
_OFFICIAL_KEY_MAP: list[tuple[str, str]] = [
    (r"^backbone\.cls_token$", "embeddings.temporal_token"),
    (r"^backbone\.cls_pos_embed$", "embeddings.temporal_position_embeddings"),
    (r"^backbone\.pos_embed$", "embeddings.pretrain_position_embeddings"),
    (r"^backbone\.pos_embed_z$", "embeddings.template_position_embeddings"),
    (r"^backbone\.pos_embed_x$", "embeddings.search_position_embeddings"),
    (r"^backbone\.patch_embed\.proj\.(weight|bias)$", r"embeddings.patch_embeddings.projection.\1"),
    (r"^backbone\.blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)$", r"encoder.layers.\1.attention.\2.\3"),
    (r"^backbone\.blocks\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$", r"encoder.layers.\1.\2.\3"),
    (r"^backbone\.norm\.(weight|bias)$", r"layernorm.\1"),
    (r"^box_head\.conv([1-4])_(ctr|offset|size)\.0\.(weight|bias)$", "head.{branch}_branch.blocks.{block}.conv.{rest}"),
    (r"^box_head\.conv([1-4])_(ctr|offset|size)\.1\.(\w+)$", "head.{branch}_branch.blocks.{block}.norm.{rest}"),
    (r"^box_head\.conv5_(ctr|offset|size)\.(weight|bias)$", "head.{branch}_branch.output.{rest}"),
]

# MAE encoder key -> our key (docs/official-implementation.md, "Checkpoints and weight loading"); decoder keys
# and mask_token are not part of the tracker
_MAE_KEY_MAP: list[tuple[str, str]] = [
    (r"^cls_token$", "embeddings.temporal_token"),
    (r"^pos_embed$", "embeddings.pretrain_position_embeddings"),
    (r"^patch_embed\.proj\.(weight|bias)$", r"embeddings.patch_embeddings.projection.\1"),
    (r"^blocks\.(\d+)\.attn\.(qkv|proj)\.(weight|bias)$", r"encoder.layers.\1.attention.\2.\3"),
    (r"^blocks\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)$", r"encoder.layers.\1.\2.\3"),
    (r"^(?:norm|fc_norm)\.(weight|bias)$", r"layernorm.\1"),
]
_MAE_IGNORED = re.compile(r"^(decoder|mask_token|head\.)")


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not fit the model built from the configuration."""


def load_checkpoint_file(path: str | Path) -> dict:
    """Read a ``torch.save`` file with ``weights_only=True``.

    Classes pickled by the official repository (its ``Settings``, ``AverageMeter``...) are replaced
    by inert placeholder classes; no code from the file is executed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Checkpoint {path} does not exist.")
    try:
        unknown = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as error:  # not a zip / corrupted file
        raise ValueError(f"{path} is not a readable PyTorch checkpoint ({error}).") from error
    placeholders = [_placeholder_class(name) for name in unknown]
    try:
        with torch.serialization.safe_globals(placeholders):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if "GLOBAL" in line), reason[-1] if reason else "")
        raise ValueError(
            f"{path} cannot be loaded safely (weights_only=True refused it: {detail.strip()}). "
            "Re-save its weights from a trusted environment, e.g. torch.save(torch.load(f)['net'], 'net.pth')."
        ) from None


def _placeholder_class(qualified_name: str) -> type:
    module, _, name = qualified_name.rpartition(".")

    def __setstate__(self, state):
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})

    cls = type(name, (), {"__setstate__": __setstate__, "__module__": module, "__qualname__": name})
    return cls


def _rename(keys_map: list[tuple[str, str]], key: str) -> str | None:
    for pattern, target in keys_map:
        match = re.match(pattern, key)
        if match is None:
            continue
        if "{" in target:  # head keys: translate branch names and block numbers
            groups = match.groups()
            if len(groups) == 3:
                block, branch, rest = groups
                return target.format(branch=_BRANCHES[branch], block=int(block) - 1, rest=rest)
            branch, rest = groups
            return target.format(branch=_BRANCHES[branch], rest=rest)
        return match.expand(target)
    return None


def _rename_all(
    keys_map: list[tuple[str, str]], weights: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """``(tensors under our keys, cloned; the keys that no rule of keys_map matches)``."""
    converted, unknown = {}, []
    for key, value in weights.items():
        new_key = _rename(keys_map, key)
        if new_key is None:
            unknown.append(key)
        else:
            converted[new_key] = value.detach().clone()
    return converted, unknown


def convert_official_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename the keys of an official ``ODTrack.state_dict()`` to ``ODTrackModel`` keys.

    Tensors are cloned, which also unties ``cls_pos_embed`` from slot 0 of ``pos_embed`` (they share
    storage in the official model; safetensors refuses shared tensors). Unknown keys raise.
    """
    state_dict = {key.removeprefix("module."): value for key, value in state_dict.items()}
    converted, unknown = _rename_all(_OFFICIAL_KEY_MAP, state_dict)
    if unknown:
        raise CheckpointMismatchError(
            f"{len(unknown)} key(s) of the checkpoint are not part of ODTrack: {', '.join(sorted(unknown)[:20])}"
            + (" ..." if len(unknown) > 20 else "")
            + ". Is this an ODTrack checkpoint?"
        )
    return converted


def load_state_dict_strict(model: ODTrackModel, state_dict: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state_dict`` into ``model``; any missing, unexpected or mis-shaped tensor is an error
    that lists them all."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    mismatched = sorted(
        f"{key}: checkpoint {tuple(state_dict[key].shape)} vs model {tuple(expected[key].shape)}"
        for key in set(expected) & set(state_dict)
        if state_dict[key].shape != expected[key].shape
    )
    if missing or unexpected or mismatched:
        lines = [f"{source} does not match the model configuration:"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + "; ".join(items[:12]) + (" ..." if len(items) > 12 else ""))
        lines.append(
            "  Fix: build the config with the checkpoint's sizes (preset, hidden_size, num_hidden_layers, "
            "template_size, search_size, head_channels)."
        )
        raise CheckpointMismatchError("\n".join(lines))
    model.load_state_dict(state_dict, strict=True)


def official_weights(checkpoint: dict) -> dict[str, torch.Tensor]:
    """The model weights of an official checkpoint: under ``net``, or the whole dict if it is bare."""
    weights = checkpoint.get("net", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise CheckpointMismatchError(
            "Expected an official ODTrack checkpoint (a dict with the weights under 'net') or a bare state dict "
            "of tensors."
        )
    return weights


def convert_official_checkpoint(
    checkpoint_path: str | Path, config: ODTrackConfig, output_dir: str | Path | None = None
) -> ODTrackModel:
    """Build ``ODTrackModel(config)`` from an official checkpoint and optionally save it as a ``save_pretrained``
    folder (``odtrack convert`` adds the processor of the config's crop settings)."""
    weights = official_weights(load_checkpoint_file(checkpoint_path))
    model = ODTrackModel(config)
    load_state_dict_strict(model, convert_official_state_dict(weights), f"Checkpoint {checkpoint_path}")
    model.eval()
    if output_dir is not None:
        model.save_pretrained(output_dir)
    return model


def load_mae_backbone(model: ODTrackModel, checkpoint_path: str | Path) -> None:
    """Initialise the backbone from an MAE ViT encoder checkpoint (weights under ``model``).

    Reproduces the official build order (docs/official-implementation.md, "Checkpoints and weight loading"):
    the encoder weights are loaded, then the template and search position tables are bicubically resized
    from the 224-px table, and the temporal token's position embedding is slot 0 of that table. The head keeps its own init.
    Any missing encoder weight or shape mismatch is an error (the official code only warned).
    """
    checkpoint = load_checkpoint_file(checkpoint_path)
    weights = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else checkpoint
    encoder = {key: value for key, value in weights.items() if not _MAE_IGNORED.match(key)}
    converted, unknown = _rename_all(_MAE_KEY_MAP, encoder)
    if unknown:
        raise CheckpointMismatchError(
            f"MAE checkpoint {checkpoint_path} has keys that are not part of a ViT encoder: {', '.join(unknown[:20])}."
        )
    source = converted.get("embeddings.pretrain_position_embeddings")
    if source is None:
        raise CheckpointMismatchError(f"MAE checkpoint {checkpoint_path} has no 'pos_embed'.")
    cfg = model.config
    converted["embeddings.temporal_position_embeddings"] = source[:, :1].clone()
    converted["embeddings.template_position_embeddings"] = resample_position_embeddings(source[:, 1:], cfg.template_feat_size)
    converted["embeddings.search_position_embeddings"] = resample_position_embeddings(source[:, 1:], cfg.search_feat_size)
    head = {key: value for key, value in model.state_dict().items() if key.startswith("head.")}
    load_state_dict_strict(model, {**converted, **head}, f"MAE checkpoint {checkpoint_path}")


__all__ = [
    "CheckpointMismatchError",
    "convert_official_checkpoint",
    "convert_official_state_dict",
    "load_checkpoint_file",
    "load_mae_backbone",
    "load_state_dict_strict",
    "official_weights",
]
