"""The attribute vocabulary, and the ground truth and tags measured on a rendered sequence."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .planning import SequencePlan
    from .rendering import FrameTruth

ATTRIBUTES = (
    "smooth_motion",
    "fast_motion",
    "scale_change",
    "aspect_change",
    "rotation",
    "partial_occlusion",
    "full_occlusion",
    "similar_distractors",
    "motion_blur",
    "illumination_change",
    "out_of_view",
    "small_target",
    "background_clutter",
)
# What the wide mix adds (`GenerationConfig.mix`); classic sequences keep the 13 above.
WIDE_ATTRIBUTES = (*ATTRIBUTES, "strong_illumination", "deformation", "camouflage", "distractor_crowd")


def vocabulary(mix: str) -> tuple[str, ...]:
    """The attributes a sequence of ``mix`` is tagged with."""
    return ATTRIBUTES if mix == "classic" else WIDE_ATTRIBUTES


# Below this visible fraction of its area the target counts as absent (absence.label = 1, cover 0).
ABSENT_BELOW = 0.01
# Thresholds that turn measured statistics into attribute tags (see realised_attributes).
FAST_MOTION_SIZES = 0.5  # centre moves >= 0.5 x object size between two frames
SMOOTH_MOTION_SIZES = 0.25  # every step <= 0.25 x object size
SCALE_CHANGE_RATIO = 1.5
ASPECT_CHANGE_RATIO = 1.4
ROTATION_DEGREES = 30.0
PARTIAL_OCCLUSION = 0.1  # at least 10 % of the in-frame object hidden by a layer in front
MOTION_BLUR_SIZES = 0.15  # blur streak >= 0.15 x object size (and >= 3 px)
ILLUMINATION_RATIO = 1.5
SMALL_TARGET_AREA = 0.01  # median object area < 1 % of the frame
CLUTTER_PATCHES = 8
STRONG_LIGHT_LOW = 0.4  # brightness on the target at or below 0.4 of normal (a quarter: 0.25) ...
STRONG_LIGHT_JUMP = 0.25  # ... or a jump of a quarter between two frames (flicker) ...
COLOUR_CAST = 1.35  # ... or colour channels apart by 1.35x
DEFORMATION_SIZES = 0.08  # bend >= 0.08 x object size
LOOKALIKES = 8
CROWD = 3  # distractors in view at once


def ground_truth(frames: list[FrameTruth], width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes xywh, absence, cover)`` per frame, in GOT-10k's conventions."""
    boxes, absence, cover = [], [], []
    for f in frames:
        clipped = np.array([max(f.box[0], 0), max(f.box[1], 0), min(f.box[2], width), min(f.box[3], height)])
        box = clipped if clipped[2] > clipped[0] and clipped[3] > clipped[1] else f.box
        boxes.append([box[0], box[1], box[2] - box[0], box[3] - box[1]])
        absent = f.visible < ABSENT_BELOW
        absence.append(int(absent))
        cover.append(0 if absent else int(np.clip(math.ceil(f.visible * 8 - 1e-6), 1, 8)))
    return np.array(boxes), np.array(absence), np.array(cover)


def measure_statistics(plan: SequencePlan, frames: list[FrameTruth]) -> dict[str, float | int]:
    """Measured per-sequence statistics from which the attribute tags follow."""
    times = np.arange(plan.num_frames, dtype=float)
    target = plan.layers[plan.target]
    sizes = np.array([f.size for f in frames])
    centres = np.array([(f.box[:2] + f.box[2:]) / 2 for f in frames])
    seen = np.array([f.visible >= ABSENT_BELOW for f in frames])
    both = seen[1:] & seen[:-1]
    steps = np.hypot(*np.diff(centres, axis=0).T) / ((sizes[1:] + sizes[:-1]) / 2)
    steps = steps[both] if both.any() else np.zeros(1)
    in_frame = np.array([f.in_frame for f in frames])
    visible = np.array([f.visible for f in frames])
    hidden = 1 - visible / np.maximum(in_frame, 1e-9)
    angles = np.degrees(target.angle(times))
    aspects = np.exp(target.log_aspect(times))
    gains = np.array([f.gain for f in frames])
    stats = {
        "max_step_sizes": round(float(steps.max()), 4),
        "scale_ratio": round(float(sizes.max() / sizes.min()), 4),
        "aspect_ratio": round(float(aspects.max() / aspects.min()), 4),
        "rotation_degrees": round(float(np.abs(angles - angles[0]).max()), 2),
        "max_occluded_fraction": round(float(hidden[in_frame >= 0.5].max(initial=0.0)), 4),
        "fully_occluded_frames": int(((in_frame >= 0.5) & (visible < ABSENT_BELOW)).sum()),
        "out_of_view_frames": int((in_frame < ABSENT_BELOW).sum()),
        "absent_frames": int((~seen).sum()),
        "max_blur_sizes": round(float(max(f.blur / f.size for f in frames)), 4),
        "max_blur_pixels": round(float(max(f.blur for f in frames)), 2),
        "illumination_ratio": round(float(gains.max() / gains.min()), 4),
        "median_area_fraction": round(float(np.median(sizes**2)) / (plan.width * plan.height), 5),
        "frames_with_distractors": int(sum(f.distractors_in_view > 0 for f in frames)),
        "clutter_patches": plan.clutter,
    }
    if plan.mix == "classic":  # classic sequences keep their exact files
        return stats
    casts = plan.lighting.max(axis=1) / plan.lighting.min(axis=1) if plan.lighting is not None else np.ones(1)
    bend = target.bend.pixels / target.size if target.bend is not None else 0.0
    return {
        **stats,
        "min_gain": round(float(gains.min()), 4),
        "max_gain_jump": round(float(np.abs(np.diff(gains)).max(initial=0.0) / gains.mean()), 4),
        "max_colour_cast": round(float(casts.max()), 4),
        "max_bend_sizes": round(float(bend), 4),
        "lookalikes": plan.lookalikes,
        "max_distractors_in_view": int(max(f.distractors_in_view for f in frames)),
    }


def realised_attributes(stats: dict[str, float | int]) -> list[str]:
    """The attributes a sequence really shows, from its measured statistics (the wide mix's too, where
    they were measured)."""
    fast = stats["max_step_sizes"] >= FAST_MOTION_SIZES
    tags = {
        "smooth_motion": stats["max_step_sizes"] <= SMOOTH_MOTION_SIZES,
        "fast_motion": fast,
        "scale_change": stats["scale_ratio"] >= SCALE_CHANGE_RATIO,
        "aspect_change": stats["aspect_ratio"] >= ASPECT_CHANGE_RATIO,
        "rotation": stats["rotation_degrees"] >= ROTATION_DEGREES,
        "partial_occlusion": stats["max_occluded_fraction"] >= PARTIAL_OCCLUSION,
        "full_occlusion": stats["fully_occluded_frames"] > 0,
        "similar_distractors": stats["frames_with_distractors"] > 0,
        "motion_blur": stats["max_blur_sizes"] >= MOTION_BLUR_SIZES and stats["max_blur_pixels"] >= 3,
        "illumination_change": stats["illumination_ratio"] >= ILLUMINATION_RATIO,
        "out_of_view": stats["out_of_view_frames"] > 0,
        "small_target": stats["median_area_fraction"] < SMALL_TARGET_AREA,
        "background_clutter": stats["clutter_patches"] >= CLUTTER_PATCHES,
    }
    if "min_gain" not in stats:
        return [name for name in ATTRIBUTES if tags[name]]
    tags["strong_illumination"] = (
        stats["min_gain"] <= STRONG_LIGHT_LOW
        or stats["max_gain_jump"] >= STRONG_LIGHT_JUMP
        or stats["max_colour_cast"] >= COLOUR_CAST
    )
    tags["deformation"] = stats["max_bend_sizes"] >= DEFORMATION_SIZES
    tags["camouflage"] = stats["lookalikes"] >= LOOKALIKES
    tags["distractor_crowd"] = stats["max_distractors_in_view"] >= CROWD
    return [name for name in WIDE_ATTRIBUTES if tags[name]]
