"""Export the per-frame ODTrack step to ONNX and check it against the torch model with onnxruntime.

The graph is ``ODTrackModel.forward`` for one search frame in eval mode: search crops, template crops
and the previous temporal token in; ``score_map``, ``size_map``, ``offset_map``, ``box_map``,
``pred_boxes``, ``pred_scores`` and ``next_temporal_token`` out. The tracker's windowed choice of the
peak is post-processing (``post_process_object_tracking``) and stays outside the graph. The batch axis is dynamic (several
objects in one run); the template axis is dynamic unless a count is fixed, because the tracker's
template count grows from 1 to ``tracker_template_number + 1``.

It uses torch's dynamo exporter (``torch.onnx.export(dynamo=True)``, needs ``onnxscript``). It traces
with symbolic shapes, so the shape-dependent Python in the model (template token counts, candidate
elimination's keep count and vote rows) stays correct for every batch size and template count, and
candidate elimination's sort, gathers and scatter export as ONNX ``TopK`` / ``GatherElements`` /
``ScatterElements``. Both exporters reproduce the model to ~1e-6 in eval mode. The score-map
differences of 0.5 once seen with the TorchScript exporter came from a wrapper module left in
training mode: that exporter restores the wrapper's mode after export, which put the model into
training mode (drop path, BatchNorm batch statistics) for the torch reference it was compared with.
"""

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .configuration_odtrack import ODTrackConfig
from .modeling_odtrack import ODTrackModel
from .onnx_model import CONFIG_METADATA_KEY, INPUT_NAMES, ONNX_EXTRA_HINT, OUTPUT_NAMES, ODTrackOnnxModel

logger = logging.getLogger(__name__)

DEFAULT_OPSET = 18
DEFAULT_ATOL = 1e-4
COMPARED = ("score_map", "size_map", "offset_map", "box_map", "pred_boxes", "pred_scores", "temporal_token")


@dataclass
class ONNXExportResult:
    """What :func:`export_onnx` wrote and how closely onnxruntime reproduces the torch model.

    Args:
        path: the ONNX file.
        num_templates: the fixed template count, or ``None`` for a dynamic template axis.
        opset: ONNX opset of the graph.
        max_abs_diff: per output (``ODTrackOutput`` names), the max abs difference between onnxruntime
            and the torch model over the validation inputs.
    """

    path: Path
    num_templates: int | None
    opset: int
    max_abs_diff: dict[str, float]


class _FrameStep(nn.Module):
    """``ODTrackModel.forward`` for one search frame, with plain tensors in and out."""

    def __init__(self, model: ODTrackModel):
        super().__init__()
        self.model = model

    def forward(self, pixel_values, template_pixel_values, temporal_token):
        outputs = self.model(
            pixel_values=pixel_values, template_pixel_values=template_pixel_values, temporal_token=temporal_token
        )
        # OUTPUT_NAMES, the last of which ("next_temporal_token") is the model's temporal_token
        return (*(outputs[name] for name in OUTPUT_NAMES[:-1]), outputs.temporal_token)


def _random_inputs(
    config: ODTrackConfig, batch_size: int, num_templates: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Normalised-crop-like search crops, template crops and a previous temporal token."""
    generator = torch.Generator().manual_seed(seed)
    search = torch.randn(batch_size, config.num_channels, config.search_size, config.search_size, generator=generator)
    template_shape = (batch_size, num_templates, config.num_channels, config.template_size, config.template_size)
    templates = torch.randn(template_shape, generator=generator)
    token = torch.randn(batch_size, 1, config.hidden_size, generator=generator)
    return search, templates, token


def export_onnx(
    model: ODTrackModel,
    path: str | Path,
    num_templates: int | None = None,
    opset: int = DEFAULT_OPSET,
    atol: float | None = DEFAULT_ATOL,
) -> ONNXExportResult:
    """Export the per-frame step of ``model`` to ``path`` and check it with onnxruntime.

    Args:
        model: a float32 [`ODTrackModel`]; it is exported in eval mode and left in the mode it had.
        path: the ONNX file to write (one file: weights included).
        num_templates: fix the template axis to this count. ``None`` (default) keeps it dynamic, as
            the tracking session needs (it uses 1 to ``tracker_template_number + 1`` templates).
        opset: ONNX opset version.
        atol: raise if any output of onnxruntime differs from the torch model by more than this;
            ``None`` only reports the differences.

    Returns:
        An [`ONNXExportResult`] with the max abs difference of every output, measured through
        [`ODTrackOnnxModel`] on two random input sets: batch 2 with a temporal token, and batch 1
        without one (an object's first tracked frame).

    Raises:
        ImportError: ``onnxscript`` or ``onnxruntime`` is missing (``pip install "odtrack-hf[onnx]"``).
        ValueError: a model that is not float32, ``num_templates < 1``, or onnxruntime outputs farther
            than ``atol`` from the model.
    """
    try:
        import onnxscript  # noqa: F401  (the dynamo exporter imports it lazily; fail early with the fix)
    except ImportError:
        raise ImportError(f"ONNX export needs onnxscript (torch's dynamo exporter): {ONNX_EXTRA_HINT}.") from None
    if model.dtype != torch.float32:
        raise ValueError(
            f"ONNX export takes a float32 model, this one is {model.dtype}; call model.float() or load it with "
            "from_pretrained(..., dtype=torch.float32)."
        )
    if num_templates is not None and num_templates < 1:
        raise ValueError(
            f"num_templates must be at least 1 (or None for a dynamic template axis), got {num_templates}."
        )
    config, path = model.config, Path(path)
    # trace with 2 templates or more so that the dynamic template axis is not specialised to 1
    example_templates = num_templates or config.tracker_template_number + 1
    example = _random_inputs(config, 2, example_templates, seed=0)
    batch = torch.export.Dim("batch", min=1)
    template_axes = {0: batch} if num_templates else {0: batch, 1: torch.export.Dim("templates", min=1)}
    dynamic_shapes = {"pixel_values": {0: batch}, "template_pixel_values": template_axes, "temporal_token": {0: batch}}

    was_training = model.training
    step = _FrameStep(model).eval()  # nn.Module starts in training mode: the wrapper must not
    try:
        with warnings.catch_warnings():
            # the batch Dim is shared by three inputs, which the exporter reports once per extra input
            warnings.filterwarnings("ignore", message="# The axis name: batch will not be used")
            program = torch.onnx.export(
                step,
                example,
                dynamo=True,
                opset_version=opset,
                input_names=list(INPUT_NAMES),
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=dynamic_shapes,
                verbose=False,
            )
        program.model.metadata_props[CONFIG_METADATA_KEY] = config.to_json_string(use_diff=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        program.save(path, external_data=False)
        # batch 2 with a token, and batch 1 without one (an object's first frame) with the tracker's
        # first template count, 1, where the template axis is dynamic
        cases = [(2, example_templates, True), (1, num_templates or 1, False)]
        max_abs_diff = _compare(model, ODTrackOnnxModel(path), cases)
    finally:
        model.train(was_training)
    worst = max(max_abs_diff.values())
    logger.info("Exported %s; onnxruntime vs torch max abs difference %.1e", path, worst)
    if atol is not None and worst > atol:
        details = ", ".join(f"{name} {value:.1e}" for name, value in max_abs_diff.items())
        raise ValueError(
            f"onnxruntime does not reproduce the model within {atol:g} ({details}); {path} is kept for inspection. "
            "A near-tie in candidate elimination's token ranking can flip on float rounding: if that is the cause, "
            "accept the file with export_onnx(..., atol=None); otherwise report it with the model's config.json."
        )
    return ONNXExportResult(path=path, num_templates=num_templates, opset=opset, max_abs_diff=max_abs_diff)


@torch.inference_mode()
def _compare(model: ODTrackModel, onnx_model: ODTrackOnnxModel, cases: list[tuple[int, int, bool]]) -> dict[str, float]:
    """Max abs difference of every output between the model and onnxruntime over random inputs, one
    set per ``(batch size, template count, with a previous temporal token)`` case."""
    config = model.config
    differences = dict.fromkeys(COMPARED, 0.0)
    for seed, (batch_size, count, with_token) in enumerate(cases, start=1):
        search, templates, token = _random_inputs(config, batch_size, count, seed)
        inputs = dict(
            pixel_values=search,
            template_pixel_values=templates,
            temporal_token=token if with_token else None,
        )
        expected, actual = model(**inputs), onnx_model(**inputs)
        for name in COMPARED:
            difference = (getattr(actual, name) - getattr(expected, name)).abs().max().item()
            differences[name] = max(differences[name], difference)
    return differences


__all__ = ["ONNXExportResult", "export_onnx"]
