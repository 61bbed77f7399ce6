"""Training loss of ODTrack: Gaussian centre targets, focal loss, and L1 + GIoU on the predicted box.

Follows the official ``ODTrackActor.compute_losses`` and ``generate_heatmap`` (docs/official-implementation.md,
"Training clips and losses").
"""

import torch
import torch.nn.functional as F
from torchvision.ops import box_convert, box_iou, generalized_box_iou_loss

from .configuration_odtrack import ODTrackConfig

GAUSSIAN_MIN_OVERLAP = 0.7  # CornerNet ``min_overlap`` of the official targets
FOCAL_ALPHA = 2
FOCAL_BETA = 4
FOCAL_MIN_PROBABILITY = 1e-12  # the official clamp before the logarithm


def gaussian_radius(box_size: torch.Tensor, min_overlap: float = GAUSSIAN_MIN_OVERLAP) -> torch.Tensor:
    """CornerNet Gaussian radius of boxes ``(..., 2)`` given as ``(w, h)``, in the same units.

    This is the "bug version" the official code keeps: each root is ``(b + sqrt(b^2 - 4ac)) / 2``,
    without the division by ``2a`` of the corrected CornerNet formula.
    """
    width, height = box_size.unbind(-1)
    a1, b1, c1 = 1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + torch.sqrt(b1**2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 + torch.sqrt(b2**2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + torch.sqrt(b3**2 - 4 * a3 * c3)) / 2
    return torch.minimum(r1, torch.minimum(r2, r3))


def generate_heatmap(boxes: torch.Tensor, feat_size: int) -> torch.Tensor:
    """Official Gaussian centre targets for ground-truth boxes.

    The box centre is rounded (half to even, as ``torch.round``) to a cell; a ``(2r+1)^2`` Gaussian
    with ``sigma = (2r+1)/6`` and peak exactly 1 is drawn there and clipped at the map border, so a
    centre outside the map leaves only the Gaussian's tail inside it (nothing at all when ``r = 0``).
    The radius is ``int(max(gaussian_radius(w, h), 0))`` in cells.

    Args:
        boxes: ``(..., 4)`` boxes ``(x1, y1, x2, y2)`` normalised to the search crop (not clamped:
            the official targets use the raw box).
        feat_size: side of the score map in cells (``config.search_feat_size``).

    Returns:
        ``(..., feat_size, feat_size)`` maps with the dtype of ``boxes``.
    """
    cells_box = box_convert(boxes, "xyxy", "cxcywh") * feat_size
    centre = cells_box[..., :2].round().double()
    radius = gaussian_radius(cells_box[..., 2:]).clamp(min=0).int().double()[..., None]  # (..., 1)
    cells = torch.arange(feat_size, device=boxes.device, dtype=torch.float64)
    dx = cells - centre[..., :1]  # (..., W)
    dy = cells - centre[..., 1:]  # (..., H)
    sigma = (2 * radius + 1) / 6
    # float64 like the official numpy Gaussian; its "below eps * max -> 0" step never fires within
    # the radius (the smallest value there is above exp(-9)), so it is not repeated here
    squared = dy[..., :, None] ** 2 + dx[..., None, :] ** 2
    gaussian = torch.exp(-squared / (2 * sigma[..., None] ** 2))
    inside = (dy.abs() <= radius)[..., :, None] & (dx.abs() <= radius)[..., None, :]
    return torch.where(inside, gaussian, 0.0).to(boxes.dtype)


def focal_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet focal loss (alpha 2, beta 4) of a probability map against Gaussian targets.

    Positives are the cells where ``target == 1`` exactly. The sum over the whole tensor (all samples
    of a frame) is divided by the number of positives, or by 1 when there are none (official).
    Masks multiply rather than index so that a NaN anywhere in ``prediction`` reaches the loss.
    """
    positive = target.eq(1).to(prediction.dtype)
    negative = target.lt(1).to(prediction.dtype)
    prediction = prediction.clamp(min=FOCAL_MIN_PROBABILITY)
    positive_loss = torch.log(prediction) * (1 - prediction) ** FOCAL_ALPHA * positive
    negative_loss = torch.log(1 - prediction) * prediction**FOCAL_ALPHA * (1 - target) ** FOCAL_BETA * negative
    num_positive = positive.sum()
    # with no positive cell the positive sum is 0 and the official loss is -sum(negative)
    return -(positive_loss.sum() + negative_loss.sum()) / num_positive.clamp(min=1)


class ODTrackLoss:
    r"""ODTrack training loss: ``focal_w * focal + l1_w * L1 + giou_w * GIoU`` per search frame.

    The focal loss compares ``outputs.score_map`` with [`generate_heatmap`] of the labels. L1 and
    GIoU compare ``outputs.pred_boxes`` (decoded at the *predicted* peak) with the labels clamped to
    ``[0, 1]``. Frames are averaged when ``config.average_loss_over_frames`` (the paper) and summed
    otherwise (the official code). Nothing is caught: a non-finite prediction gives a non-finite loss,
    which the training loop must detect.

    Args:
        config: supplies the three weights, ``average_loss_over_frames`` and ``search_feat_size``.
    """

    def __init__(self, config: ODTrackConfig):
        self.config = config

    def __call__(self, outputs, labels: torch.Tensor) -> torch.Tensor:
        """Scalar loss of ``outputs`` (an ``ODTrackOutput``) against ``labels``.

        Args:
            outputs: model outputs with ``pred_boxes`` ``(B, 4)`` and ``score_map`` ``(B, 1, H, W)``,
                or ``(B, N, 4)`` and ``(B, N, 1, H, W)`` for a clip of N search frames.
            labels: ground-truth boxes ``(x1, y1, x2, y2)`` normalised to the search crop, ``(B, 4)``
                or ``(B, N, 4)``.
        """
        return self._reduce_frames(self.frame_terms(outputs, labels)["loss"])

    def components(self, outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Detached scalars for logging: ``loss``, ``focal``, ``l1``, ``giou`` (reduced over frames like
        the loss, so ``loss`` is their weighted sum) and ``iou`` (mean IoU over frames and samples)."""
        terms = self.frame_terms(outputs, labels)
        stats = {name: self._reduce_frames(terms[name]).detach() for name in ("loss", "focal", "l1", "giou")}
        stats["iou"] = terms["iou"].mean().detach()
        return stats

    def frame_terms(self, outputs, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-frame terms, each of shape ``(N,)``: ``loss``, ``focal``, ``l1``, ``giou`` and the
        (detached) mean ``iou`` of every search frame."""
        pred_boxes, score_map = outputs.pred_boxes, outputs.score_map
        if labels.shape != pred_boxes.shape:
            raise ValueError(
                f"labels must have the shape of outputs.pred_boxes, (B, 4) or (B, N, 4); got labels "
                f"{tuple(labels.shape)} and pred_boxes {tuple(pred_boxes.shape)}."
            )
        # the loss is computed in float32 whatever the model ran in (e.g. bf16 autocast)
        pred_boxes, score_map, labels = pred_boxes.float(), score_map.float(), labels.float()
        if labels.ndim == 2:  # one search frame: add the frame axis
            pred_boxes, score_map, labels = pred_boxes[:, None], score_map[:, None], labels[:, None]
        side = self.config.search_feat_size
        if score_map.shape[-2:] != (side, side):
            raise ValueError(
                f"score_map is {tuple(score_map.shape[-2:])} but config.search_feat_size is {side}: the config "
                "does not match the model that produced these outputs."
            )
        heatmaps = generate_heatmap(labels, side)  # (B, N, H, W)
        gt_boxes = labels.clamp(0.0, 1.0)
        cfg = self.config
        terms = {"loss": [], "focal": [], "l1": [], "giou": [], "iou": []}
        for frame in range(labels.shape[1]):
            pred_xyxy = box_convert(pred_boxes[:, frame], "cxcywh", "xyxy")
            gt_xyxy = gt_boxes[:, frame]
            focal = focal_loss(score_map[:, frame, 0], heatmaps[:, frame])
            l1 = F.l1_loss(pred_xyxy, gt_xyxy)
            giou = generalized_box_iou_loss(pred_xyxy, gt_xyxy, reduction="mean")
            terms["loss"].append(cfg.focal_loss_weight * focal + cfg.l1_loss_weight * l1 + cfg.giou_loss_weight * giou)
            terms["focal"].append(focal)
            terms["l1"].append(l1)
            terms["giou"].append(giou)
            terms["iou"].append(box_iou(pred_xyxy, gt_xyxy).diagonal().mean().detach())
        return {name: torch.stack(values) for name, values in terms.items()}

    def _reduce_frames(self, per_frame: torch.Tensor) -> torch.Tensor:
        return per_frame.mean() if self.config.average_loss_over_frames else per_frame.sum()


__all__ = ["ODTrackLoss", "focal_loss", "gaussian_radius", "generate_heatmap"]
