"""Configuration of the ODTrack one-stream ViT tracker (AAAI 2024)."""


import math

from huggingface_hub.dataclasses import strict
from transformers import PreTrainedConfig

ATTENTION_TYPES = ("concat", "separate")
CE_TEMPLATE_RANGES = ("ctr_point", "all")


@strict
class ODTrackConfig(PreTrainedConfig):
    r"""Every hyper-parameter of the official ODTrack model, with ODTrack-B (``baseline.yaml``) defaults.

    Args:
        hidden_size: width ``C`` of the ViT backbone.
        num_hidden_layers: number of transformer blocks.
        num_attention_heads: attention heads per block (``hidden_size`` must be divisible by it).
        mlp_ratio: MLP hidden width as a multiple of ``hidden_size``.
        qkv_bias: whether the fused q/k/v projection has a bias.
        hidden_act: MLP activation; the official model uses exact (erf) GELU.
        layer_norm_eps: epsilon of every LayerNorm in the backbone.
        patch_size: side of the square patches (kernel = stride of the patch embedding).
        num_channels: input channels.
        pretrain_image_size: image size of the pre-training position table (224 for MAE ViT-B/L with
            patch 16). The official checkpoints keep this table; the template and search tables are
            derived from it (docs/official-implementation.md, "Embeddings and positions").
        template_size: side in pixels of a template (reference frame) crop.
        template_factor: template crop side = ``sqrt(w*h) * template_factor`` of the target box.
        search_size: side in pixels of the search crop.
        search_factor: search crop side = ``sqrt(w*h) * search_factor``.
        num_templates: reference frames per training clip (official ``DATA.TEMPLATE.NUMBER``). At
            inference the model accepts any number of templates.
        num_search_frames: search frames per training clip (official ``DATA.SEARCH.NUMBER``).
        tracker_template_number: segments of the inference template memory (official
            ``TEST.TEMPLATE_NUMBER``): frame 0 plus one midpoint per segment, so up to ``n + 1``
            templates are used once the video is long enough.
        attn_type: ``"concat"`` (full joint attention) or ``"separate"`` (templates attend only to
            templates, search to templates and search, the temporal token to everything).
        ce_layers: 0-based indices of the blocks that apply candidate elimination (empty = no CE).
        ce_keep_ratios: fraction of the remaining search tokens kept at each CE block.
        ce_template_range: template rows that vote in CE: ``"ctr_point"`` (the centre cell of each
            template, official ``CTR_POINT``) or ``"all"``.
        head_channels: channels of the first CENTER-head convolution (halved three times).
        head_batch_norm_eps: epsilon of the head's BatchNorm layers.
        drop_path_rate: stochastic-depth rate of the last block (linearly increasing from 0).
        initializer_range: std of the truncated-normal init of linear layers and tokens.
        giou_loss_weight / l1_loss_weight / focal_loss_weight: loss weights (official 2 / 5 / 1).
        average_loss_over_frames: average the clip loss over search frames as the paper says
            (``False`` sums them as the official code does).
        propagate_temporal_token: carry the output token to the next frame (the method). ``False`` is the
            paper's "w/o Token" ablation (Table 4a): every frame starts from the empty token, in
            training clips and in tracking alike.
        temporal_token_horizon: when set, the tracking session restarts an object's token from the empty
            token on every ``temporal_token_horizon``-th tracked frame, so no token is carried through more
            than ``temporal_token_horizon - 1`` frames. A model trained on clips of a few frames has only
            learnt to read tokens carried that far; carried through hundreds of frames its token can drift
            (docs/default_model.md). ``None`` (default) carries it for the whole video, as the official
            tracker does. Training clips are unaffected.
        template_refresh_interval: the tracking session chooses an object's templates from its memory on
            tracked frames 1, 1 + k, 1 + 2k, ... (k = ``template_refresh_interval``) and keeps that choice in
            between, so a separate-attention model re-encodes its templates at most every k frames (the
            official selection changes every ``tracker_template_number``-th frame or so, and each change costs
            a template encoding). ``1`` (default) chooses on every frame, as the official tracker does.
    """

    model_type = "odtrack"
    attribute_map = {"num_heads": "num_attention_heads", "depth": "num_hidden_layers", "embed_dim": "hidden_size"}

    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_act: str = "gelu"
    layer_norm_eps: float = 1e-6
    patch_size: int = 16
    num_channels: int = 3
    pretrain_image_size: int = 224
    template_size: int = 192
    template_factor: float = 2.0
    search_size: int = 384
    search_factor: float = 5.0
    num_templates: int = 3
    num_search_frames: int = 2
    tracker_template_number: int = 3
    attn_type: str = "concat"
    ce_layers: list[int] | tuple[int, ...] = (3, 6, 9)
    ce_keep_ratios: list[float] | tuple[float, ...] = (0.7, 0.7, 0.7)
    ce_template_range: str = "ctr_point"
    head_channels: int = 256
    head_batch_norm_eps: float = 1e-5
    drop_path_rate: float = 0.1
    initializer_range: float = 0.02
    giou_loss_weight: float = 2.0
    l1_loss_weight: float = 5.0
    focal_loss_weight: float = 1.0
    average_loss_over_frames: bool = True
    propagate_temporal_token: bool = True
    temporal_token_horizon: int | None = None
    template_refresh_interval: int = 1

    def __post_init__(self, **kwargs):
        self.ce_layers = [int(i) for i in self.ce_layers]
        self.ce_keep_ratios = [float(r) for r in self.ce_keep_ratios]
        if isinstance(self.ce_template_range, str):
            self.ce_template_range = self.ce_template_range.lower()
        super().__post_init__(**kwargs)
        # checked here too so that a bad value raises a plain ValueError (the strict-dataclass validator
        # hook wraps it in its own exception type)
        self.check_architecture()

    # --- derived sizes -------------------------------------------------------------------------
    @property
    def intermediate_size(self) -> int:
        """Hidden width of the MLP."""
        return int(self.hidden_size * self.mlp_ratio)

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def template_feat_size(self) -> int:
        """Side of the template token grid."""
        return self.template_size // self.patch_size

    @property
    def search_feat_size(self) -> int:
        """Side of the search token grid and of the head's score/size/offset maps."""
        return self.search_size // self.patch_size

    @property
    def pretrain_grid_size(self) -> int:
        return self.pretrain_image_size // self.patch_size

    @property
    def use_candidate_elimination(self) -> bool:
        return len(self.ce_layers) > 0

    def ce_keep_counts(self) -> list[int]:
        """Search tokens left after each CE block (the official ``ceil(ratio * n)``)."""
        counts, n = [], self.search_feat_size**2
        for ratio in self.ce_keep_ratios:
            n = math.ceil(ratio * n)
            counts.append(n)
        return counts

    # --- invariants (run at init and on save) --------------------------------------------------
    def validate_architecture(self):
        """Strict-dataclass validator hook (runs again on ``save_pretrained``)."""
        self.check_architecture()

    def check_architecture(self) -> None:
        """Reject combinations the model cannot build with a ``ValueError`` naming the bad value and the fix."""
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads}); choose a head count that divides the width."
            )
        for name in ("template_size", "search_size", "pretrain_image_size"):
            size = getattr(self, name)
            if size <= 0 or size % self.patch_size != 0:
                raise ValueError(
                    f"{name} ({size}) must be a positive multiple of patch_size ({self.patch_size}); "
                    f"use e.g. {max(1, round(size / self.patch_size)) * self.patch_size}."
                )
        for name in ("template_factor", "search_factor", "mlp_ratio"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}.")
        if self.attn_type not in ATTENTION_TYPES:
            raise ValueError(f"attn_type must be one of {ATTENTION_TYPES}, got {self.attn_type!r}.")
        if self.ce_template_range not in CE_TEMPLATE_RANGES:
            raise ValueError(
                f"ce_template_range must be one of {CE_TEMPLATE_RANGES}, got {self.ce_template_range!r}."
            )
        if len(self.ce_layers) != len(self.ce_keep_ratios):
            raise ValueError(
                f"ce_layers ({list(self.ce_layers)}) and ce_keep_ratios ({list(self.ce_keep_ratios)}) "
                "must have the same length: one keep ratio per candidate-elimination block."
            )
        if sorted(set(self.ce_layers)) != list(self.ce_layers):
            raise ValueError(f"ce_layers must be strictly increasing, got {list(self.ce_layers)}.")
        for layer in self.ce_layers:
            if not 0 <= layer < self.num_hidden_layers:
                raise ValueError(
                    f"ce_layers entry {layer} is outside the backbone's blocks 0..{self.num_hidden_layers - 1}."
                )
        for ratio in self.ce_keep_ratios:
            if not 0.0 < ratio <= 1.0:
                raise ValueError(f"ce_keep_ratios entries must lie in (0, 1], got {ratio}.")
        if self.ce_layers and self.attn_type == "separate":
            raise ValueError(
                "Candidate elimination is only defined for attn_type='concat' (the official separate "
                "attention exists only in the non-CE ViT). Set ce_layers=[] and ce_keep_ratios=[] to use "
                "separate attention, or attn_type='concat' to keep candidate elimination."
            )
        for name in ("num_templates", "num_search_frames", "tracker_template_number", "num_hidden_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.head_channels < 8 or self.head_channels % 8 != 0:
            raise ValueError(
                f"head_channels ({self.head_channels}) must be a positive multiple of 8: the CENTER head "
                "halves it three times."
            )
        if self.temporal_token_horizon is not None and not self.temporal_token_horizon >= 1:
            raise ValueError(
                f"temporal_token_horizon must be None (carry the token for the whole video) or >= 1, got "
                f"{self.temporal_token_horizon}."
            )
        if not self.template_refresh_interval >= 1:  # the field's type (int) is checked on construction
            raise ValueError(
                f"template_refresh_interval must be >= 1 (1 chooses templates on every frame, as the official "
                f"tracker does), got {self.template_refresh_interval}."
            )
        if not 0.0 <= self.drop_path_rate < 1.0:
            raise ValueError(f"drop_path_rate must lie in [0, 1), got {self.drop_path_rate}.")


# Official presets (docs/official-implementation.md, "Models and presets"). The GOT-10k variants differ
# only in the inference template memory (TEST.TEMPLATE_NUMBER = 4); their training recipe (GOT-10k only,
# 100 epochs, CE warm-up 20/50) lives in the training configuration.
PRESETS: dict[str, dict] = {
    "odtrack-base": {},
    "odtrack-base-got10k": {"tracker_template_number": 4},
    "odtrack-large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16},
    "odtrack-large-got10k": {
        "hidden_size": 1024,
        "num_hidden_layers": 24,
        "num_attention_heads": 16,
        "tracker_template_number": 4,
    },
    # baseline_sepattn.yaml with TYPE vit_base_patch16_224 (the shipped yaml silently builds the concat + CE
    # model; docs/official-implementation.md, "Models and presets"): real separate attention, which has no CE.
    "odtrack-base-separate": {"attn_type": "separate", "ce_layers": [], "ce_keep_ratios": []},
}


def odtrack_preset(name: str, **overrides) -> ODTrackConfig:
    """Build the configuration of a named official model, e.g. ``odtrack_preset("odtrack-large")``."""
    key = name.lower().replace("_", "-")
    if key not in PRESETS:
        raise ValueError(f"Unknown ODTrack preset {name!r}; available presets: {', '.join(PRESETS)}.")
    return ODTrackConfig(**{**PRESETS[key], **overrides})


__all__ = ["ODTrackConfig", "PRESETS", "odtrack_preset"]
