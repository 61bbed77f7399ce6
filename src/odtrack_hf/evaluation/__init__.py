"""Benchmark metrics for single-object tracking (official ODTrack / pytracking and GOT-10k conventions).

The maths lives in :mod:`odtrack_hf.evaluation.metrics`; :mod:`odtrack_hf.evaluation.plots` draws success and
precision plots (imported separately, it pulls in matplotlib); ``METRIC_MODULE_PATH`` is the folder of the
``evaluate`` metric module, for ``evaluate.load(METRIC_MODULE_PATH)``.
"""

from pathlib import Path

from .metrics import (
    CONVENTIONS,
    IOU_THRESHOLDS,
    NORM_THRESHOLDS,
    PIXEL_THRESHOLDS,
    SCORE_KEYS,
    box_iou,
    center_errors,
    check_boxes,
    evaluate_tracking,
    precision_curve,
    read_results,
    resolve_convention,
    success_curve,
)

METRIC_MODULE_PATH: str = str(Path(__file__).resolve().parent / "odtrack_success")

__all__ = [
    "CONVENTIONS",
    "IOU_THRESHOLDS",
    "METRIC_MODULE_PATH",
    "NORM_THRESHOLDS",
    "PIXEL_THRESHOLDS",
    "SCORE_KEYS",
    "box_iou",
    "center_errors",
    "check_boxes",
    "evaluate_tracking",
    "precision_curve",
    "read_results",
    "resolve_convention",
    "success_curve",
]
