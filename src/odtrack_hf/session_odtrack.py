"""Tracking state of one video: objects, their template memory and temporal tokens.

The session is a plain object in the style of transformers' ``Sam2VideoInferenceSession``. Each call
to :meth:`ODTrackInferenceSession.track` takes one frame and runs, for every tracked object, the
official ODTrack step (docs/official-implementation.md, "Tracker crops, window and update"): search crop
around the previous box, template selection, one model forward with the previous temporal token and the Hann window, map-back and clipping, and a
new template cropped around the new box. Cropping and box geometry are the processor's; the network
maths is the model's; the session only keeps state and batches objects.

Several objects are tracked with one batched forward per frame. The network has no attention mask,
so objects must share the number of templates T to share a forward (padding with extra templates
would change the attention): objects are grouped by T, and by whether they have a temporal token
yet (only on their first tracked frame they have none), with one forward per group. T depends only
on how many frames an object has been tracked, so objects added on the same frame always share a
forward, and after ``2 * tracker_template_number`` frames every object uses
``tracker_template_number + 1`` templates (official policy), so all of them share one forward.

With separate attention the template path does not depend on the search frame: each object keeps
the model's [`ODTrackTemplateCache`] of its selected templates and recomputes it only when the
selection changes (every frame up to ``2n``, then every ``n`` frames with the official memory, and
far less often with the bounded one, whose sparse templates stay the nearest ones for longer).

With ``crop_backend="torch"`` each frame is moved to the inference device once, and the search crops
of all objects (and their new templates) are cut there in one batched op per call.
"""

import bisect
import contextlib
import functools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .image_processing_odtrack import check_crop_backend, hann_window
from .modeling_odtrack import ODTrackTemplateCache
from .quantization import int8_linear_supported, quantize_linear_layers

if TYPE_CHECKING:
    from .modeling_odtrack import ODTrackModel
    from .processing_odtrack import ODTrackProcessor


@dataclass
class ODTrackTrackingOutput:
    """Result of one frame.

    Args:
        frame_idx: index of the frame in the session (0 for the first frame given).
        object_ids: ids of the objects, in the order of the rows below.
        boxes: ``(N, 4)`` float64 ``(x, y, w, h)`` in image pixels. An object added on this frame
            reports the box it was given.
        scores: ``(N,)`` float32 raw score-map value at the chosen peak (1.0 on the frame an object
            is added). Low when the target is lost or has left the frame.
    """

    frame_idx: int
    object_ids: list[int]
    boxes: torch.Tensor
    scores: torch.Tensor


DEFAULT_MAX_TEMPLATES = 64
"""Default bound on the stored templates per object: 7 MB of uint8 crops at 192 px, 1.4 MB at 84 px."""


class TemplateMemoryPolicy:
    r"""Which stored templates an object uses on each frame, and which it keeps for later.

    Memory index ``k`` is the template cropped ``k`` frames after the object was added (``k = 0`` is
    the template from the given box). While tracking its ``f``-th frame (``f = 1, 2, ...``) an object
    uses, as the official ``select_memory_frames`` with ``n = template_number`` (docs/official-implementation.md,
    "Tracker crops, window and update"):
    every stored template while ``f <= n``, afterwards ``{0} ∪ {i * (f // n) + (f // n) // 2 : i < n}``.
    The chosen indices only move forward: after frame ``f`` template ``k >= 1`` can still be chosen iff
    ``f < n`` or ``k >= ((f + 1) // n) // 2`` (:meth:`oldest_selectable`), so the official memory needs
    ``(1 - 1/(2n)) * f`` stored crops (5/6 of the frames for ODTrack-B).

    ``max_templates=None`` keeps every template that can still be chosen: the official selection exactly.

    ``max_templates=M`` (default 64) bounds the memory to ``M`` templates. Templates that can no
    longer be chosen are dropped as above (except, when the oldest selectable template itself was
    thinned away, its nearest older stored neighbour); while more than ``M`` remain, the template whose
    removal leaves the smallest gap between its stored neighbours goes (the newer of equal ones), never
    frame 0, the oldest or the newest. The slots thus stay spread evenly over the range the official
    selection can still reach, and each official index is replaced by the nearest stored one: the
    selection is the official one while the official memory fits in ``M``, then each chosen template
    stays within ``f / (M - 2)`` frames of the official one.
    """

    def __init__(self, template_number: int, max_templates: int | None = DEFAULT_MAX_TEMPLATES):
        if template_number < 1:
            raise ValueError(f"template_number must be >= 1, got {template_number}.")
        smallest = 2 * (template_number + 1)
        if max_templates is not None and max_templates < smallest:
            raise ValueError(
                f"max_templates ({max_templates}) must be at least 2 * (template_number + 1) = {smallest}, twice the "
                f"templates one step uses, so that thinning never merges two of them. Use e.g. max_templates="
                f"{DEFAULT_MAX_TEMPLATES}, or None (--max-templates none) for the official, unbounded memory."
            )
        self.template_number = template_number
        self.max_templates = max_templates

    def official_indices(self, frame: int) -> list[int]:
        """Memory indices the official tracker selects on its ``frame``-th tracked frame (frame > n)."""
        duration = frame // self.template_number
        return sorted({0, *(i * duration + duration // 2 for i in range(self.template_number))})

    def select(self, frame: int, stored: Iterable[int]) -> list[int]:
        """Memory indices to use on the ``frame``-th tracked frame, given the stored indices."""
        stored = sorted(stored)
        if frame <= self.template_number:
            return stored
        chosen = set()
        for target in self.official_indices(frame):
            position = bisect.bisect_left(stored, target)
            candidates = stored[max(position - 1, 0) : position + 1]
            chosen.add(min(candidates, key=lambda index: (abs(index - target), index)))
        return sorted(chosen)

    def oldest_selectable(self, frame: int) -> int:
        """The smallest memory index ``k >= 1`` the official selection can choose on a frame after the ``frame``-th."""
        if frame < self.template_number:
            return 1
        return max(1, (frame + 1) // self.template_number // 2)

    def keeps(self, index: int, frame: int) -> bool:
        """Whether template ``index`` can still be chosen by the official selection after the ``frame``-th frame."""
        return index == 0 or index >= self.oldest_selectable(frame)

    def kept(self, stored: Iterable[int], frame: int) -> list[int]:
        """The stored memory indices to keep after the ``frame``-th tracked frame (its template included)."""
        stored = sorted(stored)
        oldest = self.oldest_selectable(frame)
        if self.max_templates is None:
            return [index for index in stored if self.keeps(index, frame)]
        position = bisect.bisect_left(stored, oldest)
        if position < len(stored) and stored[position] > oldest:
            position -= 1  # ``oldest`` itself was thinned away: its older neighbour may be the nearest to it
        kept = stored[:1] + stored[max(position, 1) :]
        while len(kept) > self.max_templates:
            # kept[0] is frame 0, kept[1] the oldest kept, kept[-1] the newest: thin the ones between
            gaps = {i: kept[i + 1] - kept[i - 1] for i in range(2, len(kept) - 1)}
            del kept[min(gaps, key=lambda i: (gaps[i], -i))]
        return kept


@functools.cache
def cpu_has_native_bf16(cpuinfo_path: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU multiplies bf16 in hardware (x86 AVX512-BF16 or AMX-BF16 flags in Linux's cpuinfo).

    Elsewhere PyTorch emulates bf16 matmuls on the CPU, many times slower than float32.
    """
    try:
        with open(cpuinfo_path) as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def default_inference_dtype(model: "ODTrackModel", device: str | torch.device | None = None) -> torch.dtype:
    """The compute dtype a session uses when the caller names none: the fastest one that keeps the accuracy.

    A float32 model on the CPU runs under bf16 autocast where the CPU has native bf16 (about 1.4x the
    frames per second), else with dynamic int8 linear layers (``torch.qint8``, about 1.3x) where PyTorch
    has the kernels; held-out AUC is unchanged within the noise either way (``docs/performance.md``,
    docs/default_model.md). Everything else runs in the model's dtype. Passing ``dtype=torch.float32``
    explicitly keeps float32.
    """
    device = torch.device(device) if device is not None else model.device
    if device.type != "cpu" or model.dtype != torch.float32:
        return model.dtype
    if cpu_has_native_bf16():
        return torch.bfloat16
    if isinstance(model, torch.nn.Module) and int8_linear_supported():  # not for an onnxruntime step
        return torch.qint8
    return model.dtype


@dataclass
class _TrackedObject:
    object_id: int
    box: list[float]
    score: float = 1.0
    frames_tracked: int = 0
    temporal_token: torch.Tensor | None = None
    templates: dict[int, torch.Tensor] = field(default_factory=dict)
    template_cache: ODTrackTemplateCache | None = None
    cached_selection: list[int] | None = None  # memory indices the template cache was computed from
    selection: list[int] = field(default_factory=list)  # memory indices chosen at the last refresh


class ODTrackInferenceSession:
    r"""Tracks any number of objects through one video, one frame per :meth:`track` call.

    Args:
        model: an [`ODTrackModel`] in eval mode.
        processor: the [`ODTrackProcessor`] whose crop sizes match ``model.config``.
        inference_device: where the forward runs (default: the model's device).
        state_device: where template crops are stored (default: ``inference_device``); ``"cpu"`` keeps
            long template memories off the accelerator.
        dtype: compute dtype (default: the model's dtype). A dtype other than the model's, e.g.
            ``torch.bfloat16`` for a float32 model, runs the model under ``torch.autocast``, leaving the
            weights as they are; a model loaded in bf16 runs in bf16 without it (on CPU as fast or
            faster, see ``docs/performance.md``). ``torch.qint8`` runs a float32 model on the CPU through a
            copy with dynamic int8 linear layers ([`quantize_linear_layers`]). Geometry is always float64.
        max_templates: bound on the stored templates per object (default ``DEFAULT_MAX_TEMPLATES``, 64), or
            ``None`` for the official, unbounded memory and exactly the official template selection (see
            [`TemplateMemoryPolicy`]).
        compile: run the model through ``torch.compile(dynamic=True)``, so that the growing number of
            templates (1 to ``n + 1``) and of objects does not recompile every frame.
        crop_backend: ``"opencv"`` (the official crop on the CPU) or ``"torch"`` (every object's crop in one
            batched op on ``inference_device``; equal to the OpenCV crop, see ``docs/performance.md``).
            Default: the image processor's ``crop_backend``.

    Per object the session keeps its template memory (uint8 crops), its temporal token, its last box
    and score, and how many frames it has been tracked (the official frame counter). The temporal token is passed from each frame to
    the next and never reset while the object is tracked (docs/official-implementation.md, "Temporal token"),
    unless the model's ``config.temporal_token_horizon`` restarts it every that many frames. The templates
    are chosen from the memory on every frame (the official selection) or, with the model's
    ``config.template_refresh_interval`` k > 1, on tracked frames 1, 1 + k, 1 + 2k, ... and kept in between.

    ``use_template_cache`` (default: on for ``attn_type="separate"``) makes each object reuse the
    template path of the model between frames with the same template selection; it does not change
    the outputs.
    """

    def __init__(
        self,
        model: "ODTrackModel",
        processor: "ODTrackProcessor",
        inference_device: str | torch.device | None = None,
        state_device: str | torch.device | None = None,
        dtype: torch.dtype | None = None,
        max_templates: int | None = DEFAULT_MAX_TEMPLATES,
        compile: bool = False,
        crop_backend: str | None = None,
    ):
        config = model.config
        for name in ("template_factor", "template_size", "search_factor", "search_size"):
            if getattr(processor, name) != getattr(config, name):
                raise ValueError(
                    f"processor.{name} ({getattr(processor, name)}) differs from model.config.{name} "
                    f"({getattr(config, name)}); use the processor saved with this model, or build "
                    f"ODTrackProcessor({name}={getattr(config, name)})."
                )
        if model.training:
            raise ValueError(
                "The model is in training mode (BatchNorm would use batch statistics); "
                "call model.eval() before tracking."
            )
        self.model = model
        self.processor = processor
        self.inference_device = torch.device(inference_device) if inference_device is not None else model.device
        self.state_device = torch.device(state_device) if state_device is not None else self.inference_device
        self.dtype = dtype if dtype is not None else model.dtype
        self.crop_backend = check_crop_backend(
            crop_backend if crop_backend is not None else processor.image_processor.crop_backend
        )
        step_model = self._int8_model(model) if self.dtype == torch.qint8 else model
        # models without encode_templates (remote code of an older version, test doubles) get the crops
        encode_templates = getattr(step_model, "encode_templates", None)
        self.use_template_cache = config.attn_type == "separate" and encode_templates is not None
        self._forward = torch.compile(step_model, dynamic=True) if compile else step_model
        self._encode_templates = (
            torch.compile(encode_templates, dynamic=True) if compile and self.use_template_cache else encode_templates
        )
        self.template_policy = TemplateMemoryPolicy(config.tracker_template_number, max_templates)
        self.score_map_window = hann_window(config.search_feat_size).to(self.inference_device, model.dtype)
        self.reset()

    def reset(self) -> None:
        """Forget every object and frame; the next frame starts a new video."""
        self.frame_idx = -1
        self.video_size: tuple[int, int] | None = None  # (height, width) of the first frame
        self._objects: dict[int, _TrackedObject] = {}
        self._next_object_id = 1

    @property
    def object_ids(self) -> list[int]:
        """Ids of the tracked objects, in the order of the output rows."""
        return list(self._objects)

    def stored_templates(self, object_id: int) -> list[int]:
        """Memory indices (frames since the object was added) of the templates stored for an object."""
        return sorted(self._get(object_id).templates)

    def remove_objects(self, object_ids: Iterable[int]) -> None:
        """Stop tracking these objects and free their state."""
        object_ids = list(object_ids)
        for object_id in object_ids:
            self._get(object_id)
        for object_id in object_ids:
            del self._objects[object_id]

    @torch.inference_mode()
    def track(
        self,
        frame: Any,
        new_boxes: Sequence[Sequence[float]] | None = None,
        new_object_ids: Sequence[int] | None = None,
    ) -> ODTrackTrackingOutput:
        """Track every object into ``frame``, then add objects that start on this frame.

        Args:
            frame: the next frame of the video (PIL image, HWC uint8 RGB array, or CHW/HWC uint8 tensor).
            new_boxes: ``(x, y, w, h)`` pixel boxes of objects that appear on this frame (first frame:
                the initial boxes).
            new_object_ids: ids for the new objects (default: 1, 2, ... in order of addition).

        Returns:
            An [`ODTrackTrackingOutput`] with every object, tracked ones first.

        Raises:
            ValueError: bad frame, a frame whose size differs from the first, an invalid or
                out-of-frame box, or a duplicate id. The session is unchanged when it raises.
        """
        # once per frame: a numpy array for OpenCV, or a tensor on the inference device for the torch crop
        image = self.processor.image_processor.process_image(
            frame, crop_backend=self.crop_backend, device=self.inference_device
        )
        size = tuple(image.shape[:2])
        if self.video_size is not None and size != self.video_size:
            raise ValueError(
                f"Frame {self.frame_idx + 1} is {size[1]}x{size[0]} but the video started at "
                f"{self.video_size[1]}x{self.video_size[0]}; every frame of a video must have the same size."
            )
        added = self._new_objects(image, new_boxes, new_object_ids) if new_boxes is not None else []
        self.video_size = size
        self.frame_idx += 1
        tracked = list(self._objects.values())
        if tracked:
            self._track(image, tracked)
            self._update_memory(image, tracked)
        for obj in added:
            self._objects[obj.object_id] = obj
            self._next_object_id = max(self._next_object_id, obj.object_id + 1)
        objects = list(self._objects.values())
        return ODTrackTrackingOutput(
            frame_idx=self.frame_idx,
            object_ids=[obj.object_id for obj in objects],
            boxes=torch.tensor([obj.box for obj in objects], dtype=torch.float64).reshape(-1, 4),
            scores=torch.tensor([obj.score for obj in objects], dtype=torch.float32),
        )

    def propagate(
        self,
        frames: Iterable[Any],
        boxes: Sequence[Sequence[float]] | None = None,
        object_ids: Sequence[int] | None = None,
    ) -> Iterator[ODTrackTrackingOutput]:
        """Track through ``frames`` lazily, adding ``boxes`` on the first of them; yields one output per frame."""
        for index, frame in enumerate(frames):
            yield self.track(frame, boxes if index == 0 else None, object_ids if index == 0 else None)

    # ----------------------------------------------------------------------------------------------
    def _get(self, object_id: int) -> _TrackedObject:
        if object_id not in self._objects:
            raise ValueError(f"Unknown object id {object_id!r}; tracked ids are {self.object_ids}.")
        return self._objects[object_id]

    def _crops(self, image: np.ndarray | torch.Tensor, boxes: Any, mode: str, **kwargs) -> Any:
        """The processor's crops of one prepared frame with this session's crop backend (see `ODTrackProcessor`)."""
        return self.processor.crop_frame(image, boxes, mode, crop_backend=self.crop_backend, **kwargs)

    def _new_objects(
        self, image: np.ndarray | torch.Tensor, boxes: Any, object_ids: Sequence[int] | None
    ) -> list[_TrackedObject]:
        crops = self._crops(image, boxes, "template", normalize=False)
        count = len(crops["target_boxes"])
        if object_ids is None:
            object_ids = list(range(self._next_object_id, self._next_object_id + count))
        object_ids = [int(object_id) for object_id in object_ids]
        if len(object_ids) != count:
            raise ValueError(f"Got {count} new boxes but {len(object_ids)} object ids; give one id per box.")
        repeated = {object_id for object_id in object_ids if object_ids.count(object_id) > 1}
        clashes = sorted(set(object_ids) & set(self._objects) | repeated)
        if clashes:
            raise ValueError(f"Object ids {clashes} are already in use or repeated; give every object its own id.")
        templates = crops["pixel_values"].to(self.state_device)
        return [
            _TrackedObject(
                object_id=object_id,
                box=box.tolist(),
                templates={0: template.clone()},
            )
            for object_id, box, template in zip(object_ids, crops["target_boxes"], templates)
        ]

    def _track(self, image: np.ndarray | torch.Tensor, objects: list[_TrackedObject]) -> None:
        search = self._crops(image, [obj.box for obj in objects], "search", device=self.inference_device)
        selections, groups = [], {}
        horizon = self.model.config.temporal_token_horizon
        refresh = self.model.config.template_refresh_interval
        for position, obj in enumerate(objects):
            obj.frames_tracked += 1
            if horizon is not None and obj.frames_tracked % horizon == 0:
                obj.temporal_token = None
            if (obj.frames_tracked - 1) % refresh == 0:
                obj.selection = self.template_policy.select(obj.frames_tracked, obj.templates)
            selections.append(obj.selection)
            # a forward needs one template count, and a temporal token for all objects or for none
            groups.setdefault((len(selections[-1]), obj.temporal_token is None), []).append(position)
        for positions in groups.values():
            index = torch.tensor(positions)
            with self._autocast():
                outputs = self._forward(
                    pixel_values=search["pixel_values"][index].to(self.inference_device, self.model.dtype),
                    temporal_token=None if objects[positions[0]].temporal_token is None else torch.cat(
                        [objects[p].temporal_token for p in positions]
                    ),
                    **self._template_inputs(objects, positions, selections),
                )
            result = self.processor.post_process_object_tracking(
                outputs,
                search["target_boxes"][index],
                search["resize_factors"][index],
                search["image_sizes"][index],
                score_map_window=self.score_map_window,
            )
            for row, position in enumerate(positions):
                obj = objects[position]
                obj.box = result["boxes"][row].tolist()
                obj.score = float(result["scores"][row])
                obj.temporal_token = outputs.temporal_token[row : row + 1]

    def _int8_model(self, model: "ODTrackModel") -> "ODTrackModel":
        if self.inference_device.type != "cpu":
            raise ValueError(
                f"dtype=torch.qint8 (dynamic int8 linear layers) runs on the CPU only, not on "
                f"{self.inference_device}; use torch.bfloat16 or torch.float16 autocast there."
            )
        if not isinstance(model, torch.nn.Module):
            raise ValueError(f"dtype=torch.qint8 quantises a PyTorch model, not a {type(model).__name__}.")
        return quantize_linear_layers(model)

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype in (self.model.dtype, torch.qint8):
            return contextlib.nullcontext()
        return torch.autocast(self.inference_device.type, dtype=self.dtype)

    def _template_crops(
        self, objects: list[_TrackedObject], positions: list[int], selections: list[list[int]]
    ) -> torch.Tensor:
        crops = torch.stack([torch.stack([objects[p].templates[k] for k in selections[p]]) for p in positions])
        return self.processor.normalize_crops(crops.to(self.inference_device)).to(self.model.dtype)

    def _template_inputs(
        self, objects: list[_TrackedObject], positions: list[int], selections: list[list[int]]
    ) -> dict[str, Any]:
        """The model's template argument for a group: the crops, or (separate attention) a template
        cache, re-encoded only for the objects whose template selection changed. Called under autocast."""
        if not self.use_template_cache:
            return {"template_pixel_values": self._template_crops(objects, positions, selections)}
        stale = [p for p in positions if objects[p].cached_selection != selections[p]]
        if stale:
            caches = self._encode_templates(self._template_crops(objects, stale, selections)).split()
            for position, cache in zip(stale, caches):
                objects[position].template_cache, objects[position].cached_selection = cache, selections[position]
        return {"template_cache": ODTrackTemplateCache.concatenate([objects[p].template_cache for p in positions])}

    def _update_memory(self, image: np.ndarray | torch.Tensor, objects: list[_TrackedObject]) -> None:
        # every policy stores the newest template: it is the upper end of what later frames choose from
        crops = self._crops(image, [obj.box for obj in objects], "template", normalize=False)
        # between refreshes the held selection stays stored even where the policy alone would drop it
        holds = self.model.config.template_refresh_interval > 1
        for obj, crop in zip(objects, crops["pixel_values"].to(self.state_device)):
            obj.templates[obj.frames_tracked] = crop.clone()  # own storage: objects drop crops independently
            kept = set(self.template_policy.kept(obj.templates, obj.frames_tracked))
            if holds:
                kept |= set(obj.selection)
            for index in [k for k in obj.templates if k not in kept]:
                del obj.templates[index]


__all__ = [
    "DEFAULT_MAX_TEMPLATES",
    "ODTrackInferenceSession",
    "ODTrackTrackingOutput",
    "TemplateMemoryPolicy",
    "cpu_has_native_bf16",
    "default_inference_dtype",
]
