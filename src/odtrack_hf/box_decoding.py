"""Boxes from the maps of the CENTER head: the box each cell decodes to, and the box at a peak.

Pure tensor functions with no state, below both the model (which reports the box at the raw peak) and the
image processor (which re-picks the peak under the tracker's Hann window), so that neither imports the other.
"""

import torch


def decode_box_map(size_map: torch.Tensor, offset_map: torch.Tensor) -> torch.Tensor:
    """The box ``(cx, cy, w, h)``, normalised to the crop, that every cell of the head's maps decodes to.

    The centre is the cell index plus the predicted offset, divided by the map side; the size is the
    size map (official ``cal_bbox``). Returns ``(B, 4, H, W)``.
    """
    _, _, height, width = offset_map.shape
    columns = torch.arange(width, device=offset_map.device).to(offset_map.dtype).view(1, 1, width)
    rows = torch.arange(height, device=offset_map.device).to(offset_map.dtype).view(1, height, 1)
    cx = (columns + offset_map[:, 0]) / width
    cy = (rows + offset_map[:, 1]) / height
    return torch.cat([cx.unsqueeze(1), cy.unsqueeze(1), size_map], dim=1)


def boxes_at_peak(
    score_map: torch.Tensor, box_map: torch.Tensor, response: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The boxes of ``box_map`` at the peak of ``response`` (default: the score map itself).

    The peak is the first maximum in row-major order (official ``cal_bbox``). The tracker passes
    ``score_map * window`` as ``response``; the score is always the raw ``score_map`` value there.

    Args:
        score_map: ``(B, 1, H, W)``.
        box_map: ``(B, 4, H, W)`` from [`decode_box_map`].
        response: ``(B, 1, H, W)`` (or broadcastable) map whose maximum picks the cell.

    Returns:
        ``(boxes (B, 4), scores (B,))``.
    """
    response = score_map if response is None else response
    _, peak = torch.max(response.flatten(1), dim=1, keepdim=True)  # (B, 1)
    boxes = box_map.flatten(2).gather(2, peak.unsqueeze(1).expand(-1, box_map.shape[1], 1)).squeeze(-1)
    return boxes, score_map.flatten(1).gather(1, peak).squeeze(1)


__all__ = ["boxes_at_peak", "decode_box_map"]
