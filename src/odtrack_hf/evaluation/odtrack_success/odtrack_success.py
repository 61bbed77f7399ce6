"""`evaluate` metric for single-object tracking: success AUC, precision, normalised precision, AO, SR0.5, SR0.75.

A thin wrapper of :func:`odtrack_hf.evaluation.metrics.evaluate_tracking`. ``evaluate`` copies this file on its
own into its module cache, so it imports the installed ``odtrack_hf`` package absolutely and holds no maths.
Load it offline by path::

    import evaluate
    from odtrack_hf.evaluation import METRIC_MODULE_PATH
    metric = evaluate.load(METRIC_MODULE_PATH)
"""

import datasets
import evaluate

from odtrack_hf.evaluation.metrics import SCORE_KEYS, evaluate_tracking

_DESCRIPTION = """\
Single-object tracking scores, one example per video sequence. Under the default convention ("odtrack", the
official ODTrack / pytracking analysis): frame 0 is replaced by the ground truth, frames without a valid visible
target count as failures, predictions are truncated to integers as the official result files are, and every
rate is averaged over sequences. AUC is the mean of the 21-point success curve (IoU > 0, 0.05, ..., 1.0);
precision is the fraction of frames with centre error <= 20 px; normalised precision divides centres by the
ground-truth size and reads 0.20; AO / SR0.5 / SR0.75 follow GOT-10k under convention="got10k". All in percent.
"""

_CITATION = """\
@inproceedings{zheng2024odtrack,
  title={ODTrack: Online Dense Temporal Token Learning for Visual Tracking},
  author={Zheng, Yaozong and Zhong, Bineng and Liang, Qihua and Mo, Zhiyi and Zhang, Shengping and Li, Xianxian},
  booktitle={AAAI},
  year={2024}
}
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: one list of [x, y, w, h] boxes per sequence, one box per frame (frame 0 included).
    references: the ground-truth boxes, same layout; NaN rows are allowed only with dataset="uav" or
        convention="got10k".
    visible: optional, one list of bools per sequence (False where the target is absent).
    sequence_names: optional names used in error messages and in `per_sequence` (default "0", "1", ...).
    convention: "odtrack" (default), "pytracking" (the same) or "got10k".
    dataset: pytracking dataset name; "lasot" and "uav" change how invalid frames count.
    truncate: truncate predictions to integers first (default: True for "odtrack", False for "got10k").
Returns:
    auc, precision, norm_precision, ao, sr50, sr75: floats in percent;
    success_curve, precision_curve, norm_precision_curve: lists in percent.
Examples:
    >>> metric = evaluate.load(METRIC_MODULE_PATH)
    >>> boxes = [[10.0, 10.0, 20.0, 20.0]] * 3
    >>> round(metric.compute(predictions=[boxes], references=[boxes])["auc"], 2)
    95.24
"""

_BOXES = datasets.List(datasets.List(datasets.Value("float64"), length=4))
_CURVE_KEYS = ("success_curve", "precision_curve", "norm_precision_curve")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class OdtrackSuccess(evaluate.Metric):
    """Tracking success / precision scores computed by ``odtrack_hf.evaluation.metrics.evaluate_tracking``."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": _BOXES, "references": _BOXES}),
            reference_urls=["https://github.com/GXNU-ZhongLab/ODTrack", "https://github.com/got-10k/toolkit"],
        )

    def _compute(
        self,
        predictions: list[list[list[float]]],
        references: list[list[list[float]]],
        visible: list[list[bool]] | None = None,
        sequence_names: list[str] | None = None,
        convention: str = "odtrack",
        dataset: str | None = None,
        truncate: bool | None = None,
    ) -> dict[str, float | list[float]]:
        """Score the added sequences with ``evaluate_tracking``; see the module's inputs description."""
        if sequence_names is None:
            names = [str(index) for index in range(len(references))]
        else:
            names = [str(name) for name in sequence_names]
            if len(names) != len(references) or len(set(names)) != len(names):
                raise ValueError(f"Expected {len(references)} distinct sequence_names, got {names[:10]}.")
        if visible is not None and len(visible) != len(references):
            raise ValueError(f"Expected one visibility list per sequence ({len(references)}), got {len(visible)}.")
        result = evaluate_tracking(
            dict(zip(names, predictions, strict=True)),
            dict(zip(names, references, strict=True)),
            None if visible is None else dict(zip(names, visible, strict=True)),
            convention=convention,
            dataset=dataset,
            truncate=truncate,
        )
        return {
            **{key: result[key] for key in SCORE_KEYS},
            **{key: result[key].tolist() for key in _CURVE_KEYS},
        }
