"""``pipeline("object-tracking")``: track boxes through a video with ODTrack.

The pipeline holds no geometry and no tracking maths: it turns the video argument into a stream of
frames, drives an [`ODTrackInferenceSession`] one frame at a time and formats the results like the
object-detection pipeline (``{"xmin", "ymin", "xmax", "ymax"}`` boxes in image pixels).
"""

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import PIL.Image
import torch
from torchvision.ops import box_convert
from transformers.pipelines.base import Pipeline

from .session_odtrack import (
    DEFAULT_MAX_TEMPLATES,
    ODTrackInferenceSession,
    ODTrackTrackingOutput,
    default_inference_dtype,
)
from .video_io import read_video_frames

_NOT_GIVEN = object()  # tells an omitted max_templates from max_templates=None


class ObjectTrackingPipeline(Pipeline):
    r"""Single- and multi-object tracking in videos.

    ```python
    tracker = pipeline("object-tracking", model="path/or/hub-id")
    results = tracker("video.mp4", boxes=[[xmin, ymin, xmax, ymax], ...])
    results[t]  # frame t: [{"object_id": 1, "score": 0.87, "box": {"xmin": ..., "ymax": ...}}, ...]
    for frame_results in tracker.stream(camera_frames, boxes=[[...]]):  # live sources
        ...
    ```

    ``video`` is a file path (decoded with PyAV, streamed), a list of frames (PIL images or HWC uint8
    RGB arrays) or any iterable of frames (consumed lazily). Objects get ids 1, 2, ... in the order of
    ``boxes``. The first frame returns the given boxes with score 1.0.

    ``max_templates`` (at construction or per call) bounds the stored templates per object (default
    ``DEFAULT_MAX_TEMPLATES``, 64, so that memory stays flat over long videos); ``max_templates=None``
    keeps the official, unbounded memory and exactly the official template selection (see
    [`TemplateMemoryPolicy`]). ``compile=True`` runs the model through ``torch.compile``. Per call,
    ``dtype`` is the compute dtype: by default, for a float32 model on the CPU, bf16 autocast where the CPU
    has native bf16 and dynamic int8 linear layers (``torch.qint8``) elsewhere, else the model's dtype
    ([`default_inference_dtype`]); ``dtype=torch.float32`` keeps float32,
    ``dtype=torch.bfloat16`` runs a float32 model under bf16 autocast; ``pipeline(..., dtype=torch.bfloat16)``
    instead loads bf16 weights (on CPU as fast or faster, see ``docs/performance.md``). ``crop_backend="torch"`` crops every object in one batched
    op on the model's device instead of the processor's default (``"opencv"``, the official crop).
    """

    _load_processor = True
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_tokenizer = False

    def _sanitize_parameters(
        self,
        max_templates: int | None | object = _NOT_GIVEN,
        dtype: torch.dtype | None = None,
        compile: bool | None = None,
        crop_backend: str | None = None,
    ) -> tuple[dict, dict, dict]:
        forward_params = {"dtype": dtype, "compile": compile, "crop_backend": crop_backend}
        forward_params = {name: value for name, value in forward_params.items() if value is not None}
        if max_templates is not _NOT_GIVEN:  # None is a choice here: the official, unbounded memory
            forward_params["max_templates"] = max_templates
        return {}, forward_params, {}

    def __call__(self, video: Any, boxes: Sequence[Sequence[float]] | None = None, **kwargs) -> list[list[dict]]:
        """Track ``boxes`` (``[xmin, ymin, xmax, ymax]`` pixels, one per object) through ``video``.

        Returns one entry per frame: a list with one ``{"object_id", "score", "box"}`` dict per object.
        """
        return list(self.stream(video, boxes, **kwargs))

    def stream(self, video: Any, boxes: Sequence[Sequence[float]] | None = None, **kwargs) -> Iterator[list[dict]]:
        """Like calling the pipeline, but yields each frame's results as soon as the frame is tracked."""
        _, forward_params, _ = self._sanitize_parameters(**kwargs)
        forward_params = {**self._forward_params, **forward_params}
        boxes_xywh = _boxes_to_xywh(boxes)
        session = ODTrackInferenceSession(
            self.model,
            self.processor,
            inference_device=self.device,
            dtype=forward_params.get("dtype") or default_inference_dtype(self.model, self.device),
            max_templates=forward_params.get("max_templates", DEFAULT_MAX_TEMPLATES),
            compile=forward_params.get("compile", False),
            crop_backend=forward_params.get("crop_backend"),
        )
        frames = (self.preprocess(frame) for frame in _frames(video))
        count = 0
        for count, outputs in enumerate(self._forward(frames, session, boxes_xywh), start=1):
            yield self.postprocess(outputs)
        if count == 0:
            raise ValueError("The video has no frames; give a non-empty video or list of frames.")

    def preprocess(self, frame: Any) -> np.ndarray:
        # validated (H, W, 3) uint8 RGB array: a tensor frame would otherwise be moved to the device
        return self.image_processor.process_image(frame)

    def _forward(
        self, frames: Iterable[np.ndarray], session: ODTrackInferenceSession, boxes: list[list[float]]
    ) -> Iterator[ODTrackTrackingOutput]:
        """The session's frame loop (the same one ``odtrack track`` runs): ``boxes`` start on the first frame."""
        return session.propagate(frames, boxes=boxes)

    def postprocess(self, outputs: ODTrackTrackingOutput) -> list[dict]:
        corners = box_convert(outputs.boxes, in_fmt="xywh", out_fmt="xyxy").tolist()
        return [
            {
                "object_id": object_id,
                "score": float(score),
                "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), box)),
            }
            for object_id, score, box in zip(outputs.object_ids, outputs.scores.tolist(), corners)
        ]

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Save model, pipeline registration and the processor (the base class skips processors)."""
        super().save_pretrained(save_directory, **kwargs)
        self.processor.save_pretrained(save_directory, **kwargs)
        # the registration's default model is a path inside this installation: meaningless elsewhere
        config_path = Path(save_directory) / "config.json"
        config = json.loads(config_path.read_text())
        for task in config.get("custom_pipelines", {}).values():
            task.pop("default", None)
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _boxes_to_xywh(boxes: Any) -> list[list[float]]:
    """``[xmin, ymin, xmax, ymax]`` (one box) or a list of them → list of ``[x, y, w, h]``."""
    if isinstance(boxes, (torch.Tensor, np.ndarray)):
        boxes = boxes.tolist()
    if isinstance(boxes, (list, tuple)) and boxes and all(isinstance(v, Real) for v in boxes):
        boxes = [boxes]
    if (
        not isinstance(boxes, (list, tuple))
        or not boxes
        or not all(isinstance(b, (list, tuple)) and len(b) == 4 and all(isinstance(v, Real) for v in b) for b in boxes)
    ):
        raise ValueError(
            "boxes must be one [xmin, ymin, xmax, ymax] box or a list of them, in pixels of the first frame; "
            f"got {boxes!r:.200}."
        )
    corners = torch.tensor(boxes, dtype=torch.float64)
    return box_convert(corners, in_fmt="xyxy", out_fmt="xywh").tolist()


def _frames(video: Any) -> Iterable:
    """The frames of ``video``: decoded lazily from a file path, or the items of a list/iterable."""
    if isinstance(video, (str, os.PathLike)):
        return read_video_frames(video)
    if isinstance(video, PIL.Image.Image) or not isinstance(video, Iterable):
        raise ValueError(
            "video must be a file path, a list of frames or an iterable of frames (PIL images or HWC uint8 RGB "
            f"arrays); got {type(video).__name__}. Wrap a single image in a list."
        )
    return video


__all__ = ["ObjectTrackingPipeline"]
