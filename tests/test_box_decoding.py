"""Boxes read off the head's maps: the decoded box of a cell, and the box and raw score at a peak."""

import pytest
import torch

from odtrack_hf.box_decoding import boxes_at_peak, decode_box_map


def test_decode_boxes_by_hand():
    score = torch.zeros(1, 1, 4, 4)
    score[0, 0, 2, 1] = 0.9  # row 2, column 1
    score[0, 0, 0, 3] = 0.5
    size = torch.zeros(1, 2, 4, 4)
    size[0, :, 2, 1] = torch.tensor([0.25, 0.5])
    offset = torch.zeros(1, 2, 4, 4)
    offset[0, :, 2, 1] = torch.tensor([0.5, 0.25])
    box_map = decode_box_map(size, offset)
    boxes, scores = boxes_at_peak(score, box_map)
    torch.testing.assert_close(boxes, torch.tensor([[(1 + 0.5) / 4, (2 + 0.25) / 4, 0.25, 0.5]]))
    assert scores.item() == pytest.approx(0.9)
    # another response moves the peak but the reported score stays the raw map value
    window = torch.zeros(4, 4)
    window[0, 3] = 1.0
    boxes, scores = boxes_at_peak(score, box_map, score * window)
    torch.testing.assert_close(boxes, torch.tensor([[3 / 4, 0.0, 0.0, 0.0]]))
    assert scores.item() == pytest.approx(0.5)
