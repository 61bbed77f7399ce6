"""Training clips as model inputs: crops, labels in crop coordinates, and batches
(docs/official-implementation.md, "Training clips and losses").

[`TrackingClipDataset`] turns sample index ``i`` into one clip: the [`CausalClipSampler`] picks the
frames, each frame is cropped around its jittered box with the project's one crop function
(``image_processing_odtrack.crop_and_resize``, the official ``sample_target``), the ground-truth box is
mapped into the search crops, and the crops are augmented and normalised. [`collate_clips`] stacks clips
into the batch ``ODTrackModel.forward`` takes.
"""

import logging

import numpy as np
import torch
from torchvision.ops import box_convert

from ..configuration_odtrack import ODTrackConfig
from ..image_processing_odtrack import crop_and_resize
from ..processing_odtrack import ODTrackProcessor
from .augment import (
    ClipAugmentation,
    box_to_crop,
    crop_has_content,
    flip_crop,
    jitter_box,
    to_grayscale,
    to_tensor_with_brightness,
)
from .sampling import CausalClipSampler, ClipSample

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 100  # consecutive rejected clips after which a sample gives up


class TrackingClipDataset(torch.utils.data.Dataset):
    r"""Map-style dataset of training clips: ``dataset[i]`` is a pure function of the sampler's seed, its
    rank and ``i``, so DataLoader workers, processes and resumed runs agree.

    A clip is re-drawn (with the next ``attempt`` of the same index) when:

    - a frame cannot be read (missing or corrupt file): logged and counted in ``unreadable_frames``;
    - the official validity check fails (a jittered box too small to crop, or a crop with no image on the
      token grid; docs/official-implementation.md, "Training clips and losses"): counted in ``rejected_samples``.

    Each item is a dict: ``template_pixel_values`` ``(T, 3, s, s)``, ``pixel_values`` ``(N, 3, S, S)``
    (normalised by the processor's image processor, as at inference), ``labels`` ``(N, 4)`` boxes
    ``(x1, y1, x2, y2)`` normalised to the search crop, and the two counters for this item. With
    ``teacher_search_size`` it also holds ``teacher_pixel_values`` ``(N, 3, S', S')``: the same search
    windows cropped at the teacher's size, with the same augmentation, so the labels fit both.

    Args:
        sampler: draws the frames of each clip.
        config: model config: crop sizes and factors, ``patch_size``.
        augmentation: jitter and photometric settings.
        processor: the processor saved with the trained model, whose normalisation the crops get (default:
            ``ODTrackProcessor.from_model_config(config)``).
        teacher_search_size: also crop every search window at this size, for a distillation teacher.
    """

    def __init__(
        self,
        sampler: CausalClipSampler,
        config: ODTrackConfig,
        augmentation: ClipAugmentation | None = None,
        processor: ODTrackProcessor | None = None,
        teacher_search_size: int | None = None,
    ):
        self.sampler = sampler
        self.teacher_search_size = teacher_search_size
        self.config = config
        self.augmentation = augmentation or ClipAugmentation()
        self.image_processor = (processor or ODTrackProcessor.from_model_config(config)).image_processor

    def __getitem__(self, index: int) -> dict:
        unreadable = rejected = 0
        for attempt in range(MAX_ATTEMPTS):
            rng = self.sampler.generator(index, attempt)
            clip = self.sampler.draw(rng)
            images = self._load_frames(clip)
            if images is None:
                unreadable += 1
                continue
            item = self.process(clip, images, rng)
            if item is None:
                rejected += 1
                continue
            item["unreadable_frames"], item["rejected_samples"] = unreadable, rejected
            return item
        raise ValueError(
            f"Sample {index}: {MAX_ATTEMPTS} clips in a row were unusable ({unreadable} with unreadable frames, "
            f"{rejected} rejected by the crop checks); check the frame files and boxes of the training data."
        )

    def _load_frames(self, clip: ClipSample) -> dict[int, np.ndarray] | None:
        images = {}
        for frame_id in sorted(set(clip.template_frames + clip.search_frames)):
            try:
                images[frame_id] = np.asarray(clip.sequence.load_frame(frame_id))
            except OSError as error:  # missing, truncated or undecodable file
                frame = clip.sequence.frames[frame_id]
                path = frame if isinstance(frame, str) else frame.get("path")
                logger.warning(
                    "Skipping a clip of %r: cannot read frame %d (%s): %s", clip.sequence.name, frame_id, path, error
                )
                return None
        return images

    def process(self, clip: ClipSample, images: dict[int, np.ndarray], rng: np.random.Generator) -> dict | None:
        """Crop, label and augment one clip; ``None`` when the official validity check rejects it.

        Draw order from ``rng``: grey, clip flip, then per crop (templates first) the box jitter, the
        brightness and, with ``flip_mode="crop"``, the crop's flip.
        """
        cfg, aug = self.config, self.augmentation
        grayscale = rng.random() < aug.grayscale_probability
        clip_flip = rng.random() < aug.flip_probability
        groups = (
            ("template_pixel_values", clip.template_frames, cfg.template_factor, cfg.template_size,
             aug.template_center_jitter, aug.template_scale_jitter),
            ("pixel_values", clip.search_frames, cfg.search_factor, cfg.search_size,
             aug.search_center_jitter, aug.search_scale_jitter),
        )  # fmt: skip
        item, labels, teacher_crops = {}, [], []
        for key, frame_ids, factor, size, center_jitter, scale_jitter in groups:
            crops = []
            for frame_id in frame_ids:
                image, box = images[frame_id], clip.sequence.boxes[frame_id]
                crop_box = jitter_box(box, center_jitter, scale_jitter, rng)
                try:
                    crop, window = crop_and_resize(image, crop_box, factor, size)
                except ValueError:  # jittered box too small for a 1-pixel crop (official step 3)
                    return None
                if not crop_has_content(window, image.shape[:2], size, cfg.patch_size):
                    return None
                label = box_to_crop(box, crop_box, window[2], size) if key == "pixel_values" else None
                # the teacher sees the same window at its own size; the label, normalised, fits both
                teacher = self.teacher_search_size if key == "pixel_values" else None
                versions = [crop] + ([crop_and_resize(image, crop_box, factor, teacher)[0]] if teacher else [])
                if grayscale:
                    versions = [to_grayscale(version) for version in versions]
                brightness = rng.uniform(1 - aug.brightness_jitter, 1 + aug.brightness_jitter)
                tensors = [to_tensor_with_brightness(version, brightness) for version in versions]
                flip = clip_flip if aug.flip_mode == "clip" else rng.random() < aug.flip_probability
                if flip:
                    flipped = [flip_crop(tensor, label) for tensor in tensors]
                    tensors, label = [tensor for tensor, _ in flipped], flipped[0][1]
                crops.append(tensors[0])
                teacher_crops.extend(tensors[1:])
                if label is not None:
                    labels.append(label)
            # brightness already scaled the crops to [0, 1]: normalise only
            ip = self.image_processor
            item[key] = ip.normalize(torch.stack(crops), ip.image_mean, ip.image_std)
        if teacher_crops:
            item["teacher_pixel_values"] = ip.normalize(torch.stack(teacher_crops), ip.image_mean, ip.image_std)
        item["labels"] = box_convert(torch.as_tensor(np.stack(labels), dtype=torch.float32), "xywh", "xyxy")
        return item


def collate_clips(items: list[dict]) -> dict:
    """Stack clips into a batch: ``template_pixel_values`` ``(B, T, 3, s, s)``, ``pixel_values``
    ``(B, N, 3, S, S)``, ``labels`` ``(B, N, 4)`` (and ``teacher_pixel_values`` where the clips have
    them); the counters are summed into ints."""
    keys = ("template_pixel_values", "pixel_values", "labels", "teacher_pixel_values")
    batch = {key: torch.stack([item[key] for item in items]) for key in keys if key in items[0]}
    for key in ("unreadable_frames", "rejected_samples"):
        batch[key] = sum(item[key] for item in items)
    return batch


__all__ = ["TrackingClipDataset", "collate_clips"]
