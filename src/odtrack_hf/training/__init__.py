"""Training of ODTrack: configuration, optimiser and schedules, and the Accelerate loop."""

from .arguments import DatasetSpec, TrainingConfig
from .loop import (
    JSONLTracker,
    TrainingResult,
    TrainingState,
    build_model,
    forward_clip,
    list_checkpoints,
    read_log,
    train,
)
from .optim import apply_lr_schedule, build_optimizer, build_scheduler, ce_keep_ratio, parameter_groups

__all__ = [
    "DatasetSpec",
    "JSONLTracker",
    "TrainingConfig",
    "TrainingResult",
    "TrainingState",
    "apply_lr_schedule",
    "build_model",
    "build_optimizer",
    "build_scheduler",
    "ce_keep_ratio",
    "forward_clip",
    "list_checkpoints",
    "parameter_groups",
    "read_log",
    "train",
]
