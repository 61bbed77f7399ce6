"""ODTrack: a one-stream ViT tracker with a temporal token (AAAI 2024), as a transformers model.

The model is a pure tensor function of one frame. One call takes the search crop of the current
frame, the template (reference-frame) crops and the temporal token of the previous frame, and returns
the CENTER-head maps, the box decoded at the peak of the score map (in crop coordinates) and the
temporal token for the next frame. Nothing is stored on the module between calls: tracking state
lives in the inference session, the tracker's windowed choice of the peak in the image processor's
post-processing, and the frame loop of a training clip in the training loop.
"""

import difflib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import stochastic_depth
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.processing_utils import Unpack
from transformers.utils import ModelOutput, TransformersKwargs, auto_docstring
from transformers.utils.generic import merge_with_config_defaults
from transformers.utils.output_capturing import capture_outputs

from .box_decoding import boxes_at_peak, decode_box_map
from .configuration_odtrack import ODTrackConfig
from .loss_odtrack import ODTrackLoss

SCORE_CLAMP = 1e-4  # the official sigmoid clamp: [1e-4, 1 - 1e-4]
# the keyword arguments forward passes down to the layers and the attention functions
FORWARD_KWARGS = frozenset(TransformersKwargs.__required_keys__ | TransformersKwargs.__optional_keys__)


@dataclass
class ODTrackOutput(ModelOutput):
    r"""
    Output of [`ODTrackModel`] for one search frame, with `height = width = search_size / patch_size` and
    `seq_len = 1 + num_templates * (template_size / patch_size) ** 2 + height * width`.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*):
            Training loss of this frame (only when `labels` are given).
        pred_boxes (`torch.FloatTensor` of shape `(batch_size, 4)`):
            Box `(cx, cy, w, h)` normalised to the search crop, decoded at the peak of the raw score map (the
            tracker re-picks the peak with its window, see [`ODTrackImageProcessor.post_process_object_tracking`]).
        pred_scores (`torch.FloatTensor` of shape `(batch_size,)`):
            Score-map value at that peak.
        score_map (`torch.FloatTensor` of shape `(batch_size, 1, height, width)`):
            Centre score, sigmoid clamped to `[1e-4, 1 - 1e-4]`.
        size_map (`torch.FloatTensor` of shape `(batch_size, 2, height, width)`):
            Box width and height as fractions of the crop side.
        offset_map (`torch.FloatTensor` of shape `(batch_size, 2, height, width)`):
            Sub-cell x and y offsets of the centre, in cells.
        box_map (`torch.FloatTensor` of shape `(batch_size, 4, height, width)`):
            The box `(cx, cy, w, h)` each cell decodes to; `pred_boxes` is its column at the peak.
        temporal_token (`torch.FloatTensor` of shape `(batch_size, 1, hidden_size)`):
            Detached output token, to be passed as `temporal_token` with the next frame of the same sequence.
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, seq_len, hidden_size)`):
            Backbone output after the final LayerNorm, ordered `[temporal token, template 0, ..., template T-1,
            search (raster order)]`; search tokens removed by candidate elimination are rows of zeros.
        removed_search_indices (`tuple(torch.LongTensor)`, *optional*):
            One `(batch_size, n_k)` tensor per eliminating block: raster indices of the search tokens that block
            removed; `None` when nothing was removed.
        search_indices (`tuple(torch.LongTensor)`, *optional*):
            With `output_hidden_states` or `output_attentions`: per entry of `hidden_states` (embeddings, then
            every block), `(batch_size, n_i)` raster indices of its search tokens (the last `n_i` rows) in sequence
            order. Block `i` attends over the tokens of `hidden_states[i]`, so these also name the search columns
            of `attentions[i]`.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*):
            Embeddings and the output of every block (before the final LayerNorm); with candidate elimination the
            sequence shrinks and kept search tokens are in score order.
        attentions (`tuple(torch.FloatTensor)`, *optional*):
            Attention probabilities of every block, `(batch_size, num_heads, seq_len_i, seq_len_i)`; with separate
            attention the pairs that do not attend to each other are zeros.
    """

    loss: torch.Tensor | None = None
    pred_boxes: torch.Tensor | None = None
    pred_scores: torch.Tensor | None = None
    score_map: torch.Tensor | None = None
    size_map: torch.Tensor | None = None
    offset_map: torch.Tensor | None = None
    box_map: torch.Tensor | None = None
    temporal_token: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None
    removed_search_indices: tuple[torch.Tensor, ...] | None = None
    search_indices: tuple[torch.Tensor, ...] | None = None
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


def check_crops(
    config: ODTrackConfig,
    pixel_values: torch.Tensor,
    template_pixel_values: torch.Tensor | None = None,
    template_batch_size: int | None = None,
) -> None:
    """Raise a ``ValueError`` naming the expected layout unless the crops fit a model with ``config``.

    Args:
        pixel_values: search crops, expected ``(B, C, S, S)`` with ``C = config.num_channels`` and
            ``S = config.search_size``.
        template_pixel_values: template crops, expected ``(B, T, C, s, s)`` with ``s = config.template_size``;
            ``None`` when the templates come from elsewhere (a template cache).
        template_batch_size: the batch size of those other templates, checked against ``B``.
    """
    channels, size, template_size = config.num_channels, config.search_size, config.template_size
    if pixel_values.ndim != 4 or pixel_values.shape[1:] != (channels, size, size):
        raise ValueError(
            f"pixel_values must be search crops of shape (B, {channels}, {size}, {size}), got "
            f"{tuple(pixel_values.shape)}; crop one frame with the model's processor (mode='search', "
            f"search_size={size}) and call the model once per frame."
        )
    if template_pixel_values is not None:
        expected = (channels, template_size, template_size)
        if template_pixel_values.ndim != 5 or template_pixel_values.shape[2:] != expected:
            raise ValueError(
                f"template_pixel_values must have shape (B, T, {channels}, {template_size}, {template_size}), got "
                f"{tuple(template_pixel_values.shape)}; stack the reference crops of each sample on dim 1."
            )
        template_batch_size = template_pixel_values.shape[0]
    if template_batch_size is not None and template_batch_size != pixel_values.shape[0]:
        raise ValueError(
            f"Batch sizes differ: {pixel_values.shape[0]} search crops but {template_batch_size} template stacks; "
            "give every search crop its own templates."
        )


def check_forward_kwargs(kwargs: dict, forward: Callable) -> None:
    """Raise a ``TypeError`` for keyword arguments that ``forward`` neither names nor passes down (e.g. a
    misspelt ``temporal_token``), which would otherwise be dropped without a word."""
    unknown = sorted(set(kwargs) - FORWARD_KWARGS)
    if unknown:
        name = unknown[0]
        signature = tuple(p for p in inspect.signature(forward).parameters if p not in ("self", "kwargs"))
        close = difflib.get_close_matches(name, [*signature, *sorted(FORWARD_KWARGS)], n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(signature)}."
        raise TypeError(f"ODTrackModel.forward() got an unexpected keyword argument {name!r}; {hint}")


# --------------------------------------------------------------------------------------------------
# Embeddings
# --------------------------------------------------------------------------------------------------
class ODTrackPatchEmbeddings(nn.Module):
    """Non-overlapping ``patch_size`` patches → tokens in row-major order."""

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.projection = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
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

    ``temporal_token`` is the learned empty token (the paper's ``T_empty``, official ``cls_token``) that
    every frame's token starts from; the token carried from the previous frame is added to it.

    ``pretrain_position_embeddings`` is a buffer: the ``(1, 1 + G*G, C)`` table of the pre-trained ViT
    (official ``pos_embed``). Forward never reads it: it is the source from which the template and
    search tables are derived (MAE initialisation, :meth:`ODTrackModel.resize_crop_sizes`).
    """

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        dim = config.hidden_size
        self.patch_embeddings = ODTrackPatchEmbeddings(config)
        self.temporal_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.temporal_position_embeddings = nn.Parameter(torch.zeros(1, 1, dim))  # official cls_pos_embed
        self.template_position_embeddings = nn.Parameter(torch.zeros(1, config.template_feat_size**2, dim))
        self.search_position_embeddings = nn.Parameter(torch.zeros(1, config.search_feat_size**2, dim))
        self.register_buffer("pretrain_position_embeddings", torch.zeros(1, 1 + config.pretrain_grid_size**2, dim))

    def embed_templates(self, template_pixel_values: torch.Tensor) -> torch.Tensor:
        """``(B, T, 3, s, s)`` template crops → ``(B, T * Nz, C)`` template tokens."""
        batch_size = template_pixel_values.shape[0]
        templates = self.patch_embeddings(template_pixel_values.flatten(0, 1))  # (B*T, Nz, C)
        return (templates + self.template_position_embeddings).reshape(batch_size, -1, templates.shape[-1])

    def embed_search(self, pixel_values: torch.Tensor, previous_token: torch.Tensor | None) -> torch.Tensor:
        """``(B, 3, S, S)`` search crops and the previous frame's token → ``(B, 1 + Nx, C)`` ``[token | search]``."""
        search = self.patch_embeddings(pixel_values) + self.search_position_embeddings  # (B, Nx, C)
        token = self.temporal_token.expand(search.shape[0], -1, -1)
        if previous_token is not None:
            # T_{t+1} = LN(h_t[token]) + T_empty, plus the token's position embedding
            # (docs/official-implementation.md, "Temporal token")
            token = previous_token.to(token.dtype) + token
        token = token + self.temporal_position_embeddings
        return torch.cat([token, search], dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor,
        previous_token: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The input sequence ``[temporal token | templates | search]``, ``(B, 1 + T * Nz + Nx, C)``."""
        token_and_search = self.embed_search(pixel_values, previous_token)
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
    **kwargs: Unpack[TransformersKwargs],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention written out, returning ``(output (B, N, heads, d), probabilities)``."""
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = F.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = F.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class ODTrackAttentionOutput(NamedTuple):
    """What [`ODTrackAttention`] returns.

    Attributes:
        hidden_states: ``(B, L, C)`` attention output after the projection.
        attentions: ``(B, heads, L, L)`` probabilities with ``output_attentions``, else ``None``.
        votes: ``(B, heads, R, L)`` probabilities of the ``R`` voting template rows when ``vote_rows``
            were given, else ``None``.
    """

    hidden_states: torch.Tensor
    attentions: torch.Tensor | None = None
    votes: torch.Tensor | None = None


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

    def _attend(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        need_weights: bool,
        **kwargs: Unpack[TransformersKwargs],
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # probabilities exist only in the written-out softmax; the fused kernels never materialise them
        implementation = "eager" if need_weights else self.config._attn_implementation
        interface = ALL_ATTENTION_FUNCTIONS.get_interface(implementation, eager_attention_forward)
        return interface(self, query, key, value, None, scaling=self.scaling, dropout=0.0, **kwargs)

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
        *,
        num_template_tokens: int,
        vote_rows: torch.Tensor | None = None,
        template_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ODTrackAttentionOutput:
        """Attention over ``hidden_states`` ``(B, L, C)`` ordered ``[token | templates | search]``.

        ``vote_rows`` are the sequence indices of the template queries whose attention to the search
        tokens scores candidate elimination. Their probabilities are computed on their own so that the
        main attention can use any backend (sdpa) without materialising the full ``L x L`` matrix.

        ``template_key_value`` (separate attention only): the cached ``(keys, values)`` of the template
        tokens (see [`ODTrackAttention.forward_templates`]); ``hidden_states`` then holds only
        ``[temporal token | search]`` and so does the output.

        With ``output_attentions=True`` the probabilities come from the written-out softmax, whatever
        the configured attention implementation.
        """
        batch_size, seq_len, dim = hidden_states.shape
        need_weights = bool(kwargs.get("output_attentions"))
        query, key, value = self._project(hidden_states)

        weights = None
        if template_key_value is not None:
            key_z, value_z = template_key_value
            # contiguous template+search keys for the search queries: sdpa is slower on a strided slice
            key_zx = torch.cat([key_z, key[:, :, 1:]], dim=2)
            value_zx = torch.cat([value_z, value[:, :, 1:]], dim=2)
            out_x, _ = self._attend(query[:, :, 1:], key_zx, value_zx, False, **kwargs)
            key = torch.cat([key[:, :, :1], key_zx], dim=2)
            value = torch.cat([value[:, :, :1], value_zx], dim=2)
            out_t, _ = self._attend(query[:, :, :1], key, value, False, **kwargs)
            output = torch.cat([out_t, out_x], dim=1)
        elif self.attn_type == "concat":
            output, weights = self._attend(query, key, value, need_weights, **kwargs)
        else:
            split = [1, num_template_tokens, seq_len - 1 - num_template_tokens]
            q_t, q_z, q_x = query.split(split, dim=2)
            k_z, v_z = key[:, :, 1 : 1 + num_template_tokens], value[:, :, 1 : 1 + num_template_tokens]
            k_zx, v_zx = key[:, :, 1:], value[:, :, 1:]
            out_z, weights_z = self._attend(q_z, k_z, v_z, need_weights, **kwargs)
            out_x, weights_x = self._attend(q_x, k_zx, v_zx, need_weights, **kwargs)
            out_t, weights_t = self._attend(q_t, key, value, need_weights, **kwargs)
            output = torch.cat([out_t, out_z, out_x], dim=1)
            if need_weights:
                # the full (L, L) matrix, zero where separate attention blocks a pair
                weights = weights_t.new_zeros(batch_size, self.num_heads, seq_len, seq_len)
                weights[:, :, :1] = weights_t
                weights[:, :, 1 : 1 + num_template_tokens, 1 : 1 + num_template_tokens] = weights_z
                weights[:, :, 1 + num_template_tokens :, 1:] = weights_x

        votes = None
        if vote_rows is not None:
            if weights is not None and self.attn_type == "concat":
                votes = weights[:, :, vote_rows]
            else:
                scores = torch.matmul(query[:, :, vote_rows], key.transpose(2, 3)) * self.scaling
                votes = F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
        output = self.proj(output.reshape(batch_size, seq_len, dim))
        return ODTrackAttentionOutput(output, weights, votes)


class ODTrackMLP(nn.Module):
    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.act = ACT2FN[config.hidden_act]
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(hidden_states)))


def candidate_elimination(
    hidden_states: torch.Tensor,
    votes: torch.Tensor,
    search_index: torch.Tensor,
    keep_ratio: float,
    num_template_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Drop the search tokens the templates attend to least (OSTrack/ODTrack ``candidate_elimination``;
    docs/official-implementation.md, "Attention and candidate elimination").

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


class ODTrackLayerOutput(NamedTuple):
    """What [`ODTrackLayer`] returns.

    Attributes:
        hidden_states: ``(B, L', C)`` the block's output (``L' < L`` when it eliminated search tokens).
        search_index: ``(B, n')`` raster index of each search token left in ``hidden_states``.
        removed_search_index: ``(B, n - n')`` raster indices this block removed, or ``None``.
    """

    hidden_states: torch.Tensor
    search_index: torch.Tensor
    removed_search_index: torch.Tensor | None = None


class ODTrackLayer(GradientCheckpointingLayer):
    """Pre-norm ViT block; a candidate-elimination block prunes search tokens between attention and MLP."""

    def __init__(self, config: ODTrackConfig, drop_path_rate: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = ODTrackAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = ODTrackMLP(config)
        self.drop_path_rate = drop_path_rate

    def _residual(self, branch: torch.Tensor) -> torch.Tensor:
        # stochastic depth per sample (timm DropPath); the identity in eval mode
        return stochastic_depth(branch, self.drop_path_rate, "row", self.training)

    def forward(
        self,
        hidden_states: torch.Tensor,
        search_index: torch.Tensor,
        *,
        num_template_tokens: int,
        keep_ratio: float | None = None,
        vote_rows: torch.Tensor | None = None,
        template_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ODTrackLayerOutput:
        """One block over ``hidden_states`` ``(B, L, C)``, whose search tokens have raster indices ``search_index``.

        ``keep_ratio``: fraction of search tokens this block keeps (``None``: it eliminates none);
        ``vote_rows``: the template rows that vote (see [`ODTrackModel.ce_vote_rows`]);
        ``template_key_value``: this block's cached template keys and values (see [`ODTrackTemplateCache`]).
        """
        attention = self.attention(
            self.norm1(hidden_states),
            num_template_tokens=num_template_tokens,
            vote_rows=vote_rows if keep_ratio is not None else None,
            template_key_value=template_key_value,
            **kwargs,
        )
        hidden_states = hidden_states + self._residual(attention.hidden_states)
        removed = None
        if keep_ratio is not None:
            hidden_states, search_index, removed = candidate_elimination(
                hidden_states, attention.votes, search_index, keep_ratio, num_template_tokens
            )
        hidden_states = hidden_states + self._residual(self.mlp(self.norm2(hidden_states)))
        return ODTrackLayerOutput(hidden_states, search_index, removed)

    def forward_templates(self, hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """This block on the template tokens alone (separate attention): ``(output, keys, values)``."""
        attn_out, key, value = self.attention.forward_templates(self.norm1(hidden_states))
        hidden_states = hidden_states + self._residual(attn_out)
        hidden_states = hidden_states + self._residual(self.mlp(self.norm2(hidden_states)))
        return hidden_states, key, value


class ODTrackEncoderOutput(NamedTuple):
    """What [`ODTrackEncoder`] returns.

    Attributes:
        last_hidden_state: ``(B, L', C)`` output of the last block (before the final LayerNorm), kept
            search tokens in score order.
        search_indices: ``(B, n_i)`` raster indices of the search tokens entering each block, then those
            leaving the last one (``num_hidden_layers + 1`` entries).
        removed_search_indices: per eliminating block, the ``(B, n_k)`` raster indices it removed.
    """

    last_hidden_state: torch.Tensor
    search_indices: tuple[torch.Tensor, ...]
    removed_search_indices: tuple[torch.Tensor, ...]


class ODTrackEncoder(nn.Module):
    """The ViT blocks, with candidate elimination in ``config.ce_layers``."""

    def __init__(self, config: ODTrackConfig):
        super().__init__()
        self.config = config
        depth = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]  # linspace(0, rate, depth)
        self.layers = nn.ModuleList(ODTrackLayer(config, rate) for rate in rates)

    def keep_ratios(self, ce_keep_ratios: tuple[float, ...] | list[float] | None = None) -> list[float | None]:
        """Per block, the fraction of search tokens it keeps, or ``None`` where it eliminates none.

        ``ce_keep_ratios`` (one per block of ``config.ce_layers``, default ``config.ce_keep_ratios``)
        override the configured ratios, e.g. with the training warm-up schedule. As in the official
        ``CEBlock``, a block configured to keep everything never eliminates, and a ratio of 1 turns
        elimination off.
        """
        config = self.config
        ratios = config.ce_keep_ratios if ce_keep_ratios is None else list(ce_keep_ratios)
        if len(ratios) != len(config.ce_layers):
            raise ValueError(
                f"ce_keep_ratios needs one ratio per candidate-elimination block ({len(config.ce_layers)} for "
                f"ce_layers={list(config.ce_layers)}), got {len(ratios)}: {ratios}."
            )
        configured = dict(zip(config.ce_layers, config.ce_keep_ratios))
        chosen = dict(zip(config.ce_layers, ratios))
        return [
            chosen[index] if configured.get(index, 1.0) < 1.0 and chosen[index] < 1.0 else None
            for index in range(config.num_hidden_layers)
        ]

    def forward(
        self,
        hidden_states: torch.Tensor,
        *,
        num_template_tokens: int,
        vote_rows: torch.Tensor | None = None,
        ce_keep_ratios: tuple[float, ...] | list[float] | None = None,
        template_cache: ODTrackTemplateCache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ODTrackEncoderOutput:
        """Run every block over ``[token | templates | search]`` (``[token | search]`` with a ``template_cache``)."""
        batch_size = hidden_states.shape[0]
        num_search = self.config.search_feat_size**2
        search_index = torch.arange(num_search, device=hidden_states.device).expand(batch_size, -1)
        search_indices, removed = [search_index], []
        for index, (layer, keep_ratio) in enumerate(zip(self.layers, self.keep_ratios(ce_keep_ratios))):
            outputs = layer(
                hidden_states,
                search_index,
                num_template_tokens=num_template_tokens,
                keep_ratio=keep_ratio,
                vote_rows=vote_rows,
                template_key_value=None
                if template_cache is None
                else (template_cache.keys[index], template_cache.values[index]),
                **kwargs,
            )
            hidden_states, search_index = outputs.hidden_states, outputs.search_index
            search_indices.append(search_index)
            if outputs.removed_search_index is not None:
                removed.append(outputs.removed_search_index)
        return ODTrackEncoderOutput(hidden_states, tuple(search_indices), tuple(removed))


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
    _input_embed_layer = "patch_embeddings"  # under self.embeddings
    _can_record_outputs = {"hidden_states": ODTrackLayer, "attentions": ODTrackAttention}

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
    """ODTrack backbone + CENTER head: one frame's crops and the previous temporal token in, boxes and token out."""

    def __init__(self, config: ODTrackConfig):
        super().__init__(config)
        self.embeddings = ODTrackEmbeddings(config)
        self.encoder = ODTrackEncoder(config)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.head = ODTrackCenterHead(config)
        self.post_init()

    def ce_vote_rows(self, num_templates: int, device: torch.device) -> torch.Tensor:
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

    def resize_crop_sizes(self, template_size: int, search_size: int, from_trained: bool = False) -> None:
        """Re-derive the template and search position tables for new crop sizes, e.g. before fine-tuning
        at another resolution: from the pre-training table (official ``finetune_track``), or with
        ``from_trained=True`` by resampling the model's own template and search tables, which keeps what
        tracking training taught them."""
        emb = self.embeddings
        pretrain = emb.pretrain_position_embeddings[:, 1:]
        trained = (emb.template_position_embeddings, emb.search_position_embeddings)
        sources = trained if from_trained else (pretrain, pretrain)
        self.config.template_size, self.config.search_size = template_size, search_size
        self.config.check_architecture()
        template_table = resample_position_embeddings(sources[0].data, self.config.template_feat_size)
        search_table = resample_position_embeddings(sources[1].data, self.config.search_feat_size)
        emb.template_position_embeddings = nn.Parameter(template_table)
        emb.search_position_embeddings = nn.Parameter(search_table)

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
        search_size = self.config.search_size
        check_crops(
            self.config,
            template_pixel_values.new_empty(template_pixel_values.shape[0], 3, search_size, search_size),
            template_pixel_values,
        )
        hidden_states = self.embeddings.embed_templates(template_pixel_values)
        keys, values = [], []
        for layer in self.encoder.layers:
            hidden_states, key, value = layer.forward_templates(hidden_states)
            keys.append(key)
            values.append(value)
        num_templates = template_pixel_values.shape[1]
        return ODTrackTemplateCache(tuple(keys), tuple(values), hidden_states, num_templates)

    def _requested(self, name: str, kwargs: dict) -> bool:
        """Whether ``output_attentions`` / ``output_hidden_states`` is on (argument first, then config)."""
        value = kwargs.get(name)
        return bool(getattr(self.config, name, False) if value is None else value)

    @merge_with_config_defaults
    @capture_outputs(tie_last_hidden_states=False)
    @auto_docstring
    def forward(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor | None = None,
        temporal_token: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        ce_keep_ratios: tuple[float, ...] | list[float] | None = None,
        template_cache: ODTrackTemplateCache | None = None,
        **kwargs: Unpack[TransformersKwargs],
    ) -> ODTrackOutput:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, search_size, search_size)`):
            Normalised search crops, one frame per sample. A training clip is run one frame at a time, passing
            `temporal_token` along (see `odtrack_hf.training.forward_clip`).
        template_pixel_values (`torch.FloatTensor` of shape `(batch_size, num_templates, 3, template_size, template_size)`, *optional*):
            Normalised reference crops; `num_templates` may change between calls.
        temporal_token (`torch.FloatTensor` of shape `(batch_size, 1, hidden_size)`, *optional*):
            The previous frame's `outputs.temporal_token`, or `None` at the start of a sequence (ignored when
            `config.propagate_temporal_token` is off).
        labels (`torch.FloatTensor` of shape `(batch_size, 4)`, *optional*):
            Ground-truth boxes `(x1, y1, x2, y2)` normalised to the search crop; when given, `loss` is computed.
        ce_keep_ratios (`list[float]`, *optional*):
            One keep ratio per candidate-elimination block, overriding `config.ce_keep_ratios` (the training
            warm-up schedule).
        template_cache ([`ODTrackTemplateCache`], *optional*):
            Instead of `template_pixel_values` (separate attention only): the cache of
            [`ODTrackModel.encode_templates`] for these templates. The outputs equal those of the uncached call;
            `hidden_states` and `attentions` cannot be returned, as the cache keeps only the templates' last
            hidden states.

        Keyword arguments other than these and [`~utils.TransformersKwargs`] (`output_attentions`,
        `output_hidden_states`, ..., passed down to the attention) raise a `TypeError`.
        """
        check_forward_kwargs(kwargs, ODTrackModel.forward)
        cfg = self.config
        if template_cache is not None and (
            self._requested("output_hidden_states", kwargs) or self._requested("output_attentions", kwargs)
        ):
            raise ValueError(
                "output_hidden_states and output_attentions need every block's template states, which a template "
                "cache does not keep; pass template_pixel_values instead."
            )
        if (template_pixel_values is None) == (template_cache is None):
            raise ValueError("Give either template_pixel_values or a template_cache from encode_templates (not both).")
        if template_cache is not None and cfg.attn_type != "separate":
            raise ValueError(f"template_cache needs attn_type='separate'; this model has {cfg.attn_type!r}.")
        check_crops(cfg, pixel_values, template_pixel_values, None if template_cache is None else template_cache.batch_size)
        if not cfg.propagate_temporal_token:  # "w/o Token" ablation: every frame starts from the empty token
            temporal_token = None

        batch_size = pixel_values.shape[0]
        num_templates = template_pixel_values.shape[1] if template_cache is None else template_cache.num_templates
        num_template_tokens = num_templates * cfg.template_feat_size**2
        num_search = cfg.search_feat_size**2
        if template_cache is None:
            hidden_states = self.embeddings(pixel_values, template_pixel_values, temporal_token)
        else:
            # only [temporal token | search] go through the blocks; the templates come from the cache
            hidden_states = self.embeddings.embed_search(pixel_values, temporal_token)
        vote_rows = self.ce_vote_rows(num_templates, hidden_states.device) if cfg.use_candidate_elimination else None
        encoded = self.encoder(
            hidden_states,
            num_template_tokens=num_template_tokens,
            vote_rows=vote_rows,
            ce_keep_ratios=ce_keep_ratios,
            template_cache=template_cache,
            **kwargs,
        )

        hidden_states = encoded.last_hidden_state
        if template_cache is not None:
            hidden_states = torch.cat([hidden_states[:, :1], template_cache.hidden_states, hidden_states[:, 1:]], dim=1)
        hidden_states = self.layernorm(hidden_states)
        if encoded.removed_search_indices:
            # eliminated search tokens become zero rows; the kept ones go back to raster order
            kept = hidden_states[:, 1 + num_template_tokens :]
            search_index = encoded.search_indices[-1]
            search = kept.new_zeros(batch_size, num_search, kept.shape[-1])
            search = search.scatter(1, search_index.unsqueeze(-1).expand(-1, -1, kept.shape[-1]), kept)
            hidden_states = torch.cat([hidden_states[:, : 1 + num_template_tokens], search], dim=1)

        token = hidden_states[:, :1]
        search = hidden_states[:, -num_search:]  # (B, Nx, C)
        # every search feature is gated by its raw dot product with the temporal token
        # (docs/official-implementation.md, "Head and box decoding")
        gate = torch.matmul(search, token.transpose(1, 2))  # (B, Nx, 1)
        side = cfg.search_feat_size
        features = (search * gate).transpose(1, 2).reshape(batch_size, -1, side, side)
        score_map, size_map, offset_map = self.head(features)
        box_map = decode_box_map(size_map, offset_map)
        pred_boxes, pred_scores = boxes_at_peak(score_map, box_map)
        recorded = self._requested("output_attentions", kwargs) or self._requested("output_hidden_states", kwargs)
        outputs = ODTrackOutput(
            pred_boxes=pred_boxes,
            pred_scores=pred_scores,
            score_map=score_map,
            size_map=size_map,
            offset_map=offset_map,
            box_map=box_map,
            temporal_token=token.detach(),
            last_hidden_state=hidden_states,
            removed_search_indices=encoded.removed_search_indices or None,
            search_indices=encoded.search_indices if recorded else None,
        )
        if labels is not None:
            outputs.loss = ODTrackLoss(cfg)(outputs, labels)
        return outputs


__all__ = [
    "ODTrackModel",
    "ODTrackOutput",
    "ODTrackPreTrainedModel",
    "ODTrackTemplateCache",
    "check_crops",
]
