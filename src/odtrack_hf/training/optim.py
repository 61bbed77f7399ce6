"""Optimiser, learning-rate schedule and candidate-elimination schedule of ODTrack training
(docs/official-implementation.md, "Training clips and losses")."""

import math

import torch
from torch import nn

HEAD_PREFIX = "head."  # the CENTER head; every other parameter is "backbone" (embeddings, blocks, final norm)


def parameter_groups(
    model: nn.Module, learning_rate: float, backbone_multiplier: float, weight_decay: float
) -> list[dict]:
    """The official two parameter groups, declared by parameter name.

    ``"head"`` (names starting with ``head.``) gets ``learning_rate``; ``"backbone"`` (everything else,
    including the temporal token and the position tables, as in the official code) gets
    ``learning_rate * backbone_multiplier``. Weight decay applies to every parameter (official).
    Frozen parameters (the pre-training position table) are left out.
    """
    head, backbone = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (head if name.startswith(HEAD_PREFIX) else backbone).append(parameter)
    return [
        {"name": "head", "params": head, "lr": learning_rate, "weight_decay": weight_decay},
        {"name": "backbone", "params": backbone, "lr": learning_rate * backbone_multiplier, "weight_decay": weight_decay},
    ]


def build_optimizer(
    model: nn.Module, learning_rate: float, backbone_multiplier: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW (default betas and eps) over [`parameter_groups`]."""
    return torch.optim.AdamW(parameter_groups(model, learning_rate, backbone_multiplier, weight_decay))


def build_scheduler(
    optimizer: torch.optim.Optimizer, steps_per_epoch: int, lr_drop_epoch: int, lr_drop_factor: float
) -> torch.optim.lr_scheduler.StepLR:
    """Official StepLR: the learning rates are multiplied by ``lr_drop_factor`` once, after
    ``lr_drop_epoch`` epochs. Stepped once per optimiser step, so its period is counted in steps."""
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_drop_epoch * steps_per_epoch, gamma=lr_drop_factor)


def apply_lr_schedule(scheduler: torch.optim.lr_scheduler.StepLR, step_size: int, gamma: float) -> bool:
    """Make a scheduler restored from a checkpoint follow the config's schedule; return whether it changed.

    ``StepLR.load_state_dict`` restores the drop period and factor of the run that saved it, so a run
    resumed after editing ``lr_drop_epoch`` would keep the old drop. This sets the config's values and
    the learning rates they give at the restored step, ``base_lr * gamma ** (step // step_size)``, in the
    optimizer's parameter groups: the rates the next step uses (``get_last_lr()`` reports them after the
    scheduler's next ``step()``; read the groups until then).
    """
    if (scheduler.step_size, scheduler.gamma) == (step_size, gamma):
        return False  # the restored rates stay exactly as saved
    scheduler.step_size, scheduler.gamma = step_size, gamma
    for group, base_lr in zip(scheduler.optimizer.param_groups, scheduler.base_lrs):
        group["lr"] = base_lr * gamma ** (scheduler.last_epoch // step_size)
    return True


def ce_keep_ratio(epoch: int, start_epoch: int, warmup_epochs: int, final_keep_ratio: float) -> float:
    """Candidate-elimination keep ratio of every CE block for a (1-based) epoch: official ``adjust_keep_rate``
    with one value per epoch.

    1.0 (no elimination) before ``start_epoch``; then a cosine from 1.0 down to ``final_keep_ratio``,
    reached at ``start_epoch + warmup_epochs`` and kept after. ODTrack-B: 20 and 80 (epoch 60 → 0.85).
    """
    end_epoch = start_epoch + warmup_epochs
    if epoch < start_epoch:
        return 1.0
    if epoch >= end_epoch:
        return final_keep_ratio
    progress = (epoch - start_epoch) / (end_epoch - start_epoch)
    return final_keep_ratio + (1.0 - final_keep_ratio) * (math.cos(progress * math.pi) + 1) * 0.5


__all__ = ["HEAD_PREFIX", "build_optimizer", "build_scheduler", "ce_keep_ratio", "parameter_groups"]
