"""Training configuration: one dataclass, read from a YAML or JSON file (``odtrack train CONFIG``).

Defaults reproduce the official ODTrack-B recipe (``experiments/odtrack/baseline.yaml``;
docs/official-implementation.md, "Training clips and losses"); the model's own hyper-parameters (sizes,
number of templates and search frames, loss weights) live in its ``ODTrackConfig``.
"""

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..data.augment import ClipAugmentation
from ..data.sources import SOURCES, SequenceSource

MIXED_PRECISION = ("no", "bf16", "fp16")
HF_DATASET_TYPE = "hf"  # a folder written by ``export_parquet`` (or any ``load_dataset`` folder)


@dataclass
class DatasetSpec:
    """One training dataset.

    Attributes:
        type: a reader of ``odtrack_hf.data.SOURCES`` (``got10k``, ``lasot``, ``trackingnet``, ``coco``,
            ``folder`` for your own videos, ...) or ``hf`` for a Parquet folder of ``export_parquet``.
        root: the dataset folder.
        ratio: sampling weight (official ``DATASETS_RATIO``).
        options: further arguments of the reader, e.g. ``{"subset": "train", "split": "vot_train"}`` for
            GOT-10k; for ``hf``, ``split`` (default ``"train"``).
    """

    type: str
    root: str
    ratio: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "DatasetSpec":
        """Read ``{type, root, ratio?, **reader options}`` (the YAML form)."""
        values = dict(values)
        missing = [key for key in ("type", "root") if key not in values]
        if missing:
            raise ValueError(f"A dataset entry needs 'type' and 'root'; {values} lacks {', '.join(missing)}.")
        options = values.pop("options", {})
        kind, root, ratio = values.pop("type"), str(values.pop("root")), float(values.pop("ratio", 1.0))
        return cls(kind, root, ratio, {**options, **values})

    def build(self) -> SequenceSource:
        """Open the dataset; a missing folder or a wrong layout raises ``ValueError`` naming the layout."""
        if self.type == HF_DATASET_TYPE:
            from datasets import load_dataset

            from ..data.hf_datasets import DatasetSource

            if not Path(self.root).is_dir():
                raise ValueError(f"hf dataset: {self.root} is not a folder; expected a folder written by export_parquet.")
            options = dict(self.options)
            return DatasetSource(load_dataset(self.root, split=options.pop("split", "train"), **options))
        if self.type not in SOURCES:
            raise ValueError(f"Unknown dataset type {self.type!r}; use one of {', '.join([*SOURCES, HF_DATASET_TYPE])}.")
        try:
            return SOURCES[self.type](self.root, **self.options)
        except TypeError as error:  # an option the reader does not take
            raise ValueError(f"Dataset {self.type!r} at {self.root}: {error}") from None


@dataclass
class TrainingConfig:
    """Everything a training run needs besides the model's own config.

    Model (first that is set wins): ``model_name_or_path`` (a ``save_pretrained`` folder or Hub id, to
    fine-tune), else ``mae_checkpoint`` (official init: MAE encoder weights), else random init. The model
    is built from the preset ``model_preset`` with the fields of ``model_config`` overridden (those also
    override a loaded model's config).

    Schedule: the run has ``num_epochs`` virtual epochs of ``samples_per_epoch`` clips; one optimiser step
    takes ``per_device_train_batch_size * num_processes * gradient_accumulation_steps`` clips. The
    learning rate drops by ``lr_drop_factor`` after ``lr_drop_epoch`` epochs (StepLR); the CE keep ratio
    is 1 until ``ce_start_epoch``, then follows a cosine to ``config.ce_keep_ratios[0]`` over
    ``ce_warmup_epochs`` (official ``adjust_keep_rate``). ``max_steps`` stops earlier without changing
    these schedules.

    Distillation (docs/training.md, "Distillation"): with ``teacher_model_name_or_path`` a frozen teacher
    (a ``save_pretrained`` folder of the same width and template size, usually with a larger search crop)
    tracks the same search windows, and ``distillation_score_weight`` / ``distillation_feature_weight``
    weigh the pull of the student's score map and search tokens towards the teacher's (added to the
    ground-truth loss).

    Output (``output_dir``): ``checkpoints/step_<n>/`` every ``save_steps`` steps (the newest
    ``save_total_limit`` are kept), ``logs/train.jsonl``, and the final model in ``model/``.
    ``resume_from_checkpoint``: ``"latest"`` continues from the newest checkpoint in ``output_dir`` if
    there is one, a path continues from that checkpoint, ``null`` requires a fresh ``output_dir``.
    """

    output_dir: str
    datasets: list[DatasetSpec]
    model_name_or_path: str | None = None
    model_preset: str = "odtrack-base"
    model_config: dict[str, Any] = field(default_factory=dict)
    mae_checkpoint: str | None = None
    samples_per_epoch: int = 30000
    max_sample_interval: int = 400
    min_sequence_length: int = 20
    augmentation: ClipAugmentation = field(default_factory=ClipAugmentation)
    num_workers: int = 8
    per_device_train_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 1e-4
    backbone_learning_rate_multiplier: float = 0.1
    weight_decay: float = 1e-4
    num_epochs: int = 300
    lr_drop_epoch: int = 240
    lr_drop_factor: float = 0.1
    max_grad_norm: float = 0.1
    ce_start_epoch: int = 20
    ce_warmup_epochs: int = 80
    mixed_precision: str = "no"
    seed: int = 42
    max_steps: int | None = None
    save_steps: int = 1000
    save_total_limit: int = 3
    logging_steps: int = 50
    resume_from_checkpoint: str | None = "latest"
    teacher_model_name_or_path: str | None = None
    distillation_score_weight: float = 1.0
    distillation_feature_weight: float = 1.0

    def __post_init__(self):
        self.datasets = [spec if isinstance(spec, DatasetSpec) else DatasetSpec.from_dict(spec) for spec in self.datasets]
        if isinstance(self.augmentation, dict):
            self.augmentation = _from_dict(ClipAugmentation, self.augmentation, "augmentation")
        if not self.datasets:
            raise ValueError("datasets is empty: give at least one {type, root} entry.")
        if self.mixed_precision not in MIXED_PRECISION:
            raise ValueError(f"mixed_precision must be one of {MIXED_PRECISION}, got {self.mixed_precision!r}.")
        for name in (
            "samples_per_epoch", "max_sample_interval", "per_device_train_batch_size", "gradient_accumulation_steps",
            "num_epochs", "lr_drop_epoch", "save_steps", "save_total_limit", "logging_steps",
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 (or null), got {self.max_steps}.")
        if self.num_workers < 0 or self.seed < 0:
            raise ValueError(f"num_workers and seed must be >= 0, got {self.num_workers} and {self.seed}.")
        for name in ("distillation_score_weight", "distillation_feature_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}.")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}.")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainingConfig":
        """Build from a plain dict (the parsed file); unknown keys are an error."""
        return _from_dict(cls, values, "training config")

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainingConfig":
        """Read a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        text = path.read_text()  # FileNotFoundError names the path
        try:
            values = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as error:
            raise ValueError(f"{path}: cannot parse the file: {' '.join(str(error).split())}") from None
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of training settings at the top level.")
        return cls.from_dict(values)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable form (``from_dict`` reads it back)."""
        return dataclasses.asdict(self)


def _from_dict(cls: type, values: dict[str, Any], what: str):
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"Unknown key(s) in the {what}: {', '.join(unknown)}; valid keys: {', '.join(sorted(known))}.")
    try:
        return cls(**values)
    except TypeError as error:  # a required key is missing
        raise ValueError(f"Incomplete {what}: {error}") from None


__all__ = ["DatasetSpec", "TrainingConfig"]
