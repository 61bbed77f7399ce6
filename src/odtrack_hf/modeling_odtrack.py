"""ODTrack: a one-stream ViT tracker with a temporal token (AAAI 2024), as a transformers model.

The model is a pure tensor function. One call takes the search crop of the current frame, the
template (reference-frame) crops and the temporal token of the previous frame, and returns the
CENTER-head maps, the decoded box in crop coordinates and the temporal token for the next frame.
Nothing is stored on the module between calls: tracking state lives in the inference session.
"""


import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple

from .configuration_odtrack import ODTrackConfig

SCORE_CLAMP = 1e-4  # the official sigmoid clamp: [1e-4, 1 - 1e-4]


@dataclass
class ODTrackOutput(ModelOutput):
    r"""Output of [`ODTrackModel`].

    For one search frame (``pixel_values`` of shape ``(B, 3, S, S)``) the shapes are as below, with
    ``H = W = search_size / patch_size``, ``L = 1 + T * (template_size / patch_size)**2 + H * W`` and
    ``C = hidden_size``. For a clip (``pixel_values`` of shape ``(B, N, 3, S, S)``) every tensor gains
    a frame axis at dim 1.

    Args:
        loss: training loss (only when ``labels`` are given).
        pred_boxes: ``(B, 4)`` box ``(cx, cy, w, h)`` normalised to the search crop, decoded at the peak
            of the score map (of ``score_map * score_map_window`` when a window is given).
        pred_scores: ``(B,)`` raw score-map value at the selected peak.
        score_map: ``(B, 1, H, W)`` centre score, sigmoid clamped to ``[1e-4, 1 - 1e-4]``.
        size_map: ``(B, 2, H, W)`` box width and height as fractions of the crop side.
        offset_map: ``(B, 2, H, W)`` sub-cell x and y offsets of the centre, in cells.
        temporal_token: ``(B, 1, C)`` detached output token, to be passed as ``temporal_token`` with
            the next frame of the same sequence.
        last_hidden_state: ``(B, L, C)`` backbone output after the final LayerNorm, ordered
            ``[temporal token, template 0, ..., template T-1, search (raster order)]``; search tokens
            removed by candidate elimination are rows of zeros.
        removed_search_indices: one ``(B, n_k)`` tensor per eliminating block: raster indices of the
            search tokens that block removed.
        hidden_states: embeddings and the output of every block (before the final LayerNorm); with
            candidate elimination the sequence shrinks and kept search tokens are in score order.
        attentions: attention probabilities of every block, ``(B, heads, L_i, L_i)``; for separate
            attention the temporal token's row ``(B, heads, 1, L)``.
    """

    loss: torch.Tensor | None = None
    pred_boxes: torch.Tensor | None = None
    pred_scores: torch.Tensor | None = None
    score_map: torch.Tensor | None = None
    size_map: torch.Tensor | None = None
    offset_map: torch.Tensor | None = None
    temporal_token: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    removed_search_indices: tuple[torch.Tensor, ...] | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class ODTrackTemplateCache:
    r"""The template path of a separate-attention model, computed once by [`ODTrackModel.encode_templates`].

    With ``attn_type="separate"`` template tokens attend only to template tokens, so their hidden
    states, keys and values in every block depend only on the template crops: not on the search
    frame, nor on the temporal token. Pass the cache as ``template_cache=`` to reuse them for every
    frame tracked with the same templates.

    Args:
        keys: per block, ``(B, heads, T * Nz, d)`` keys of the template tokens.
        values: per block, ``(B, heads, T * Nz, d)`` values of the template tokens.
        hidden_states: ``(B, T * Nz, C)`` template tokens after the last block (before the final LayerNorm).
        num_templates: ``T``.
    """

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]
    hidden_states: torch.Tensor
    num_templates: int

    @property
    def batch_size(self) -> int:
        return self.hidden_states.shape[0]

    def split(self) -> list["ODTrackTemplateCache"]:
        """One cache per batch row (e.g. per tracked object)."""
        return [
            ODTrackTemplateCache(
                keys=tuple(key[row : row + 1] for key in self.keys),
                values=tuple(value[row : row + 1] for value in self.values),
                hidden_states=self.hidden_states[row : row + 1],
                num_templates=self.num_templates,
            )
            for row in range(self.batch_size)
        ]

    @classmethod
    def concatenate(cls, caches: "list[ODTrackTemplateCache]") -> "ODTrackTemplateCache":
        """Stack caches with the same number of templates along the batch axis."""
        if len({cache.num_templates for cache in caches}) != 1:
            raise ValueError("Only caches with the same number of templates can share a forward.")
        if len(caches) == 1:
            return caches[0]
        return cls(
            keys=tuple(torch.cat(per_block) for per_block in zip(*(cache.keys for cache in caches))),
            values=tuple(torch.cat(per_block) for per_block in zip(*(cache.values for cache in caches))),
            hidden_states=torch.cat([cache.hidden_states for cache in caches]),
            num_templates=caches[0].num_templates,
        )


# --------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------
class ODTrackPatchEmbeddings(nn.Module):
    """Non-overlapping ``patch_size`` patches → tokens in row-major order."""

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.num_channels = config.num_channels
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        if pixel_values.shape[1] != self.num_channels:
            raise ValueError(
                f"Expected {self.num_channels} image channels, got {pixel_values.shape[1]} "
                f"(input shape {tuple(pixel_values.shape)}); pass normalised RGB crops in NCHW layout."
            )
        return self.projection(pixel_values).flatten(2).transpose(1, 2)  # (B, HW, C)


def resample_position_embeddings(grid: torch.Tensor, new_size: int) -> torch.Tensor:
    """Bicubically resize a ``(1, G*G, C)`` position table to ``(1, new_size**2, C)``.

    This is the official ``finetune_track`` surgery (``align_corners=False``), done in float32.
    """
    num_tokens, dim = grid.shape[1], grid.shape[2]
    old_size = math.isqrt(num_tokens)
    if old_size * old_size != num_tokens:
        raise ValueError(f"Position table with {num_tokens} tokens is not a square grid.")
    table = grid.float().transpose(1, 2).reshape(1, dim, old_size, old_size)
    table = F.interpolate(table, size=(new_size, new_size), mode="bicubic", align_corners=False)
    return table.flatten(2).transpose(1, 2).to(grid.dtype)


class ODTrackEmbeddings(nn.Module):
    """Patch embeddings and position tables for the temporal token, the templates and the search crop.

    ``pretrain_position_embeddings`` is the ``(1, 1 + G*G, C)`` table of the pre-trained ViT (official
    ``pos_embed``). Forward never reads it: it is the source from which the template and search tables
    are derived (MAE initialisation, :meth:`ODTrackModel.resize_crop_sizes`). It is frozen.
    """

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        dim = config.hidden_size
        self.patch_embeddings = ODTrackPatchEmbeddings(config)
        self.temporal_token = nn.Parameter(torch.zeros(1, 1, dim))  # the paper's T_empty (official cls_token)
        self.temporal_position_embeddings = nn.Parameter(torch.zeros(1, 1, dim))  # official cls_pos_embed
        self.template_position_embeddings = nn.Parameter(torch.zeros(1, config.template_feat_size**2, dim))
        self.search_position_embeddings = nn.Parameter(torch.zeros(1, config.search_feat_size**2, dim))
        self.pretrain_position_embeddings = nn.Parameter(
            torch.zeros(1, 1 + config.pretrain_grid_size**2, dim), requires_grad=False
        )

    def embed_templates(self, template_pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, s, s)`` template crops → ``(B, T * Nz, C)`` template tokens."""
        batch_size = template_pixel_values.shape[0]
        templates = self.patch_embeddings(template_pixel_values.flatten(0, 1))  # (B*T, Nz, C)
        return (templates + self.template_position_embeddings).reshape(batch_size, -1, templates.shape[-1])

    def embed_search(self, pixel_values: torch.Tensor, temporal_token: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, S, S)`` search crops and the previous token → ``(B, 1 + Nx, C)`` ``[token | search]``."""
        search = self.patch_embeddings(pixel_values) + self.search_position_embeddings  # (B, Nx, C)
        token = self.temporal_token.expand(search.shape[0], -1, -1)
        if temporal_token is not None:
            # T_{t+1} = LN(h_t[token]) + T_empty, plus the token's position embedding (reference §1.5)
            token = temporal_token.to(token.dtype) + token
        token = token + self.temporal_position_embeddings
        return torch.cat([token, search], dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor,
        temporal_token: torch.Tensor | None,
    ) -> torch.Tensor:
        token_and_search = self.embed_search(pixel_values, temporal_token)
        templates = self.embed_templates(template_pixel_values)
        return torch.cat([token_and_search[:, :1], templates, token_and_search[:, 1:]], dim=1)


# --------------------------------------------------------------------------------------------------
# Transformer block with candidate elimination
# --------------------------------------------------------------------------------------------------
def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, returning ``(output (B, N, heads, d), probabilities)``."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class ODTrackAttention(nn.Module):
    """Multi-head self-attention over ``[temporal token | templates | search]``.

    ``attn_type="concat"`` is full joint attention. ``"separate"`` (official ``vit.py``) runs three
    attentions with the same projections: templates → templates, search → templates + search, and
    the temporal token → every token.
    """

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.scaling = self.head_dim**-0.5
        self.attn_type = config.attn_type
        self.is_causal = False
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=config.qkv_bias)
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)

    def _attend(self, query, key, value, need_weights: bool):
        if need_weights:
            interface: Callable = eager_attention_forward
        else:
            interface = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        return interface(self, query, key, value, None, scaling=self.scaling, dropout=0.0)

    def _project(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        batch_size, seq_len, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).reshape(batch_size, seq_len, 3, self.num_heads, self.head_dim)
        return qkv.permute(2, 0, 3, 1, 4).unbind(0)  # (B, heads, L, d) each

    def forward_templates(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Separate attention of the template tokens ``(B, Nt, C)`` to themselves.

        Returns ``(output (B, Nt, C), keys, values)`` with keys and values ``(B, heads, Nt, d)``: what the
        temporal token and the search tokens attend to in this block.
        """
        query, key, value = self._project(hidden_states)
        output, _ = self._attend(query, key, value, False)
        return self.proj(output.reshape(hidden_states.shape)), key, value

    def forward(
        self,
        hidden_states: torch.Tensor,
        num_template_tokens: int,
        vote_rows: torch.Tensor | None = None,
        output_attentions: bool = False,
        template_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """Returns ``(output (B, L, C), attention probabilities or None, CE votes or None)``.

        ``vote_rows`` are the sequence indices of the template queries whose attention to the search
        tokens scores candidate elimination. The votes ``(B, heads, len(vote_rows), L)`` are the
        softmax probabilities of those rows, computed on their own so that the main attention can use
        any backend (sdpa) without materialising the full ``L x L`` matrix.

        ``template_key_value`` (separate attention only): the cached ``(keys, values)`` of the template
        tokens (see [`ODTrackAttention.forward_templates`]); ``hidden_states`` then holds only
        ``[temporal token | search]`` and so does the output.
        """
        batch_size, seq_len, dim = hidden_states.shape
        query, key, value = self._project(hidden_states)

        if template_key_value is not None:
            key_z, value_z = template_key_value
            # contiguous template+search keys for the search queries: sdpa is slower on a strided slice
            key_zx = torch.cat([key_z, key[:, :, 1:]], dim=2)
            value_zx = torch.cat([value_z, value[:, :, 1:]], dim=2)
            out_x, _ = self._attend(query[:, :, 1:], key_zx, value_zx, False)
            key = torch.cat([key[:, :, :1], key_zx], dim=2)
            value = torch.cat([value[:, :, :1], value_zx], dim=2)
            out_t, weights = self._attend(query[:, :, :1], key, value, output_attentions)
            output = torch.cat([out_t, out_x], dim=1)
        elif self.attn_type == "concat":
            output, weights = self._attend(query, key, value, output_attentions)
        else:
            split = [1, num_template_tokens, seq_len - 1 - num_template_tokens]
            q_t, q_z, q_x = query.split(split, dim=2)
            k_z, v_z = key[:, :, 1 : 1 + num_template_tokens], value[:, :, 1 : 1 + num_template_tokens]
            k_zx, v_zx = key[:, :, 1:], value[:, :, 1:]
            out_z, _ = self._attend(q_z, k_z, v_z, False)
            out_x, _ = self._attend(q_x, k_zx, v_zx, False)
            out_t, weights = self._attend(q_t, key, value, output_attentions)
            output = torch.cat([out_t, out_z, out_x], dim=1)

        votes = None
        if vote_rows is not None:
            if weights is not None and self.attn_type == "concat":
                votes = weights[:, :, vote_rows]
            else:
                scores = torch.matmul(query[:, :, vote_rows], key.transpose(2, 3)) * self.scaling
                votes = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        output = self.proj(output.reshape(batch_size, seq_len, dim))
        return output, (weights if output_attentions else None), votes


class ODTrackMLP(nn.Module):
    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (timm ``DropPath``)."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


def candidate_elimination(
    hidden_states: torch.Tensor,
    votes: torch.Tensor,
    search_index: torch.Tensor,
    keep_ratio: float,
    num_template_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Drop the search tokens the templates attend to least (OSTrack/ODTrack ``candidate_elimination``).

    Args:
        hidden_states: ``(B, 1 + Nt + Ns, C)`` tokens ``[temporal, templates, remaining search]``.
        votes: ``(B, heads, R, 1 + Nt + Ns)`` attention probabilities of the voting template rows.
        search_index: ``(B, Ns)`` raster index of each remaining search token.
        keep_ratio: fraction of the remaining search tokens to keep (``ceil``).
        num_template_tokens: ``Nt``.

    Returns:
        ``(hidden_states, search_index, removed_index)``: kept search tokens in descending score order
        (as the official code leaves them), their raster indices, and the removed raster indices
        (``None`` when nothing is removed).
    """
    num_search = search_index.shape[1]
    num_keep = math.ceil(keep_ratio * num_search)
    if num_keep == num_search:
        return hidden_states, search_index, None
    # mean over the voting template rows, then over heads, of their attention to each search token
    scores = votes[..., 1 + num_template_tokens :].mean(dim=2).mean(dim=1)  # (B, Ns)
    _, order = torch.sort(scores, dim=1, descending=True)
    keep, removed = order[:, :num_keep], order[:, num_keep:]
    head = hidden_states[:, : 1 + num_template_tokens]
    search = hidden_states[:, 1 + num_template_tokens :]
    kept_tokens = search.gather(1, keep.unsqueeze(-1).expand(-1, -1, search.shape[-1]))
    return torch.cat([head, kept_tokens], dim=1), search_index.gather(1, keep), search_index.gather(1, removed)


class ODTrackLayer(GradientCheckpointingLayer):
    """Pre-norm ViT block; a candidate-elimination block prunes search tokens between attention and MLP."""

    def __init__(self, config: ODTrackConfig, drop_path_rate: float, keep_ratio: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ODTrackAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ODTrackMLP(config)
        self.drop_path_rate = drop_path_rate
        self.keep_ratio = keep_ratio

    def effective_keep_ratio(self, keep_rate_override: float | None) -> float | None:
        """Keep ratio of this block, or ``None`` if it does not eliminate (official ``CEBlock`` rule)."""
        if self.keep_ratio >= 1.0:
            return None
        ratio = self.keep_ratio if keep_rate_override is None else keep_rate_override
        return ratio if ratio < 1.0 else None

    def forward(
        self,
        hidden_states: torch.Tensor,
        search_index: torch.Tensor,
        num_template_tokens: int,
        vote_rows: torch.Tensor | None = None,
        keep_ratio: float | None = None,
        output_attentions: bool = False,
        template_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        attn_out, weights, votes = self.attention(
            self.norm1(hidden_states),
            num_template_tokens,
            vote_rows=vote_rows if keep_ratio is not None else None,
            output_attentions=output_attentions,
            template_key_value=template_key_value,
        )
        hidden_states = hidden_states + drop_path(attn_out, self.drop_path_rate, self.training)
        removed = None
        if keep_ratio is not None:
            hidden_states, search_index, removed = candidate_elimination(
                hidden_states, votes, search_index, keep_ratio, num_template_tokens
            )
        hidden_states = hidden_states + drop_path(self.mlp(self.norm2(hidden_states)), self.drop_path_rate, self.training)
        return hidden_states, search_index, removed, weights

    def forward_templates(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This block on the template tokens alone (separate attention): ``(output, keys, values)``."""
        attn_out, key, value = self.attention.forward_templates(self.norm1(hidden_states))
        hidden_states = hidden_states + drop_path(attn_out, self.drop_path_rate, self.training)
        hidden_states = hidden_states + drop_path(self.mlp(self.norm2(hidden_states)), self.drop_path_rate, self.training)
        return hidden_states, key, value


class ODTrackEncoder(nn.Module):
    def __init__(self, config: ODTrackConfig):
        super().__init__()
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linspace(0, rate, depth)
        keep = dict(zip(config.ce_layers, config.ce_keep_ratios))
        self.layers = nn.ModuleList(
            ODTrackLayer(config, rates[i], keep.get(i, 1.0)) for i in range(config.num_hidden_layers)
        )


# --------------------------------------------------------------------------------------------------
# CENTER head
# --------------------------------------------------------------------------------------------------
class ODTrackConvBlock(nn.Module):
    """3x3 convolution + BatchNorm + ReLU (official ``conv()``)."""

    def __init__(self, in_channels: int, out_channels: int, eps: float):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x)))


class ODTrackHeadBranch(nn.Module):
    def __init__(self, config: ODTrackConfig, out_channels: int):
        super().__init__()
        channels = [config.hidden_size] + [config.head_channels // 2**k for k in range(4)]
        self.blocks = nn.ModuleList(
            ODTrackConvBlock(c_in, c_out, config.head_batch_norm_eps) for c_in, c_out in zip(channels, channels[1:])
        )
        self.output = nn.Conv2d(channels[-1], out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.output(x)


def decode_boxes(
    score_map: torch.Tensor, size_map: torch.Tensor, offset_map: torch.Tensor, response: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box ``(cx, cy, w, h)`` normalised to the crop at the peak of ``response`` (default: the score map).

    The peak is the first maximum in row-major order (official ``cal_bbox``); the centre is the cell
    index plus the predicted offset, divided by the map side. Returns ``(boxes (B, 4), scores (B,))``
    with the raw score at the peak.
    """
    batch_size, _, height, width = score_map.shape
    response = score_map if response is None else response
    _, idx = torch.max(response.flatten(1), dim=1, keepdim=True)  # (B, 1)
    idx_y = torch.div(idx, width, rounding_mode="floor")
    idx_x = idx % width
    gather = idx.unsqueeze(1).expand(batch_size, 2, 1)
    size = size_map.flatten(2).gather(2, gather).squeeze(-1)  # (B, 2)
    offset = offset_map.flatten(2).gather(2, gather).squeeze(-1)  # (B, 2)
    cx = (idx_x.to(offset.dtype) + offset[:, :1]) / width
    cy = (idx_y.to(offset.dtype) + offset[:, 1:]) / height
    scores = score_map.flatten(1).gather(1, idx).squeeze(1)
    return torch.cat([cx, cy, size], dim=1), scores


class ODTrackCenterHead(nn.Module):
    """CENTER head: score, size and offset branches over the token-weighted search features."""

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.score_branch = ODTrackHeadBranch(config, 1)
        self.offset_branch = ODTrackHeadBranch(config, 2)
        self.size_branch = ODTrackHeadBranch(config, 2)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # sigmoid and clamp in float32: in bf16, 1 - 1e-4 rounds to 1.0 and log(1 - p) in the focal
        # loss becomes infinite
        score_map = self.score_branch(features).float().sigmoid().clamp(SCORE_CLAMP, 1 - SCORE_CLAMP)
        size_map = self.size_branch(features).float().sigmoid().clamp(SCORE_CLAMP, 1 - SCORE_CLAMP)
        offset_map = self.offset_branch(features).float()
        return score_map, size_map, offset_map


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------
class ODTrackPreTrainedModel(PreTrainedModel):
    config: ODTrackConfig
    base_model_prefix = "odtrack"
    main_input_name = "pixel_values"
    input_modalities = ("image", "video")
    supports_gradient_checkpointing = True
    _no_split_modules = ["ODTrackEmbeddings", "ODTrackLayer"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            init.trunc_normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, ODTrackConvBlock):
            init.xavier_uniform_(module.conv.weight)
        elif isinstance(module, ODTrackHeadBranch):
            init.xavier_uniform_(module.output.weight)
        elif isinstance(module, ODTrackEmbeddings):
            for table in (
                module.temporal_token,
                module.template_position_embeddings,
                module.search_position_embeddings,
                module.pretrain_position_embeddings,
            ):
                init.trunc_normal_(table, mean=0.0, std=std)
            # official: cls_pos_embed is slot 0 of the pre-training table (zeros for MAE)
            init.zeros_(module.temporal_position_embeddings)
        else:
            super()._init_weights(module)


class ODTrackModel(ODTrackPreTrainedModel):
    """ODTrack backbone + CENTER head: crops and the previous temporal token in, boxes and token out."""

    def __init__(self, config: ODTrackConfig):
        super().__init__(config)
        self.embeddings = ODTrackEmbeddings(config)
        self.encoder = ODTrackEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = ODTrackCenterHead(config)
        self.post_init()

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """``PreTrainedModel.from_pretrained``; the pre-training position table stays frozen (loading
        re-creates parameters as trainable, and an unused trainable parameter breaks DDP)."""
        loaded = super().from_pretrained(*args, **kwargs)
        model = loaded[0] if isinstance(loaded, tuple) else loaded
        model.embeddings.pretrain_position_embeddings.requires_grad_(False)
        return loaded

    def ce_vote_rows(self, num_templates: int, device: torch.device) -> torch.Tensor | None:
        """Sequence rows of the template tokens that vote in candidate elimination.

        ``"ctr_point"``: the cell ``((f-1)//2, (f-1)//2)`` of each template grid of side ``f`` (official
        ``CTR_POINT``; the upper-left of the four central cells on even grids). ``"all"``: every
        template token. Offset by 1 for the temporal token at index 0.
        """
        side = self.config.template_feat_size
        per_template = side * side
        if self.config.ce_template_range == "ctr_point":
            centre = ((side - 1) // 2) * side + (side - 1) // 2
            rows = torch.arange(num_templates, device=device) * per_template + centre
        else:
            rows = torch.arange(num_templates * per_template, device=device)
        return rows + 1

    def resize_crop_sizes(self, template_size: int, search_size: int) -> None:
        """Re-derive the template and search position tables for new crop sizes from the pre-training
        table (official ``finetune_track``), e.g. before fine-tuning at another resolution."""
        self.config.template_size, self.config.search_size = template_size, search_size
        self.config.check_architecture()
        emb = self.embeddings
        source = emb.pretrain_position_embeddings.data[:, 1:]
        emb.template_position_embeddings = nn.Parameter(resample_position_embeddings(source, self.config.template_feat_size))
        emb.search_position_embeddings = nn.Parameter(resample_position_embeddings(source, self.config.search_feat_size))

    def encode_templates(self, template_pixel_values: torch.Tensor) -> ODTrackTemplateCache:
        """Run the template path of separate attention once, for reuse as ``template_cache=``.

        Args:
            template_pixel_values: normalised reference crops ``(B, T, 3, s, s)``.

        Raises:
            ValueError: for ``attn_type="concat"``, where template tokens attend to the search frame
                and the temporal token, so nothing about them can be cached.
        """
        if self.config.attn_type != "separate":
            raise ValueError(
                f"A template cache needs attn_type='separate' (this model has {self.config.attn_type!r}): with "
                "concat attention the template tokens attend to the search frame, so their keys and values "
                "change every frame. Call the model with template_pixel_values instead."
            )
        self._check_templates(template_pixel_values)
        hidden_states = self.embeddings.embed_templates(template_pixel_values)
        keys, values = [], []
        for layer in self.encoder.layers:
            hidden_states, key, value = layer.forward_templates(hidden_states)
            keys.append(key)
            values.append(value)
        num_templates = template_pixel_values.shape[1]
        return ODTrackTemplateCache(tuple(keys), tuple(values), hidden_states, num_templates)

    def _check_templates(self, template_pixel_values: torch.Tensor) -> None:
        cfg = self.config
        if template_pixel_values.ndim != 5 or template_pixel_values.shape[-2:] != (cfg.template_size, cfg.template_size):
            raise ValueError(
                f"template_pixel_values must have shape (B, T, 3, {cfg.template_size}, {cfg.template_size}), "
                f"got {tuple(template_pixel_values.shape)}; stack the reference crops on dim 1."
            )

    def _check_inputs(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor | None,
        template_cache: ODTrackTemplateCache | None,
    ) -> None:
        cfg = self.config
        if pixel_values.shape[-2:] != (cfg.search_size, cfg.search_size):
            raise ValueError(
                f"pixel_values must be search crops of {cfg.search_size}x{cfg.search_size} (config.search_size), "
                f"got shape {tuple(pixel_values.shape)}."
            )
        if (template_pixel_values is None) == (template_cache is None):
            raise ValueError(
                "Give either template_pixel_values or a template_cache from encode_templates (not both)."
            )
        if template_cache is not None:
            if cfg.attn_type != "separate":
                raise ValueError(f"template_cache needs attn_type='separate'; this model has {cfg.attn_type!r}.")
            template_batch = template_cache.batch_size
        else:
            self._check_templates(template_pixel_values)
            template_batch = template_pixel_values.shape[0]
        if template_batch != pixel_values.shape[0]:
            raise ValueError(
                f"Batch sizes differ: {pixel_values.shape[0]} search crops but {template_batch} template stacks."
            )

    def _forward_frame(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor | None,
        template_cache: ODTrackTemplateCache | None,
        temporal_token: torch.Tensor | None,
        ce_keep_rate: float | None,
        score_map_window: torch.Tensor | None,
        output_attentions: bool,
        output_hidden_states: bool,
    ) -> ODTrackOutput:
        cfg = self.config
        batch_size = pixel_values.shape[0]
        num_templates = template_pixel_values.shape[1] if template_cache is None else template_cache.num_templates
        num_template_tokens = num_templates * cfg.template_feat_size**2
        num_search = cfg.search_feat_size**2

        if template_cache is None:
            hidden_states = self.embeddings(pixel_values, template_pixel_values, temporal_token)
        else:
            # only [temporal token | search] go through the blocks; the templates come from the cache
            hidden_states = self.embeddings.embed_search(pixel_values, temporal_token)
        search_index = torch.arange(num_search, device=hidden_states.device).expand(batch_size, -1)
        vote_rows = self.ce_vote_rows(num_templates, hidden_states.device) if cfg.use_candidate_elimination else None
        all_hidden = (hidden_states,) if output_hidden_states else None
        all_attentions = () if output_attentions else None
        removed_indices = []
        for index, layer in enumerate(self.encoder.layers):
            hidden_states, search_index, removed, weights = layer(
                hidden_states,
                search_index,
                num_template_tokens,
                vote_rows,
                layer.effective_keep_ratio(ce_keep_rate),
                output_attentions,
                None if template_cache is None else (template_cache.keys[index], template_cache.values[index]),
            )
            if removed is not None:
                removed_indices.append(removed)
            if output_hidden_states:
                all_hidden += (hidden_states,)
            if output_attentions:
                all_attentions += (weights,)

        if template_cache is not None:
            hidden_states = torch.cat([hidden_states[:, :1], template_cache.hidden_states, hidden_states[:, 1:]], dim=1)
        hidden_states = self.layernorm(hidden_states)
        if removed_indices:
            # eliminated search tokens become zero rows; the kept ones go back to raster order
            kept = hidden_states[:, 1 + num_template_tokens :]
            search = kept.new_zeros(batch_size, num_search, kept.shape[-1])
            search = search.scatter(1, search_index.unsqueeze(-1).expand(-1, -1, kept.shape[-1]), kept)
            hidden_states = torch.cat([hidden_states[:, : 1 + num_template_tokens], search], dim=1)

        token = hidden_states[:, :1]
        search = hidden_states[:, -num_search:]  # (B, Nx, C)
        # every search feature is gated by its raw dot product with the temporal token (reference §1.11)
        gate = torch.matmul(search, token.transpose(1, 2))  # (B, Nx, 1)
        side = cfg.search_feat_size
        features = (search * gate).transpose(1, 2).reshape(batch_size, -1, side, side)
        score_map, size_map, offset_map = self.head(features)
        response = None if score_map_window is None else score_map * score_map_window
        pred_boxes, pred_scores = decode_boxes(score_map, size_map, offset_map, response)
        return ODTrackOutput(
            pred_boxes=pred_boxes,
            pred_scores=pred_scores,
            score_map=score_map,
            size_map=size_map,
            offset_map=offset_map,
            temporal_token=token.detach(),
            last_hidden_state=hidden_states,
            removed_search_indices=tuple(removed_indices) if removed_indices else None,
            hidden_states=all_hidden,
            attentions=all_attentions,
        )

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor | None = None,
        temporal_token: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        ce_keep_rate: float | None = None,
        score_map_window: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        template_cache: ODTrackTemplateCache | None = None,
        **kwargs,
    ) -> ODTrackOutput:
        r"""
        Args:
            pixel_values: normalised search crops, ``(B, 3, S, S)`` for one frame or ``(B, N, 3, S, S)`` for
                a training clip of N consecutive search frames. A clip starts from ``temporal_token``
                (``None`` = a new sequence) and carries the token from frame to frame inside the call,
                so clips never share a token.
            template_pixel_values: normalised reference crops ``(B, T, 3, s, s)``; T may change between calls.
            temporal_token: ``(B, 1, C)`` the previous frame's ``outputs.temporal_token``, or ``None`` at
                the start of a sequence.
            labels: ground-truth boxes ``(x1, y1, x2, y2)`` normalised to the search crop, ``(B, 4)``
                or ``(B, N, 4)`` for a clip; when given, ``loss`` is computed.
            ce_keep_rate: overrides the keep ratio of every candidate-elimination block (the training
                warm-up schedule); ``None`` uses ``config.ce_keep_ratios``.
            score_map_window: ``(H, W)`` weights multiplied onto the score map to choose the peak (the
                tracker's Hann window); the returned ``score_map`` stays unweighted.
            template_cache: instead of ``template_pixel_values`` (separate attention only): the
                [`ODTrackTemplateCache`] of [`ODTrackModel.encode_templates`] for these templates. The
                outputs equal those of the uncached call; ``hidden_states`` cannot be returned, as the
                cache keeps only the templates' last hidden states.
        """
        output_attentions = self.config.output_attentions if output_attentions is None else output_attentions
        output_hidden_states = self.config.output_hidden_states if output_hidden_states is None else output_hidden_states
        propagate = self.config.propagate_temporal_token
        if not propagate:  # "w/o Token" ablation: every frame starts from the empty token
            temporal_token = None
        if template_cache is not None and output_hidden_states:
            raise ValueError(
                "output_hidden_states needs every block's template states, which a template cache does not keep; "
                "pass template_pixel_values instead."
            )
        if pixel_values.ndim == 4:
            self._check_inputs(pixel_values, template_pixel_values, template_cache)
            outputs = self._forward_frame(
                pixel_values,
                template_pixel_values,
                template_cache,
                temporal_token,
                ce_keep_rate,
                score_map_window,
                output_attentions,
                output_hidden_states,
            )
        elif pixel_values.ndim == 5:
            if output_attentions or output_hidden_states:
                raise ValueError(
                    "output_attentions / output_hidden_states are per frame: call the model one search frame "
                    "at a time (passing temporal_token along) to inspect them."
                )
            self._check_inputs(pixel_values[:, 0], template_pixel_values, template_cache)
            frames = []
            for index in range(pixel_values.shape[1]):
                frame = self._forward_frame(
                    pixel_values[:, index],
                    template_pixel_values,
                    template_cache,
                    temporal_token,
                    ce_keep_rate,
                    score_map_window,
                    False,
                    False,
                )
                temporal_token = frame.temporal_token if propagate else None
                frames.append(frame)
            outputs = _stack_frames(frames)
        else:
            raise ValueError(
                "pixel_values must be (B, 3, S, S) for one search frame or (B, N, 3, S, S) for a clip, "
                f"got shape {tuple(pixel_values.shape)}."
            )
        if labels is not None:
            from .loss_odtrack import ODTrackLoss

            outputs.loss = ODTrackLoss(self.config)(outputs, labels)
        return outputs


def _stack_frames(frames: list[ODTrackOutput]) -> ODTrackOutput:
    """Stack per-frame outputs along a new frame axis at dim 1."""
    stacked = {}
    for name in ("pred_boxes", "pred_scores", "score_map", "size_map", "offset_map", "temporal_token", "last_hidden_state"):
        stacked[name] = torch.stack([getattr(frame, name) for frame in frames], dim=1)
    if frames[0].removed_search_indices is not None:
        stacked["removed_search_indices"] = tuple(
            torch.stack(per_layer, dim=1) for per_layer in zip(*(frame.removed_search_indices for frame in frames))
        )
    return ODTrackOutput(**stacked)


__all__ = ["ODTrackModel", "ODTrackOutput", "ODTrackPreTrainedModel", "ODTrackTemplateCache", "decode_boxes"]
