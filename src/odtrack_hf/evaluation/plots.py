"""Success and precision plots (PNG, matplotlib Agg) of one or several trackers.

Each plot takes ``{tracker name: result}``, where a result is the dict returned by
:func:`odtrack_hf.evaluation.metrics.evaluate_tracking` (or any mapping with the same curve and score keys), so
a runner can overlay other trackers' result folders scored with the same function. Legends are sorted by score,
best first, as pytracking and the got10k toolkit do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

TrackerResults = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class _PlotSpec:
    thresholds: str  # result key of the x values
    curve: str  # result key of the y values (percent)
    score: str  # result key of the legend score
    label: str
    x_label: str
    y_label: str
    title: str


_PLOTS: dict[str, _PlotSpec] = {
    "success": _PlotSpec(
        "iou_thresholds", "success_curve", "auc", "AUC", "Overlap threshold", "Success rate [%]", "Success plot"
    ),
    "precision": _PlotSpec(
        "pixel_thresholds",
        "precision_curve",
        "precision",
        "P@20",
        "Location error threshold [px]",
        "Precision [%]",
        "Precision plot",
    ),
    "norm_precision": _PlotSpec(
        "norm_thresholds",
        "norm_precision_curve",
        "norm_precision",
        "P_norm@0.2",
        "Normalized location error threshold",
        "Normalized precision [%]",
        "Normalized precision plot",
    ),
}


def plot_curves(
    results: TrackerResults, kind: str, path: str | PathLike[str] | None = None, title: str | None = None
) -> Figure:
    """Draw one plot of ``kind`` (``"success"``, ``"precision"`` or ``"norm_precision"``) for every tracker.

    Args:
        results: tracker name → result of ``evaluate_tracking``.
        kind: which curve to draw.
        path: where to write the PNG (parent folders are created); ``None`` only builds the figure.
        title: plot title; defaults to the kind's name.

    Returns:
        The matplotlib figure (not registered with pyplot, so it needs no closing).
    """
    if kind not in _PLOTS:
        raise ValueError(f"Unknown plot kind {kind!r}; expected one of {tuple(_PLOTS)}.")
    if not results:
        raise ValueError("results is empty: nothing to plot.")
    spec = _PLOTS[kind]

    figure = Figure(figsize=(6.0, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    ranked = sorted(results.items(), key=lambda item: item[1][spec.score], reverse=True)
    for name, result in ranked:
        label = f"{name} [{spec.label} {result[spec.score]:.1f}]"
        axes.plot(result[spec.thresholds], result[spec.curve], linewidth=1.8, label=label)
    thresholds = ranked[0][1][spec.thresholds]
    axes.set(
        xlabel=spec.x_label,
        ylabel=spec.y_label,
        title=title or spec.title,
        xlim=(thresholds[0], thresholds[-1]),
        ylim=(0, 100),
    )
    axes.grid(True, linestyle=":")
    axes.legend(loc="lower left" if kind == "success" else "lower right", fontsize="small")
    figure.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=150)
    return figure


def plot_success(results: TrackerResults, path: str | PathLike[str] | None = None, title: str | None = None) -> Figure:
    """Success plot: success rate against IoU threshold, legend with AUC. See :func:`plot_curves`."""
    return plot_curves(results, "success", path, title)


def plot_precision(
    results: TrackerResults,
    path: str | PathLike[str] | None = None,
    title: str | None = None,
    normalized: bool = False,
) -> Figure:
    """Precision plot (legend with P@20), or the normalised-precision plot if ``normalized``.

    See :func:`plot_curves`.
    """
    return plot_curves(results, "norm_precision" if normalized else "precision", path, title)


def save_plots(results: TrackerResults, output_dir: str | PathLike[str], title: str | None = None) -> dict[str, Path]:
    """Write ``success.png``, ``precision.png`` and ``norm_precision.png`` into ``output_dir``.

    Args:
        results: tracker name → result of ``evaluate_tracking``.
        output_dir: folder for the PNGs (created if needed).
        title: prefix of each plot title, e.g. the benchmark name.

    Returns:
        Plot kind → path of the written PNG.
    """
    paths = {}
    for kind, spec in _PLOTS.items():
        paths[kind] = Path(output_dir) / f"{kind}.png"
        plot_curves(results, kind, paths[kind], f"{title}: {spec.title}" if title else None)
    return paths


__all__ = ["plot_curves", "plot_precision", "plot_success", "save_plots"]
