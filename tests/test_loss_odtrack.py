"""Tests of the ODTrack training loss against hand-derived values (docs/official-implementation.md, "Training
clips and losses")."""

import math

import pytest
import torch
from torchvision.ops import box_convert

from odtrack_hf import ODTrackConfig, ODTrackModel, ODTrackOutput
from odtrack_hf.training import forward_clip
from odtrack_hf.loss_odtrack import ODTrackLoss, focal_loss, gaussian_radius, generate_heatmap

TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "template_size": 32,
    "search_size": 64,
    "head_channels": 16,
    "ce_layers": [1],
    "ce_keep_ratios": [0.7],
    "pretrain_image_size": 64,
}


def tiny_config(**overrides) -> ODTrackConfig:
    return ODTrackConfig(**{**TINY, **overrides})


def outputs_for(pred_boxes_cxcywh: torch.Tensor, score_map: torch.Tensor) -> ODTrackOutput:
    return ODTrackOutput(pred_boxes=pred_boxes_cxcywh, score_map=score_map)


# --- targets ----------------------------------------------------------------------------------------


def test_gaussian_radius_is_the_cornernet_bug_version():
    # square side s: r3 = s * (-2.8 + sqrt(2.8^2 + 4 * 2.8 * 0.3)) / 2 is the smallest root
    side = torch.tensor([[4.0, 4.0], [12.0, 12.0]])
    expected = side[:, 0] * (-2.8 + math.sqrt(2.8**2 + 4 * 2.8 * 0.3)) / 2
    torch.testing.assert_close(gaussian_radius(side), expected)


def test_heatmap_radius_one_centre_cell():
    # centre (4, 4) cells, w = h = 4 cells -> radius int(1.09) = 1, sigma = 3/6
    heatmap = generate_heatmap(torch.tensor([[0.25, 0.25, 0.75, 0.75]]), 8)[0]
    assert heatmap[4, 4] == 1.0
    assert heatmap.eq(1).sum() == 1
    for row, col in [(3, 4), (5, 4), (4, 3), (4, 5)]:
        assert heatmap[row, col].item() == pytest.approx(math.exp(-2.0), rel=1e-6)
    for row, col in [(3, 3), (3, 5), (5, 3), (5, 5)]:
        assert heatmap[row, col].item() == pytest.approx(math.exp(-4.0), rel=1e-6)
    assert heatmap.sum().item() == pytest.approx(1 + 4 * math.exp(-2) + 4 * math.exp(-4), rel=1e-6)


def test_heatmap_radius_three_on_the_official_24_grid():
    # w = h = 0.5 -> 12 cells -> radius int(3.28) = 3, sigma = 7/6; the support is 7 x 7 cells
    heatmap = generate_heatmap(torch.tensor([[0.25, 0.25, 0.75, 0.75]]), 24)[0]
    assert heatmap[12, 12] == 1.0
    assert (heatmap > 0).sum() == 49
    assert heatmap[12, 15].item() == pytest.approx(math.exp(-9 / (2 * (7 / 6) ** 2)), rel=1e-6)
    assert heatmap[12, 16] == 0 and heatmap[8, 12] == 0


def test_heatmap_centre_rounds_half_to_even():
    # centres at 2.5 and 3.5 cells round to 2 and 4 (torch.round), tiny boxes have radius 0
    boxes = torch.tensor([[0.3125 - 0.01, 0.3125 - 0.01, 0.3125 + 0.01, 0.3125 + 0.01],
                          [0.4375 - 0.01, 0.4375 - 0.01, 0.4375 + 0.01, 0.4375 + 0.01]])
    heatmaps = generate_heatmap(boxes, 8)
    assert heatmaps[0].eq(1).nonzero().tolist() == [[2, 2]]
    assert heatmaps[1].eq(1).nonzero().tolist() == [[4, 4]]
    assert heatmaps.gt(0).sum() == 2  # radius 0: a single cell each


def test_heatmap_centre_on_the_border_cell_draws_nothing_with_radius_zero():
    # centre x = 7.84 cells rounds to 8 == feat_size (outside); w = 1.28 cells -> radius 0
    heatmap = generate_heatmap(torch.tensor([[0.90, 0.40, 1.06, 0.56]]), 8)[0]
    assert heatmap.abs().sum() == 0


def test_heatmap_centre_outside_keeps_the_clipped_tail():
    # centre x rounds to 8 (outside), w = h = 4 cells -> radius 1: the official clipped draw leaves
    # the left column of the Gaussian in column 7 and no positive cell
    heatmap = generate_heatmap(torch.tensor([[0.76, 0.25, 1.26, 0.75]]), 8)[0]
    assert heatmap.eq(1).sum() == 0
    torch.testing.assert_close(heatmap[3:6, 7], torch.tensor([math.exp(-4), math.exp(-2), math.exp(-4)]))
    assert heatmap[:, :7].abs().sum() == 0


def test_heatmap_keeps_leading_dimensions():
    boxes = torch.tensor([[0.25, 0.25, 0.75, 0.75]]).expand(2, 3, 4)
    assert generate_heatmap(boxes, 8).shape == (2, 3, 8, 8)


# --- focal loss -------------------------------------------------------------------------------------


def test_focal_loss_on_a_hand_computed_map():
    prediction = torch.tensor([[[0.5, 0.2], [0.1, 0.9]]])
    target = torch.tensor([[[1.0, 0.5], [0.0, 0.0]]])
    positive = math.log(0.5) * 0.5**2
    negative = (
        math.log(0.8) * 0.2**2 * 0.5**4
        + math.log(0.9) * 0.1**2 * 1.0
        + math.log(0.1) * 0.9**2 * 1.0
    )
    assert focal_loss(prediction, target).item() == pytest.approx(-(positive + negative) / 1, rel=1e-6)


def test_focal_loss_without_positive_is_the_negative_sum():
    prediction = torch.tensor([[0.2, 0.6]])
    target = torch.tensor([[0.5, 0.0]])
    negative = math.log(0.8) * 0.2**2 * 0.5**4 + math.log(0.4) * 0.6**2
    assert focal_loss(prediction, target).item() == pytest.approx(-negative, rel=1e-6)


def test_focal_loss_divides_by_the_number_of_positives():
    prediction = torch.tensor([[0.5, 0.25]])
    target = torch.tensor([[1.0, 1.0]])
    positive = math.log(0.5) * 0.5**2 + math.log(0.25) * 0.75**2
    assert focal_loss(prediction, target).item() == pytest.approx(-positive / 2, rel=1e-6)


# --- ODTrackLoss ------------------------------------------------------------------------------------


def perfect_outputs(labels_xyxy: torch.Tensor, feat_size: int) -> ODTrackOutput:
    """Outputs whose box equals the label and whose score map equals the target (clamped)."""
    score_map = generate_heatmap(labels_xyxy, feat_size).clamp(1e-4, 1 - 1e-4).unsqueeze(-3)
    return outputs_for(box_convert(labels_xyxy.clamp(0, 1), "xyxy", "cxcywh"), score_map)


def test_identical_boxes_give_zero_box_losses():
    config = tiny_config()
    labels = torch.tensor([[0.2, 0.3, 0.6, 0.8], [0.1, 0.1, 0.4, 0.5]])
    stats = ODTrackLoss(config).components(perfect_outputs(labels, config.search_feat_size), labels)
    assert stats["giou"].item() == pytest.approx(0.0, abs=1e-5)
    assert stats["l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert stats["iou"].item() == pytest.approx(1.0, abs=1e-5)


def test_box_losses_use_labels_clamped_to_the_crop():
    config = tiny_config()
    labels = torch.tensor([[-0.2, 0.3, 0.6, 1.4]])
    outputs = perfect_outputs(labels, config.search_feat_size)  # predicts the clamped box
    stats = ODTrackLoss(config).components(outputs, labels)
    assert stats["l1"].item() == pytest.approx(0.0, abs=1e-6)
    assert stats["giou"].item() == pytest.approx(0.0, abs=1e-5)


def test_l1_and_giou_against_hand_values():
    config = tiny_config()
    labels = torch.tensor([[0.0, 0.0, 0.5, 0.5]])
    pred_xyxy = torch.tensor([[0.25, 0.0, 0.75, 0.5]])  # shifted by half a width
    outputs = outputs_for(box_convert(pred_xyxy, "xyxy", "cxcywh"), torch.full((1, 1, 4, 4), 0.5))
    stats = ODTrackLoss(config).components(outputs, labels)
    assert stats["l1"].item() == pytest.approx((0.25 + 0 + 0.25 + 0) / 4, rel=1e-5)
    # IoU = 0.125 / 0.375, hull = 0.375 = union -> GIoU = IoU
    assert stats["iou"].item() == pytest.approx(1 / 3, rel=1e-5)
    assert stats["giou"].item() == pytest.approx(1 - 1 / 3, rel=1e-5)


def test_frame_loss_uses_the_configured_weights():
    config = tiny_config(focal_loss_weight=3.0, l1_loss_weight=7.0, giou_loss_weight=11.0)
    torch.manual_seed(0)
    labels = torch.tensor([[0.2, 0.3, 0.6, 0.8], [0.1, 0.1, 0.4, 0.5]])
    outputs = outputs_for(torch.rand(2, 4) * 0.5 + 0.25, torch.rand(2, 1, 4, 4).clamp(1e-4, 1 - 1e-4))
    stats = ODTrackLoss(config).components(outputs, labels)
    expected = 3.0 * stats["focal"] + 7.0 * stats["l1"] + 11.0 * stats["giou"]
    torch.testing.assert_close(stats["loss"], expected)
    assert stats["focal"] > 0 and stats["l1"] > 0 and stats["giou"] > 0
    torch.testing.assert_close(ODTrackLoss(config)(outputs, labels), stats["loss"])


def test_clip_loss_averages_or_sums_over_frames():
    torch.manual_seed(0)
    labels = torch.tensor([[[0.2, 0.3, 0.6, 0.8], [0.1, 0.1, 0.4, 0.5]]] * 2)  # (B=2, N=2, 4)
    pred_boxes = torch.rand(2, 2, 4) * 0.5 + 0.25
    score_map = torch.rand(2, 2, 1, 4, 4).clamp(1e-4, 1 - 1e-4)
    clip = outputs_for(pred_boxes, score_map)
    per_frame = [
        ODTrackLoss(tiny_config())(outputs_for(pred_boxes[:, i], score_map[:, i]), labels[:, i]) for i in range(2)
    ]
    assert per_frame[0] != per_frame[1]
    averaged = ODTrackLoss(tiny_config(average_loss_over_frames=True))(clip, labels)
    summed = ODTrackLoss(tiny_config(average_loss_over_frames=False))(clip, labels)
    torch.testing.assert_close(averaged, (per_frame[0] + per_frame[1]) / 2)
    torch.testing.assert_close(summed, per_frame[0] + per_frame[1])


def test_non_finite_prediction_is_not_hidden():
    config = tiny_config()
    labels = torch.tensor([[0.2, 0.3, 0.6, 0.8]])
    outputs = perfect_outputs(labels, config.search_feat_size)
    outputs.pred_boxes[0, 2] = float("nan")
    assert torch.isnan(ODTrackLoss(config)(outputs, labels))
    outputs = perfect_outputs(labels, config.search_feat_size)
    outputs.score_map[0, 0, 0, 0] = float("nan")  # a non-positive cell
    assert torch.isnan(ODTrackLoss(config)(outputs, labels))


def test_shape_errors_name_the_expected_shapes():
    config = tiny_config()
    outputs = perfect_outputs(torch.tensor([[0.2, 0.3, 0.6, 0.8]]), config.search_feat_size)
    with pytest.raises(ValueError, match="shape of outputs.pred_boxes"):
        ODTrackLoss(config)(outputs, torch.zeros(1, 1, 4))
    with pytest.raises(ValueError, match="search_feat_size"):
        ODTrackLoss(tiny_config(search_size=128))(outputs, torch.tensor([[0.2, 0.3, 0.6, 0.8]]))


def test_gradients_reach_score_size_and_offset_maps_through_the_model():
    torch.manual_seed(0)
    config = tiny_config()
    model = ODTrackModel(config).train()
    search = torch.randn(2, 2, 3, config.search_size, config.search_size)
    templates = torch.randn(2, 3, 3, config.template_size, config.template_size)
    labels = torch.tensor([[[0.2, 0.3, 0.6, 0.7], [0.1, 0.1, 0.5, 0.4]]] * 2)
    loss = ODTrackLoss(config)(forward_clip(model, search, templates), labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for branch in ("score_branch", "size_branch", "offset_branch"):
        grads = [p.grad for p in getattr(model.head, branch).parameters()]
        assert all(g is not None for g in grads), branch
        assert sum(g.abs().sum() for g in grads) > 0, branch
