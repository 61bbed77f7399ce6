"""Distillation from a teacher that sees larger search crops (docs/training.md, "Distillation").

A model with a smaller search crop (fewer search tokens, so faster) learns from a trained model at a larger
crop. Both see the same search windows of each clip (``TrackingClipDataset(teacher_search_size=...)``), so
their score maps and final search tokens describe the same places on two grids. The teacher's are
resampled to the student's grid, and the student is pulled towards them on top of the ground-truth loss:

- ``score``: binary Kullback-Leibler divergence of the student's centre score from the teacher's (the
  cross-entropy less the teacher's own entropy, so zero at a match), summed over the cells and divided
  by the batch size (the scale of the focal loss, which divides by the number of positive cells, one a
  sample). It carries what the labels cannot: how much the teacher also believes in a look-alike or a
  piece of clutter.
- ``feature``: mean squared error between the search tokens after the final LayerNorm. It gives every
  cell a target, not only the peak.
"""

import torch
import torch.nn.functional as F

from ..configuration_odtrack import ODTrackConfig
from ..modeling_odtrack import ODTrackOutput


def resample_grid(maps: torch.Tensor, side: int) -> torch.Tensor:
    """Resample ``(..., C, H, W)`` maps to ``(..., C, side, side)``, area-weighted when shrinking (antialias)."""
    leading = maps.shape[:-3]
    flat = maps.reshape(-1, *maps.shape[-3:])
    if flat.shape[-1] != side or flat.shape[-2] != side:
        flat = F.interpolate(flat, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return flat.reshape(*leading, *flat.shape[-3:])


def search_token_maps(outputs: ODTrackOutput, config: ODTrackConfig) -> torch.Tensor:
    """The final search tokens of a clip's outputs (``last_hidden_state`` ``(B, N, L, C)``) as maps ``(B, N, C, H, W)``."""
    side = config.search_feat_size
    tokens = outputs.last_hidden_state[..., -side * side :, :]
    return tokens.transpose(-1, -2).reshape(*tokens.shape[:-2], tokens.shape[-1], side, side)


class DistillationLoss:
    """``score_weight * score + feature_weight * feature`` per search frame, reduced over the frames like
    [`ODTrackLoss`] (mean where ``average_loss_over_frames``, else sum).

    Args:
        student_config: config of the model being trained.
        teacher_config: config of the frozen teacher; it must have the student's ``hidden_size``.
        score_weight: weight of the score-map term.
        feature_weight: weight of the search-token term.
    """

    def __init__(
        self, student_config: ODTrackConfig, teacher_config: ODTrackConfig, score_weight: float, feature_weight: float
    ):
        if student_config.hidden_size != teacher_config.hidden_size:
            raise ValueError(
                f"The teacher's hidden_size ({teacher_config.hidden_size}) differs from the student's "
                f"({student_config.hidden_size}); their search tokens cannot be compared. Distil from a model "
                "of the same width."
            )
        self.student_config, self.teacher_config = student_config, teacher_config
        self.score_weight, self.feature_weight = score_weight, feature_weight

    def __call__(self, student: ODTrackOutput, teacher: ODTrackOutput) -> torch.Tensor:
        """Scalar loss of a student clip against the teacher clip on the same windows (``(B, N, ...)`` outputs)."""
        return self._reduce(self.frame_terms(student, teacher)["distillation"])

    def components(self, student: ODTrackOutput, teacher: ODTrackOutput) -> dict[str, torch.Tensor]:
        """Detached scalars for logging: ``distillation``, ``distil_score`` and ``distil_feature``."""
        return {name: self._reduce(value).detach() for name, value in self.frame_terms(student, teacher).items()}

    def frame_terms(self, student: ODTrackOutput, teacher: ODTrackOutput) -> dict[str, torch.Tensor]:
        """Per-frame terms ``(N,)``: ``distillation`` (the weighted sum), ``distil_score``, ``distil_feature``."""
        side = self.student_config.search_feat_size
        target_score = resample_grid(teacher.score_map.detach().float(), side)
        score_map = student.score_map.float()
        batch_size = score_map.shape[0]
        # the model clamps its scores to [1e-4, 1 - 1e-4], so both logarithms stay finite
        entropy = F.binary_cross_entropy(target_score, target_score, reduction="none")
        divergence = F.binary_cross_entropy(score_map, target_score, reduction="none") - entropy
        score = divergence.sum(dim=(0, 2, 3, 4)) / batch_size
        target_tokens = resample_grid(search_token_maps(teacher, self.teacher_config).detach().float(), side)
        tokens = search_token_maps(student, self.student_config).float()
        feature = (tokens - target_tokens).pow(2).mean(dim=(0, 2, 3, 4))
        total = self.score_weight * score + self.feature_weight * feature
        return {"distillation": total, "distil_score": score, "distil_feature": feature}

    def _reduce(self, per_frame: torch.Tensor) -> torch.Tensor:
        return per_frame.mean() if self.student_config.average_loss_over_frames else per_frame.sum()


__all__ = ["DistillationLoss", "resample_grid", "search_token_maps"]
