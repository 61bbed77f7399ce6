"""Processor of the ODTrack tracker: template and search crops and the map-back of boxes."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .configuration_odtrack import ODTrackConfig
from .image_processing_odtrack import CLIP_MARGIN, ODTrackImageProcessor

if TYPE_CHECKING:
    from .modeling_odtrack import ODTrackOutput

MODES = ("template", "search")


class ODTrackProcessor(ProcessorMixin):
    r"""Owns the tracker's crop settings; a tracking session ([`ODTrackInferenceSession`]) uses it for every crop.

    Args:
        image_processor: the [`ODTrackImageProcessor`] that crops and normalises (a default one if omitted).
        template_factor: template crop side as a multiple of ``sqrt(w*h)``.
        template_size: template crop side in pixels.
        search_factor: search crop side as a multiple of ``sqrt(w*h)``.
        search_size: search crop side in pixels.

    The defaults are those of [`ODTrackConfig`], which owns these values; a tracking session refuses a
    processor whose factors or sizes differ from its model's configuration.

    ``processor(images, boxes, mode="search")`` crops around ``(x, y, w, h)`` boxes with the factor and
    size of the mode; see [`ODTrackImageProcessor`] for the returned fields.
    """

    def __init__(
        self,
        image_processor: ODTrackImageProcessor | None = None,
        template_factor: float = ODTrackConfig.template_factor,
        template_size: int = ODTrackConfig.template_size,
        search_factor: float = ODTrackConfig.search_factor,
        search_size: int = ODTrackConfig.search_size,
        **kwargs,
    ):
        super().__init__(image_processor if image_processor is not None else ODTrackImageProcessor(), **kwargs)
        self.template_factor = template_factor
        self.template_size = template_size
        self.search_factor = search_factor
        self.search_size = search_size

    @classmethod
    def from_model_config(cls, config: ODTrackConfig) -> "ODTrackProcessor":
        """The processor whose crop factors and sizes are those of a model configuration."""
        return cls(
            ODTrackImageProcessor(),
            template_factor=config.template_factor,
            template_size=config.template_size,
            search_factor=config.search_factor,
            search_size=config.search_size,
        )

    def __call__(
        self,
        images: Any = None,
        boxes: Sequence[Sequence[float]] | Sequence[Sequence[Sequence[float]]] | None = None,
        mode: str | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Crop ``images`` around ``boxes`` (``(x, y, w, h)`` pixels) as ``"template"`` or ``"search"`` regions
        (``mode``, default ``"search"``).

        Extra keyword arguments go to the image processor (e.g. ``do_normalize=False`` for uint8 crops).
        """
        factor, size = self._mode_crop("search" if mode is None else mode)
        if images is None or boxes is None:
            raise ValueError("Give both images (one frame or a list of frames) and boxes (x, y, w, h per target).")
        return self.image_processor(images, boxes, crop_factor=factor, output_size=size, **kwargs)

    def crop_frame(
        self,
        image: Any,
        boxes: Sequence[Sequence[float]] | np.ndarray | torch.Tensor,
        mode: str,
        crop_backend: str | None = None,
        normalize: bool = True,
        device: str | torch.device | None = None,
    ) -> BatchFeature:
        """Crop one frame prepared by the image processor's ``process_image`` around ``boxes`` as
        ``"template"`` or ``"search"`` regions: the fields of a call, for callers that crop every frame
        (see [`ODTrackImageProcessor.crop_frame`])."""
        factor, size = self._mode_crop(mode)
        return self.image_processor.crop_frame(image, boxes, factor, size, crop_backend, normalize, device)

    def _mode_crop(self, mode: str) -> tuple[float, int]:
        """The crop factor and side of a mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if mode == "template":
            return self.template_factor, self.template_size
        return self.search_factor, self.search_size

    def normalize_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """Normalise uint8 crops kept for later (see [`ODTrackImageProcessor.normalize_crops`])."""
        return self.image_processor.normalize_crops(crops)

    def post_process_object_tracking(
        self,
        outputs: "ODTrackOutput",
        target_boxes: torch.Tensor,
        resize_factors: torch.Tensor,
        image_sizes: torch.Tensor,
        clip_margin: int = CLIP_MARGIN,
        score_map_window: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Map model boxes on search crops back to clipped image boxes ``(x, y, w, h)`` in pixels, the
        peak re-picked with ``score_map_window`` when given (see
        [`ODTrackImageProcessor.post_process_object_tracking`])."""
        return self.image_processor.post_process_object_tracking(
            outputs,
            target_boxes,
            resize_factors,
            image_sizes,
            output_size=self.search_size,
            clip_margin=clip_margin,
            score_map_window=score_map_window,
        )


__all__ = ["ODTrackProcessor"]
