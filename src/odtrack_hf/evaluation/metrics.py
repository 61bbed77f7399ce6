"""Single-object tracking benchmark metrics: success AUC, precision, normalised precision, GOT-10k AO / SR.

Pure numpy. Boxes are ``[x, y, w, h]`` rows (top-left corner, width, height) in pixels, one row per frame.

Two families of conventions are implemented (``docs/evaluation.md`` has the side-by-side table):

* ``"odtrack"``: the official ODTrack analysis, which is pytracking's ``lib/test/analysis/extract_results.py``
  unchanged (docs/official-implementation.md, "Evaluation"). ``"pytracking"`` is an alias of it. Frame 0 is
  replaced by the ground truth and counted, invalid frames count as failures (with the normalised-precision
  quirk), zero-size predictions are replaced by the previous one, every rate is a per-sequence rate averaged
  over sequences.
  Predictions are truncated to integers first, as the official tracker writes them with ``astype(int)``.
* ``"got10k"``: the GOT-10k toolkit (``got10k`` package). Success / precision curves follow
  ``ExperimentOTB`` (frame 0 replaced by the ground truth, frames without a visible target left out,
  sequence-averaged); AO / SR0.5 / SR0.75 follow ``ExperimentGOT10k`` (frame 0 and absent frames left out,
  IoUs pooled over all frames of all sequences).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

Convention = Literal["odtrack", "pytracking", "got10k"]
CONVENTIONS: tuple[str, ...] = ("odtrack", "pytracking", "got10k")

# 0, 0.05, ..., 1.0 as np.linspace / the got10k toolkit build them. pytracking builds them with
# torch.arange, which (depending on the torch version) puts 0.65 and 0.75 one ulp higher; that only
# matters for an IoU equal to that next double, so the thresholds coincide in practice.
IOU_THRESHOLDS: NDArray[np.float64] = np.linspace(0.0, 1.0, 21)
PIXEL_THRESHOLDS: NDArray[np.float64] = np.arange(51, dtype=np.float64)
NORM_THRESHOLDS: NDArray[np.float64] = np.arange(51, dtype=np.float64) / 100.0
# Indices of the reported points: P at 20 px, P_norm at 0.20, SR / OP at IoU 0.5 and 0.75.
PRECISION_INDEX = 20
SR50_INDEX = 10
SR75_INDEX = 15

SCORE_KEYS: tuple[str, ...] = ("auc", "precision", "norm_precision", "ao", "sr50", "sr75")


def resolve_convention(convention: str) -> str:
    """Return the canonical convention name, ``"odtrack"`` or ``"got10k"``.

    ``"pytracking"`` maps to ``"odtrack"``: the official ODTrack analysis is pytracking's code unchanged.

    Raises:
        ValueError: for an unknown name.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"Unknown convention {convention!r}; expected one of {CONVENTIONS}.")
    return "odtrack" if convention == "pytracking" else convention


def check_boxes(boxes: ArrayLike, where: str) -> NDArray[np.float64]:
    """Check predicted boxes and return them as a float64 ``(N, 4)`` array.

    Args:
        boxes: ``(N, 4)`` ``[x, y, w, h]`` rows.
        where: what the boxes are (a sequence or a file), used in error messages.

    Raises:
        ValueError: if the shape is not ``(N, 4)``, or a row holds NaN or a negative width / height.
            The message names ``where`` and the 1-based line.
    """
    array = np.asarray(boxes, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"{where}: expected an (N, 4) array of [x, y, w, h] boxes, got shape {array.shape}.")
    bad_rows = np.flatnonzero(np.isnan(array).any(axis=1) | (array[:, 2:] < 0).any(axis=1))
    if bad_rows.size:
        row = int(bad_rows[0])
        problem = "NaN" if np.isnan(array[row]).any() else "a negative width or height"
        raise ValueError(f"{where}, line {row + 1}: {problem} in box {array[row].tolist()}.")
    return array


_FIELD_SEPARATOR = re.compile(r"\s*,\s*|\s+")


def read_results(path: str | PathLike[str]) -> NDArray[np.float64]:
    """Read a tracking result file: one ``x,y,w,h`` line per frame, separated by commas, tabs or spaces.

    Trailing empty lines are ignored; an empty line followed by more boxes is an error, because it would
    shift every later frame by one.

    Returns:
        A float64 ``(N, 4)`` array.

    Raises:
        ValueError: naming the file and the 1-based line, for a line without exactly four numbers, a NaN,
            a negative width or height, or an empty line inside the file.
    """
    rows: list[list[float]] = []
    empty_line = 0
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            text = line.strip()
            if not text:
                empty_line = empty_line or line_number
                continue
            if empty_line:
                raise ValueError(f"{path}, line {empty_line}: empty line before the end of the file.")
            fields = _FIELD_SEPARATOR.split(text)
            try:
                values = [float(field) for field in fields]
            except ValueError:
                raise ValueError(f"{path}, line {line_number}: not a number in {text!r}.") from None
            if len(values) != 4:
                raise ValueError(f"{path}, line {line_number}: expected 4 values x,y,w,h, got {len(values)}.")
            rows.append(values)
    return check_boxes(np.array(rows, dtype=np.float64).reshape(-1, 4), str(path))


def _clip_to_image(boxes: NDArray[np.float64], image_size: tuple[float, float]) -> NDArray[np.float64]:
    # got10k rect_iou(bound=...): clip x, y to the image, then w, h to what is left of it.
    width, height = image_size
    x = np.clip(boxes[..., 0], 0, width)
    y = np.clip(boxes[..., 1], 0, height)
    w = np.clip(boxes[..., 2], 0, width - x)
    h = np.clip(boxes[..., 3], 0, height - y)
    return np.stack([x, y, w, h], axis=-1)


def box_iou(
    boxes1: ArrayLike,
    boxes2: ArrayLike,
    convention: Convention = "odtrack",
    image_size: tuple[float, float] | None = None,
) -> NDArray[np.float64]:
    """Per-frame IoU of paired ``[x, y, w, h]`` boxes.

    * ``"odtrack"`` / ``"pytracking"``: inclusive pixels, ``br = xy + wh - 1``, intersection side
      ``max(br - tl + 1, 0)``, union ``w1*h1 + w2*h2 - inter``. Algebraically this is the continuous
      IoU; it differs from ``"got10k"`` only in rounding and in the two points below.
    * ``"got10k"``: continuous corners ``xy + wh``, union plus ``eps`` (float64 machine epsilon, which
      matters only for boxes of area ~1e-16 or less), result clipped to ``[0, 1]``, and optionally both
      boxes clipped to ``image_size = (width, height)`` first, as ``ExperimentGOT10k`` does.

    Args:
        boxes1, boxes2: arrays of shape ``(..., 4)``.
        convention: see above.
        image_size: ``(width, height)``; ``"got10k"`` only.

    Returns:
        Array of shape ``(...)``. With ``"odtrack"`` a pair of empty boxes gives NaN (0 / 0).
    """
    convention = resolve_convention(convention)
    first = np.asarray(boxes1, dtype=np.float64)
    second = np.asarray(boxes2, dtype=np.float64)
    if convention == "odtrack":
        if image_size is not None:
            raise ValueError("image_size is only used by convention='got10k' (pytracking does not clip boxes).")
        top_left = np.maximum(first[..., :2], second[..., :2])
        bottom_right = np.minimum(first[..., :2] + first[..., 2:] - 1.0, second[..., :2] + second[..., 2:] - 1.0)
        intersection = np.prod(np.clip(bottom_right - top_left + 1.0, 0, None), axis=-1)
        union = np.prod(first[..., 2:], axis=-1) + np.prod(second[..., 2:], axis=-1) - intersection
        with np.errstate(invalid="ignore", divide="ignore"):
            return intersection / union
    if image_size is not None:
        first, second = _clip_to_image(first, image_size), _clip_to_image(second, image_size)
    top_left = np.maximum(first[..., :2], second[..., :2])
    bottom_right = np.minimum(first[..., :2] + first[..., 2:], second[..., :2] + second[..., 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    union = np.prod(first[..., 2:], axis=-1) + np.prod(second[..., 2:], axis=-1) - intersection
    return np.clip(intersection / (union + np.finfo(np.float64).eps), 0.0, 1.0)


def center_errors(predictions: ArrayLike, ground_truth: ArrayLike, normalized: bool = False) -> NDArray[np.float64]:
    """Per-frame Euclidean distance between box centres, with centre ``= xy + (wh - 1) / 2``.

    The same in every convention (pytracking ``calc_err_center``, got10k ``center_error``).

    Args:
        predictions, ground_truth: arrays of shape ``(..., 4)``.
        normalized: divide both centres by the **ground-truth** width and height per axis first
            (pytracking's normalised precision); a zero-size ground truth gives inf or NaN.

    Returns:
        Array of shape ``(...)``, in pixels, or in ground-truth box units if ``normalized``.
    """
    predicted = np.asarray(predictions, dtype=np.float64)
    reference = np.asarray(ground_truth, dtype=np.float64)
    predicted_center = predicted[..., :2] + 0.5 * (predicted[..., 2:] - 1.0)
    reference_center = reference[..., :2] + 0.5 * (reference[..., 2:] - 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if normalized:
            predicted_center = predicted_center / reference[..., 2:]
            reference_center = reference_center / reference[..., 2:]
        return np.sqrt(np.sum((predicted_center - reference_center) ** 2, axis=-1))


def success_curve(ious: ArrayLike, thresholds: ArrayLike = IOU_THRESHOLDS) -> NDArray[np.float64]:
    """Fraction of frames with IoU strictly greater than each threshold (``>``, so IoU 1 fails at 1.0).

    Frames encoded with IoU -1 (pytracking's invalid frames) fail at every threshold. An empty input gives NaN.
    """
    values = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    limits = np.asarray(thresholds, dtype=np.float64).reshape(1, -1)
    if values.size == 0:
        return np.full(limits.shape[1], np.nan)
    return np.mean(values > limits, axis=0)


def precision_curve(errors: ArrayLike, thresholds: ArrayLike = PIXEL_THRESHOLDS) -> NDArray[np.float64]:
    """Fraction of frames with centre error at most each threshold (``<=``).

    Use ``PIXEL_THRESHOLDS`` (0..50 px) for precision and ``NORM_THRESHOLDS`` (0..0.50) for normalised
    precision. Errors of +inf fail and errors of -1 (pytracking's quirk) succeed at every threshold.
    An empty input gives NaN.
    """
    values = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    limits = np.asarray(thresholds, dtype=np.float64).reshape(1, -1)
    if values.size == 0:
        return np.full(limits.shape[1], np.nan)
    return np.mean(values <= limits, axis=0)


@dataclass
class _SequenceScores:
    """Per-sequence rates as fractions; ``ao_ious`` are the IoUs that AO averages (and GOT-10k pools)."""

    success: NDArray[np.float64]
    precision: NDArray[np.float64]
    norm_precision: NDArray[np.float64]
    sr50: float
    sr75: float
    ao_ious: NDArray[np.float64]
    num_frames: int
    num_valid: int

    @property
    def ao(self) -> float:
        return float(np.mean(self.ao_ious)) if self.ao_ious.size else np.nan


def _fit_length(
    predictions: NDArray[np.float64], num_frames: int, name: str, convention: str, dataset: str, allowed: bool
) -> NDArray[np.float64]:
    """Apply pytracking's length rules or raise; returns predictions truncated (padding happens later)."""
    count = len(predictions)
    if count == num_frames:
        return predictions
    line = f"line {num_frames + 1} has no ground truth" if count > num_frames else f"line {count + 1} is missing"
    # pytracking pads a short result with zero boxes except on LaSOT; the got10k toolkit asserts equal lengths.
    if not allowed or convention == "got10k" or (dataset == "lasot" and count < num_frames):
        raise ValueError(
            f"sequence {name!r}: {count} predicted boxes for {num_frames} ground-truth frames ({line}). "
            "Check the result file; allow_length_mismatch=True applies pytracking's truncate / zero-pad rules."
        )
    return predictions[:num_frames]


def _score_odtrack(
    predictions: NDArray[np.float64], ground_truth: NDArray[np.float64], visible: NDArray[np.bool_], dataset: str
) -> _SequenceScores:
    """pytracking ``calc_seq_err_robust`` and the per-sequence part of ``extract_results``."""
    num_frames = len(ground_truth)
    count = len(predictions)
    # A zero-size prediction takes the previous (possibly itself replaced) one, except where the GT is NaN:
    # each frame reads the last earlier frame that is not replaced (frame 0 reads itself, then becomes the GT).
    replace = (predictions[:, 2] == 0) | (predictions[:, 3] == 0)
    replace &= ~np.isnan(ground_truth[:count]).any(axis=1)
    source = np.maximum.accumulate(np.where(replace, 0, np.arange(count)))
    predictions = np.concatenate([predictions[source], np.zeros((num_frames - count, 4))])
    predictions[0] = ground_truth[0]

    # NaN sizes compare False, so NaN annotations (uav) are invalid frames too.
    valid = (ground_truth[:, 2] > 0) & (ground_truth[:, 3] > 0) & visible
    ious = box_iou(predictions, ground_truth, "odtrack")
    errors = center_errors(predictions, ground_truth)
    norm_errors = center_errors(predictions, ground_truth, normalized=True)
    ious[~valid] = -1.0
    # -1 counts as a success in both precision curves: the uav exception and the normalised-precision quirk.
    errors[~valid] = -1.0 if dataset == "uav" else np.inf
    norm_errors[~valid] = -1.0
    if dataset == "lasot":
        errors[~visible] = np.inf
        norm_errors[~visible] = np.inf

    success = success_curve(ious)
    return _SequenceScores(
        success=success,
        precision=precision_curve(errors, PIXEL_THRESHOLDS),
        norm_precision=precision_curve(norm_errors, NORM_THRESHOLDS),
        sr50=float(success[SR50_INDEX]),
        sr75=float(success[SR75_INDEX]),
        ao_ious=ious[valid],
        num_frames=num_frames,
        num_valid=int(valid.sum()),
    )


def _got10k_ao_sr(ious: NDArray[np.float64]) -> tuple[float, float, float]:
    """GOT-10k AO, SR0.5 and SR0.75 (IoU > t) over the given frames; NaN when there are none."""
    if ious.size == 0:
        return np.nan, np.nan, np.nan
    return float(np.mean(ious)), float(np.mean(ious > 0.5)), float(np.mean(ious > 0.75))


def _score_got10k(
    predictions: NDArray[np.float64],
    ground_truth: NDArray[np.float64],
    visible: NDArray[np.bool_],
    image_size: tuple[float, float] | None,
) -> _SequenceScores:
    """got10k ``ExperimentOTB`` / ``ExperimentUAV123`` curves and ``ExperimentGOT10k`` AO / SR."""
    scored = ~np.isnan(ground_truth).any(axis=1) & visible
    curve_boxes = predictions.copy()
    curve_boxes[0] = ground_truth[0]
    ious = box_iou(curve_boxes[scored], ground_truth[scored], "got10k")
    errors = center_errors(curve_boxes[scored], ground_truth[scored])
    norm_errors = center_errors(curve_boxes[scored], ground_truth[scored], normalized=True)

    scored_after_first = scored.copy()
    scored_after_first[0] = False
    ao_ious = box_iou(predictions[scored_after_first], ground_truth[scored_after_first], "got10k", image_size)
    _, sr50, sr75 = _got10k_ao_sr(ao_ious)
    return _SequenceScores(
        success=success_curve(ious),
        precision=precision_curve(errors, PIXEL_THRESHOLDS),
        norm_precision=precision_curve(norm_errors, NORM_THRESHOLDS),
        sr50=sr50,
        sr75=sr75,
        ao_ious=ao_ious,
        num_frames=len(ground_truth),
        num_valid=int(scored.sum()),
    )


def _mean_over_sequences(rows: list[NDArray[np.float64]] | list[float]) -> NDArray[np.float64]:
    # Sequences with nothing to score (NaN) are left out of the average instead of making it NaN.
    stacked = np.asarray(rows, dtype=np.float64)
    kept = stacked[~np.isnan(stacked.reshape(len(stacked), -1)).any(axis=1)]
    return kept.mean(axis=0) if len(kept) else np.full(stacked.shape[1:], np.nan)


def _scores_in_percent(
    success: NDArray[np.float64],
    precision: NDArray[np.float64],
    norm_precision: NDArray[np.float64],
    ao: float,
    sr50: float,
    sr75: float,
) -> dict[str, Any]:
    return {
        "auc": float(np.mean(success) * 100),
        "precision": float(precision[PRECISION_INDEX] * 100),
        "norm_precision": float(norm_precision[PRECISION_INDEX] * 100),
        "ao": float(ao * 100),
        "sr50": float(sr50 * 100),
        "sr75": float(sr75 * 100),
        "success_curve": success * 100,
        "precision_curve": precision * 100,
        "norm_precision_curve": norm_precision * 100,
    }


def evaluate_tracking(
    predictions: Mapping[str, ArrayLike],
    ground_truth: Mapping[str, ArrayLike],
    visible: Mapping[str, ArrayLike] | None = None,
    convention: Convention = "odtrack",
    dataset: str | None = None,
    *,
    truncate: bool | None = None,
    image_sizes: Mapping[str, tuple[float, float]] | None = None,
    allow_length_mismatch: bool = False,
) -> dict[str, Any]:
    """Score one tracker on a benchmark: success AUC, precision, normalised precision, AO, SR0.5, SR0.75.

    Args:
        predictions: sequence name → ``(N, 4)`` predicted ``[x, y, w, h]`` boxes, one per frame
            (frame 0 included; every convention replaces or skips it).
        ground_truth: sequence name → ``(N, 4)`` annotated boxes. Every sequence here must have predictions.
        visible: sequence name → ``(N,)`` bools, False where the target is absent (LaSOT full occlusion or
            out of view, GOT-10k ``cover == 0``). A missing sequence counts as visible throughout.
        convention: ``"odtrack"`` (default, the official ODTrack analysis), ``"pytracking"`` (the same) or
            ``"got10k"``.
        dataset: pytracking dataset name; ``"lasot"`` and ``"uav"`` change how invalid frames count under
            ``"odtrack"`` (compared case-insensitively; ``"lasot_extension_subset"`` is *not* ``"lasot"``,
            as in the official code). Ignored by ``"got10k"``.
        truncate: truncate predictions toward zero first, as the saved result files of the official tracker
            are (``astype(int)``). Default: True for ``"odtrack"``, False for ``"got10k"``.
        image_sizes: sequence name → ``(width, height)``; ``"got10k"`` clips boxes to it for AO / SR, as
            ``ExperimentGOT10k`` does.
        allow_length_mismatch: with ``"odtrack"``, truncate longer results and zero-pad shorter ones
            (except on LaSOT) like pytracking, instead of raising.

    Returns:
        ``auc``, ``precision`` (at 20 px), ``norm_precision`` (at 0.20), ``ao``, ``sr50``, ``sr75``: floats in
        percent; ``success_curve`` (21), ``precision_curve`` (51), ``norm_precision_curve`` (51): arrays in
        percent at ``iou_thresholds``, ``pixel_thresholds``, ``norm_thresholds``; ``per_sequence``: name →
        the same scores and curves plus ``num_frames`` and ``num_valid`` (frames with a scorable target);
        ``convention`` and ``dataset``.

    Raises:
        ValueError: naming the sequence and the 1-based line, for a prediction with NaN or a negative size or
            with the wrong number of lines, and for NaN in the ground truth under ``"odtrack"`` (except
            ``dataset="uav"``); also for unknown or missing sequences.
    """
    convention = resolve_convention(convention)
    dataset_name = (dataset or "").lower()
    if truncate is None:
        truncate = convention == "odtrack"
    if image_sizes is not None and convention != "got10k":
        raise ValueError("image_sizes is only used by convention='got10k' (pytracking does not clip boxes).")
    if not ground_truth:
        raise ValueError("ground_truth is empty: nothing to evaluate.")
    unknown = sorted(set(predictions) - set(ground_truth))
    if unknown:
        raise ValueError(f"predictions for sequences without ground truth: {unknown[:5]}.")
    visible = visible or {}
    unknown = sorted(set(visible) - set(ground_truth))
    if unknown:
        raise ValueError(f"visibility for sequences without ground truth: {unknown[:5]}.")

    scores: dict[str, _SequenceScores] = {}
    for name, annotation in ground_truth.items():
        if name not in predictions:
            raise ValueError(f"sequence {name!r}: no predictions.")
        gt = np.asarray(annotation, dtype=np.float64)
        if gt.ndim != 2 or gt.shape[1] != 4 or len(gt) == 0:
            raise ValueError(f"sequence {name!r}: ground truth must be a non-empty (N, 4) array, got {gt.shape}.")
        nan_rows = np.flatnonzero(np.isnan(gt).any(axis=1))
        if convention == "odtrack" and dataset_name != "uav" and nan_rows.size:
            raise ValueError(f"sequence {name!r}, ground-truth line {nan_rows[0] + 1}: NaN (only 'uav' allows it).")
        target_visible = np.asarray(visible.get(name, np.ones(len(gt))), dtype=bool).reshape(-1)
        if len(target_visible) != len(gt):
            raise ValueError(
                f"sequence {name!r}: {len(target_visible)} visibility flags for {len(gt)} ground-truth frames."
            )
        boxes = check_boxes(predictions[name], f"sequence {name!r}")
        boxes = _fit_length(boxes, len(gt), name, convention, dataset_name, allow_length_mismatch)
        if truncate:
            boxes = np.trunc(boxes)
        if convention == "odtrack":
            scores[name] = _score_odtrack(boxes, gt, target_visible, dataset_name)
        else:
            size = None if image_sizes is None else image_sizes.get(name)
            scores[name] = _score_got10k(boxes, gt, target_visible, size)

    per_sequence = {}
    for name, seq in scores.items():
        entry = _scores_in_percent(seq.success, seq.precision, seq.norm_precision, seq.ao, seq.sr50, seq.sr75)
        per_sequence[name] = {**entry, "num_frames": seq.num_frames, "num_valid": seq.num_valid}

    success = _mean_over_sequences([seq.success for seq in scores.values()])
    if convention == "odtrack":
        ao = float(_mean_over_sequences([seq.ao for seq in scores.values()]))
        sr50, sr75 = float(success[SR50_INDEX]), float(success[SR75_INDEX])
    else:
        # GOT-10k pools the IoUs of all frames of all sequences: long sequences weigh more.
        ao, sr50, sr75 = _got10k_ao_sr(np.concatenate([seq.ao_ious for seq in scores.values()]))
    overall = _scores_in_percent(
        success,
        _mean_over_sequences([seq.precision for seq in scores.values()]),
        _mean_over_sequences([seq.norm_precision for seq in scores.values()]),
        ao,
        sr50,
        sr75,
    )
    return {
        **overall,
        "iou_thresholds": IOU_THRESHOLDS.copy(),
        "pixel_thresholds": PIXEL_THRESHOLDS.copy(),
        "norm_thresholds": NORM_THRESHOLDS.copy(),
        "per_sequence": per_sequence,
        "convention": convention,
        "dataset": dataset,
    }


__all__ = [
    "CONVENTIONS",
    "IOU_THRESHOLDS",
    "NORM_THRESHOLDS",
    "PIXEL_THRESHOLDS",
    "SCORE_KEYS",
    "Convention",
    "box_iou",
    "center_errors",
    "check_boxes",
    "evaluate_tracking",
    "precision_curve",
    "read_results",
    "resolve_convention",
    "success_curve",
]
