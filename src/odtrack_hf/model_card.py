"""Model cards: for converted official ODTrack weights (metadata, paper results and usage), and for models
trained with ``odtrack train`` (:func:`build_trained_model_card`).

``build_model_card(preset)`` returns a ``huggingface_hub.ModelCard`` whose YAML metadata carries the
library, tags, licence and a ``model-index`` with the paper's results for that checkpoint, and whose
body documents the weights, their conversion, usage with the ``object-tracking`` pipeline and the
licence situation. ``write_model_card`` writes it as ``README.md`` into a ``save_pretrained`` folder;
``validate_model_card`` re-reads a card with huggingface_hub's own parsers (``ModelCard.validate``
would need the network). The files in ``model_cards/`` are this module's output.

The numbers are the paper's (AAAI 2024, Tables 1, 2, 3 and 5), copied exactly; they were not
re-measured with odtrack-hf.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData
from huggingface_hub.repocard_data import eval_results_to_model_index, model_index_to_eval_results

UPSTREAM_URL = "https://github.com/GXNU-ZhongLab/ODTrack"
TAGS = ["object-tracking", "video", "odtrack", "visual-object-tracking", "single-object-tracking", "vision"]
TASK_TYPE = "object-tracking"
TASK_NAME = "Visual Object Tracking"
# The licence of the official code and weights is not known here: "other" plus a link to the upstream
# repository, where it must be checked (see the card's "Licence" section).
LICENSE = "other"
LICENSE_NAME = "odtrack-upstream"

CITATION = """\
@inproceedings{zheng2024odtrack,
  title={ODTrack: Online Dense Temporal Token Learning for Visual Tracking},
  author={Zheng, Yaozong and Zhong, Bineng and Liang, Qihua and Mo, Zhiyi and Zhang, Shengping and Li, Xianxian},
  booktitle={AAAI},
  year={2024}
}"""


@dataclass(frozen=True)
class Benchmark:
    """A benchmark of the paper: its metrics (model-index type, display name) and provenance."""

    name: str
    dataset_type: str
    table: str
    metrics: tuple[tuple[str, str], ...]
    training: str  # "full" (LaSOT + GOT-10k + COCO + TrackingNet) or "got10k" (GOT-10k train only)
    in_model_index: bool = True
    note: str = ""


_SUCCESS = (("auc", "AUC"), ("norm_precision", "P_Norm"), ("precision", "P"))
BENCHMARKS: tuple[Benchmark, ...] = (
    Benchmark("LaSOT", "lasot", "Table 2", _SUCCESS, "full"),
    Benchmark("TrackingNet", "trackingnet", "Table 2", _SUCCESS, "full"),
    Benchmark("LaSOT_ext", "lasot_ext", "Table 2", _SUCCESS, "full"),
    Benchmark("TNL2K", "tnl2k", "Table 5", (("auc", "AUC"),), "full"),
    Benchmark("OTB100", "otb100", "Table 5", (("auc", "AUC"),), "full"),
    Benchmark(
        "GOT-10k",
        "got10k",
        "Table 2",
        (("ao", "AO"), ("sr50", "SR0.5"), ("sr75", "SR0.75")),
        "got10k",
        note="trained on GOT-10k only (GOT-10k protocol)",
    ),
    Benchmark(
        "VOT2020",
        "vot2020",
        "Table 3",
        (("eao", "EAO"), ("accuracy", "Accuracy"), ("robustness", "Robustness")),
        "full",
        in_model_index=False,
        note="mask evaluation with Alpha-Refine as post-processing network, so not the tracker alone",
    ),
)

# Paper results, in the metric order of BENCHMARKS (percent; VOT2020 in [0, 1]).
PAPER_RESULTS: dict[str, dict[str, tuple[float, ...]]] = {
    "ODTrack-B": {
        "GOT-10k": (77.0, 87.9, 75.1),
        "LaSOT": (73.2, 83.2, 80.6),
        "TrackingNet": (85.1, 90.1, 84.9),
        "LaSOT_ext": (52.4, 63.9, 60.1),
        "VOT2020": (0.581, 0.764, 0.877),
        "TNL2K": (60.9,),
        "OTB100": (72.3,),
    },
    "ODTrack-L": {
        "GOT-10k": (78.2, 87.2, 77.3),
        "LaSOT": (74.0, 84.2, 82.3),
        "TrackingNet": (86.1, 91.0, 86.7),
        "LaSOT_ext": (53.9, 65.4, 61.7),
        "VOT2020": (0.605, 0.761, 0.902),
        "TNL2K": (61.7,),
        "OTB100": (72.4,),
    },
}


@dataclass(frozen=True)
class CheckpointInfo:
    """What is known about one official checkpoint (docs/official-implementation.md, "Models and presets")."""

    paper_name: str
    training: str
    official_config: str
    checkpoint_file: str
    backbone: str
    parameters: str
    training_data: str
    efficiency: str = ""
    known_discrepancies: str = ""


_FULL_DATA = "LaSOT, GOT-10k (the VOT-permitted train split), COCO 2017 and TrackingNet, ratio 1:1:1:1, 300 epochs"
_GOT10K_DATA = "GOT-10k train split only (the GOT-10k protocol), 100 epochs"
_VIT_B = "ViT-B/16 (12 blocks, width 768, 12 heads), initialised from MAE"
_VIT_L = "ViT-L/16 (24 blocks, width 1024, 16 heads), initialised from MAE"
_B_PARAMS = "92,826,501 (backbone 86,352,384, head 6,474,117)"
_L_PARAMS = "312,283,525 (backbone 304,039,936, head 8,243,589)"
_B_EFFICIENCY = "Paper Table 1: 92M parameters, 73G FLOPs, 32 fps on an RTX 2080Ti at 384 × 384."
_B_DISCREPANCIES = (
    "The upstream README reports LaSOT AUC 73.1 where the paper's Table 2 says 73.2, and a user measured 72.9 "
    "with the released weights (upstream issue #11)."
)

CHECKPOINTS: dict[str, CheckpointInfo] = {
    "odtrack-base": CheckpointInfo(
        "ODTrack-B", "full", "baseline.yaml", "ODTrack_ep0300.pth.tar", _VIT_B, _B_PARAMS, _FULL_DATA,
        _B_EFFICIENCY, _B_DISCREPANCIES,
    ),
    "odtrack-base-got10k": CheckpointInfo(
        "ODTrack-B", "got10k", "baseline_got.yaml", "ODTrack_ep0100.pth.tar", _VIT_B, _B_PARAMS, _GOT10K_DATA,
        _B_EFFICIENCY,
    ),
    "odtrack-large": CheckpointInfo(
        "ODTrack-L", "full", "baseline_large.yaml", "ODTrack_ep0300.pth.tar", _VIT_L, _L_PARAMS, _FULL_DATA,
    ),
    "odtrack-large-got10k": CheckpointInfo(
        "ODTrack-L", "got10k", "baseline_large_got.yaml", "ODTrack_ep0100.pth.tar", _VIT_L, _L_PARAMS, _GOT10K_DATA,
    ),
}
_TRAINING_DATASETS = {"full": ["LaSOT", "GOT-10k", "COCO", "TrackingNet"], "got10k": ["GOT-10k"]}

# The config fields that tell the presets with cards apart (see configuration_odtrack.PRESETS).
_PRESET_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "tracker_template_number", "attn_type")


def _checkpoint(preset: str) -> CheckpointInfo:
    info = CHECKPOINTS.get(preset)
    if info is None:
        raise ValueError(f"No model card for preset {preset!r}; cards exist for: {', '.join(CHECKPOINTS)}.")
    return info


def paper_eval_results(preset: str) -> list[EvalResult]:
    """The paper results that belong to this checkpoint, as ``EvalResult`` entries for the model-index."""
    info = _checkpoint(preset)
    results = []
    for benchmark in BENCHMARKS:
        if not benchmark.in_model_index or benchmark.training != info.training:
            continue
        values = PAPER_RESULTS[info.paper_name][benchmark.name]
        for (metric_type, metric_name), value in zip(benchmark.metrics, values, strict=True):
            results.append(
                EvalResult(
                    task_type=TASK_TYPE,
                    task_name=TASK_NAME,
                    dataset_type=benchmark.dataset_type,
                    dataset_name=benchmark.name,
                    dataset_split="test",
                    metric_type=metric_type,
                    metric_name=metric_name,
                    metric_value=value,
                )
            )
    return results


def _results_table(info: CheckpointInfo) -> str:
    presets = {c.training: preset for preset, c in CHECKPOINTS.items() if c.paper_name == info.paper_name}
    rows = ["| Benchmark | Metric | Score | Paper | Note |", "|---|---|---|---|---|"]
    for benchmark in BENCHMARKS:
        values = PAPER_RESULTS[info.paper_name][benchmark.name]
        other = "" if benchmark.training == info.training else f"other checkpoint ({presets[benchmark.training]})"
        note = "; ".join(part for part in (other, benchmark.note) if part)
        for (_, metric_name), value in zip(benchmark.metrics, values, strict=True):
            rows.append(f"| {benchmark.name} | {metric_name} | {value} | {benchmark.table} | {note} |")
    return "\n".join(rows)


def _body(preset: str, info: CheckpointInfo, model_id: str) -> str:
    got10k = info.training == "got10k"
    sections = [
        f"# {info.paper_name}{' (GOT-10k protocol)' if got10k else ''}: ODTrack converted for 🤗 transformers",
        "",
        "ODTrack (*Online Dense Temporal Token Learning for Visual Tracking*, Zheng et al., AAAI 2024) is a "
        "single-object tracker: given the box of a target on the first frame, it localises the target in every "
        "following frame. A ViT encoder attends jointly over reference frames, the current search frame and a "
        "temporal token that carries the target's trajectory from frame to frame.",
        "",
        f"These are the official **{info.paper_name}** weights (`{info.official_config}`, `{info.checkpoint_file}`) "
        f"converted to the odtrack-hf `ODTrackModel` format (preset `{preset}`). The conversion only renames "
        "tensors; the converter is tested for parity with outputs recorded from the official code on small, "
        "randomly initialised models. The benchmark numbers below are the paper's and were not re-measured "
        "with odtrack-hf.",
        "",
        "## Model details",
        "",
        f"- **Backbone:** {info.backbone}; CENTER head (score, offset and size maps); candidate elimination "
        "after blocks 3, 6 and 9 (keep ratio 0.7).",
        f"- **Parameters:** {info.parameters}.",
        "- **Inputs:** reference (template) crops of 192 × 192 px (factor 2.0 around the box) and a search crop of "
        "384 × 384 px (factor 5.0), ImageNet normalisation. At inference the template memory is frame 0 plus "
        f"{'4' if got10k else '3'} segment midpoints, as in the official tracker; odtrack-hf keeps at most 64 "
        "templates by default and, on long videos, takes the stored ones nearest to the official choice "
        "(`max_templates=None` keeps the official memory and selection).",
        f"- **Training data:** {info.training_data}.",
    ]
    if info.efficiency:
        sections.append(f"- **Efficiency:** {info.efficiency}")
    sections += [
        f"- **Upstream:** {UPSTREAM_URL}",
        "",
        "## Usage",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'tracker = pipeline(model="{model_id}", trust_remote_code=True)',
        'results = tracker("video.mp4", boxes=[[xmin, ymin, xmax, ymax]])  # the target on the first frame',
        'results[10]  # [{"object_id": 1, "score": ..., "box": {"xmin": ..., "ymin": ..., "xmax": ..., "ymax": ...}}]',
        "```",
        "",
        "The repository carries the odtrack-hf code of the model, processor and `object-tracking` pipeline; "
        "transformers requires `trust_remote_code=True` for a repository that names its own pipeline code, also "
        "when `odtrack-hf` is installed. That code needs `torchvision`, `av` and `opencv-python-headless`. "
        "`tracker.stream(frames, boxes=...)` yields results frame by frame for live sources.",
        "",
        "## Conversion",
        "",
        "The authors distribute the trained checkpoints through links (Google Drive) in the upstream repository. "
        "Convert one, then save the processor and the pipeline code next to the weights:",
        "",
        "```bash",
        f"odtrack convert {info.checkpoint_file} {preset} --preset {preset}",
        "python - <<'EOF'",
        "import odtrack_hf",
        "from transformers import pipeline",
        f'tracker = pipeline("object-tracking", model=odtrack_hf.model_folder("{preset}"), '
        "processor=odtrack_hf.ODTrackProcessor())",
        f'tracker.save_pretrained("{preset}")  # adds processor_config.json and the code for trust_remote_code',
        "EOF",
        f"odtrack card {preset} --preset {preset}  # writes this card as {preset}/README.md",
        f"hf upload <namespace>/{preset} {preset}",
        "```",
        "",
        "`ODTrackProcessor()` holds the official crop settings. `examples/convert_official_checkpoint.py` "
        "shows the same steps in Python and compares the converted model's outputs after reloading.",
        "",
        "## Results (paper)",
        "",
        f"{info.paper_name} in the paper; scores in percent except VOT2020. The metadata `model-index` lists the "
        "rows that belong to this checkpoint.",
        "",
        _results_table(info),
    ]
    if info.known_discrepancies:
        sections += ["", f"**Known discrepancies.** {info.known_discrepancies}"]
    sections += [
        "",
        "## Licence",
        "",
        "The licence of the official ODTrack code and weights is not recorded in the material odtrack-hf was "
        f"built from. What is known: the authors publish code and models at {UPSTREAM_URL}, and link the "
        "trained weights from there; that repository is a fork of OSTrack (botaoye/OSTrack), itself built on "
        "STARK and PyTracking. **Check the licence and terms in the upstream repository before using or "
        "redistributing these weights**; converting them does not change those terms. The metadata therefore "
        "says `license: other` and links to the upstream repository. The odtrack-hf code files in this "
        "repository are distributed under the odtrack-hf package licence (Apache-2.0).",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(sections)


def build_model_card(preset: str, repo_id: str | None = None, base_model: str | None = None) -> ModelCard:
    """The model card of the converted official checkpoint ``preset`` (``odtrack-base``, ``odtrack-large``,
    ``odtrack-base-got10k``, ``odtrack-large-got10k``).

    ``repo_id`` is used in the usage snippets (a placeholder otherwise); ``base_model`` is a Hub model id
    for derived models.
    """
    info = _checkpoint(preset)
    results = paper_eval_results(preset)
    data = ModelCardData(
        library_name="transformers",
        tags=list(TAGS),
        license=LICENSE,
        license_name=LICENSE_NAME,
        license_link=UPSTREAM_URL,
        datasets=list(_TRAINING_DATASETS[info.training]),
        metrics=list(dict.fromkeys(result.metric_type for result in results)),
        base_model=base_model,
        model_name=f"{info.paper_name}{' (GOT-10k)' if info.training == 'got10k' else ''}",
        eval_results=results,
    )
    model_id = repo_id or f"<namespace>/{preset}"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(preset, info, model_id)}")


def build_trained_model_card(
    *,
    origin: str,
    steps: int,
    steps_per_epoch: int,
    samples_per_epoch: int,
    datasets: Sequence[str],
    skipped_steps: int,
    unreadable_frames: int,
    rejected_samples: int,
) -> ModelCard:
    """The card ``odtrack train`` writes next to a model it trained: where the weights started (``origin``,
    e.g. "initialised at random"), the optimiser steps, the training data (one Markdown line each) and the
    counters of skipped updates and dropped clips. The intended use and evaluation are left for the author."""
    data = ModelCardData(library_name="transformers", tags=["odtrack", "visual-object-tracking", "odtrack-hf"])
    body = "\n".join(f"- {line}" for line in datasets)
    return ModelCard(
        f"""---
{data.to_yaml()}
---

# ODTrack model trained with odtrack-hf

An ODTrack tracker ({origin}), trained with `odtrack train` for {steps:,} optimiser steps
({steps_per_epoch:,} steps per epoch of {samples_per_epoch:,} clips).

Training data:
{body}

Skipped updates (non-finite loss or gradient): {skipped_steps}. Clips dropped for unreadable
frames: {unreadable_frames}; rejected by the crop check: {rejected_samples}.
The full training configuration is in `training_config.json`.

## Usage

```python
from transformers import pipeline
import odtrack_hf  # registers the model and the pipeline

tracker = pipeline("object-tracking", model=odtrack_hf.model_folder("<this folder>"))
```

Describe the intended use, the evaluation results and the limitations here before sharing the model.
"""
    )


def validate_model_card(path: str | Path) -> ModelCard:
    """Load a card with ``ModelCard.load`` and check its metadata offline; raises ``ValueError`` with every problem.

    Checks: the metadata parses (huggingface_hub raises on a malformed ``model-index``), it names the
    library, the tracking tags and a licence (with name and link when ``other``), and every model-index
    entry has a task, dataset and numeric metric and survives the huggingface_hub round trip
    ``eval_results_to_model_index`` → ``model_index_to_eval_results``.
    """
    card = ModelCard.load(path)
    data, problems = card.data, []
    if data.library_name != "transformers":
        problems.append(f"library_name is {data.library_name!r}, expected 'transformers'")
    missing_tags = {"object-tracking", "odtrack"} - set(data.tags or [])
    if missing_tags:
        problems.append(f"tags lack {sorted(missing_tags)}")
    if not data.license:
        problems.append("no license")
    elif data.license == "other" and not (data.license_name and data.license_link):
        problems.append("license 'other' needs license_name and license_link")
    if not data.eval_results:
        problems.append("no model-index results")
    for result in data.eval_results or []:
        if not (result.task_type and result.dataset_type and result.dataset_name and result.metric_type):
            problems.append(f"incomplete model-index entry {result}")
        if isinstance(result.metric_value, bool) or not isinstance(result.metric_value, (int, float)):
            problems.append(f"{result.dataset_name} {result.metric_type} is not a number: {result.metric_value!r}")
    if data.eval_results:
        name, parsed = model_index_to_eval_results(eval_results_to_model_index(data.model_name, data.eval_results))
        if name != data.model_name or parsed != data.eval_results:
            problems.append("the model-index does not survive a huggingface_hub round trip")
    if problems:
        raise ValueError(f"Invalid model card {path}: " + "; ".join(problems) + ".")
    return card


def preset_for_config(config: dict) -> str | None:
    """The card preset whose architecture and tracker settings match a saved ``config.json`` (or ``None``)."""
    from .configuration_odtrack import odtrack_preset

    if config.get("model_type") != "odtrack":
        return None
    for preset in CHECKPOINTS:
        reference = odtrack_preset(preset)
        if all(config.get(key) == getattr(reference, key) for key in _PRESET_KEYS):
            return preset
    return None


def write_model_card(
    save_dir: str | Path,
    preset: str | None = None,
    repo_id: str | None = None,
    base_model: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the card as ``README.md`` into a ``save_pretrained`` folder (or to ``save_dir`` if it ends in ``.md``).

    The preset defaults to the one matching the folder's ``config.json``; a preset that contradicts the
    config is an error, so a card never claims another model's results. Returns the written path.
    """
    if preset is not None:
        _checkpoint(preset)  # unknown presets fail before the config comparison
    save_dir = Path(save_dir)
    is_file = save_dir.suffix == ".md"
    path = save_dir if is_file else save_dir / "README.md"
    config_path = None if is_file else save_dir / "config.json"
    has_config = config_path is not None and config_path.is_file()
    matched = preset_for_config(json.loads(config_path.read_text())) if has_config else None
    if preset is None:
        if matched is None:
            raise ValueError(
                f"Cannot tell which official model {save_dir} holds; give the preset ({', '.join(CHECKPOINTS)})."
            )
        preset = matched
    elif has_config and matched != preset:
        raise ValueError(f"{config_path} does not match preset {preset!r} (it matches {matched or 'no preset'}).")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass overwrite=True (--overwrite) to replace it.")
    card = build_model_card(preset, repo_id=repo_id, base_model=base_model)
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    validate_model_card(path)
    return path


def add_card_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``odtrack card``: write the model card of converted official weights into a folder."""
    parser = subparsers.add_parser(
        "card",
        help="write the model card (README.md) of converted official weights into a save_pretrained folder",
        description="Write README.md with Hub metadata (tags, licence, model-index of the paper's results), "
        "usage and conversion notes. The preset is read from the folder's config.json when not given.",
    )
    parser.add_argument("save_dir", type=Path, help="save_pretrained folder (or a .md file to write)")
    parser.add_argument("--preset", choices=list(CHECKPOINTS), help="official model (default: from config.json)")
    parser.add_argument("--repo-id", help="Hub id used in the usage snippets, e.g. acme/odtrack-base")
    parser.add_argument("--base-model", help="Hub id of the model this one derives from (metadata base_model)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing README.md")
    parser.set_defaults(func=run_card)


def run_card(args: argparse.Namespace) -> None:
    """Run ``odtrack card``; user errors raise ``ValueError``."""
    path = write_model_card(args.save_dir, args.preset, args.repo_id, args.base_model, args.overwrite)
    print(f"Wrote the model card {path}")


__all__ = [
    "BENCHMARKS",
    "CHECKPOINTS",
    "PAPER_RESULTS",
    "add_card_parser",
    "build_model_card",
    "build_trained_model_card",
    "paper_eval_results",
    "preset_for_config",
    "run_card",
    "validate_model_card",
    "write_model_card",
]
