"""The exported per-frame ODTrack step, run by onnxruntime in place of [`ODTrackModel`].

An ONNX file written by :func:`odtrack_hf.onnx_export.export_onnx` (``odtrack export-onnx``) holds one
tracking step: search crops, template crops and the previous temporal token in; the CENTER-head maps,
the box decoded at the raw peak and the next temporal token out. Its metadata carries the model configuration, so the
file alone is enough to track. [`ODTrackOnnxModel`] answers the calls the tracking session makes on an
``ODTrackModel`` (``config``, ``device``, ``dtype``, ``training``, ``model(pixel_values=..., ...)``), so
``ODTrackInferenceSession(ODTrackOnnxModel("step.onnx"), processor)`` tracks with onnxruntime.
"""

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .configuration_odtrack import ODTrackConfig
from .modeling_odtrack import ODTrackOutput, check_crops

# The graph's contract, shared with the exporter. The output token has its own name: ONNX value
# names are unique, so it cannot be called "temporal_token" like the input.
INPUT_NAMES = ("pixel_values", "template_pixel_values", "temporal_token")
OUTPUT_NAMES = ("score_map", "size_map", "offset_map", "box_map", "pred_boxes", "pred_scores", "next_temporal_token")
CONFIG_METADATA_KEY = "odtrack_config"
ONNX_EXTRA_HINT = 'pip install "odtrack-hf[onnx]"'


def import_onnxruntime():
    """``onnxruntime``, or an ``ImportError`` naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(f"Running an exported ODTrack step needs onnxruntime: {ONNX_EXTRA_HINT}.") from None
    return onnxruntime


class ODTrackOnnxModel:
    r"""An ONNX ODTrack step run by onnxruntime, usable by [`ODTrackInferenceSession`] like an ``ODTrackModel``.

    Args:
        path: ONNX file written by :func:`~odtrack_hf.onnx_export.export_onnx`.
        providers: onnxruntime execution providers (default: the CPU provider).
        session_options: ``onnxruntime.SessionOptions``, e.g. to set ``intra_op_num_threads``.

    Attributes:
        config: the [`ODTrackConfig`] of the exported model (from the file's metadata).
        num_templates: the template count the graph was exported for, or ``None`` when the template
            axis is dynamic (what the tracker needs: it uses 1 to ``tracker_template_number + 1``).

    Inputs and outputs live on the CPU in float32 (``device`` and ``dtype``), whatever the provider.
    There is no ``encode_templates``: with separate attention the session then passes the template
    crops every frame, and the graph recomputes the template path.
    """

    training = False  # the graph is the eval-mode step (BatchNorm running statistics, no drop path)
    device = torch.device("cpu")
    dtype = torch.float32

    def __init__(
        self,
        path: str | Path,
        providers: Sequence[str] | None = None,
        session_options: Any | None = None,
    ):
        onnxruntime = import_onnxruntime()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(
                f"No ONNX file at {self.path}; write one with 'odtrack export-onnx MODEL_DIR --out FILE'."
            )
        try:
            self.session = onnxruntime.InferenceSession(
                str(self.path), sess_options=session_options, providers=list(providers or ["CPUExecutionProvider"])
            )
        except Exception as error:  # onnxruntime's errors (InvalidProtobuf, Fail, ...) derive only from Exception
            raise ValueError(f"onnxruntime cannot load {self.path}: {str(error).splitlines()[0]}") from None
        metadata = self.session.get_modelmeta().custom_metadata_map
        if CONFIG_METADATA_KEY not in metadata:
            raise ValueError(
                f"{self.path} is not an ODTrack step written by odtrack_hf (its metadata has no "
                f"{CONFIG_METADATA_KEY!r}); export it with 'odtrack export-onnx MODEL_DIR --out FILE'."
            )
        self.config = ODTrackConfig.from_dict(json.loads(metadata[CONFIG_METADATA_KEY]))
        inputs = {node.name: node for node in self.session.get_inputs()}
        count = inputs["template_pixel_values"].shape[1]
        self.num_templates: int | None = count if isinstance(count, int) else None

    def __repr__(self) -> str:
        templates = "dynamic" if self.num_templates is None else self.num_templates
        name, size = type(self).__name__, self.config.search_size
        return f"{name}({str(self.path)!r}, templates={templates}, search_size={size})"

    def __call__(
        self,
        pixel_values: torch.Tensor,
        template_pixel_values: torch.Tensor,
        temporal_token: torch.Tensor | None = None,
    ) -> ODTrackOutput:
        """One step, with the arguments and outputs of ``ODTrackModel.forward`` for one search frame.

        Args:
            pixel_values: normalised search crops ``(B, 3, S, S)``.
            template_pixel_values: normalised template crops ``(B, T, 3, s, s)``.
            temporal_token: ``(B, 1, C)`` previous token, or ``None`` at the start of a sequence.

        Returns:
            An [`ODTrackOutput`] with ``pred_boxes``, ``pred_scores``, ``score_map``, ``size_map``,
            ``offset_map``, ``box_map`` and ``temporal_token`` (CPU float32 tensors).

        Raises:
            ValueError: crops of other sizes than the exported model's, or another template count than
                a fixed-template graph's.
        """
        self._check_inputs(pixel_values, template_pixel_values)
        # the graph always takes a token; a zero token gives the same result exactly: the embedding
        # adds the token to the empty token (x + 0 == x)
        if temporal_token is None:
            temporal_token = torch.zeros(pixel_values.shape[0], 1, self.config.hidden_size)
        values = (pixel_values, template_pixel_values, temporal_token)
        feeds = {name: _to_numpy(value) for name, value in zip(INPUT_NAMES, values)}
        outputs = self.session.run(list(OUTPUT_NAMES), feeds)
        tensors = {name: torch.from_numpy(value) for name, value in zip(OUTPUT_NAMES, outputs)}
        return ODTrackOutput(temporal_token=tensors.pop("next_temporal_token"), **tensors)

    def _check_inputs(self, pixel_values: torch.Tensor, template_pixel_values: torch.Tensor) -> None:
        try:
            check_crops(self.config, pixel_values, template_pixel_values)
        except ValueError as error:
            raise ValueError(f"{self.path.name}: {error}") from None
        count = template_pixel_values.shape[1]
        if self.num_templates is not None and count != self.num_templates:
            raise ValueError(
                f"{self.path.name} was exported for exactly {self.num_templates} templates, got {count}. The tracker "
                f"uses 1 to tracker_template_number + 1 = {self.config.tracker_template_number + 1} templates as an "
                "object's memory grows: for tracking, export without --num-templates (a dynamic template axis)."
            )


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().to("cpu", torch.float32).numpy())


__all__ = ["ODTrackOnnxModel"]
