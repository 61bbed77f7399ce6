"""ODTrackInferenceSession: template memory policies, batched multi-object tracking, object life cycle, errors."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import tiny_config
from huggingface_hub.errors import StrictDataclassFieldValidationError
from tracking_helpers import fixture_clip, fixture_tracker

from odtrack_hf import (
    ODTrackInferenceSession,
    ODTrackModel,
    ODTrackProcessor,
    TemplateMemoryPolicy,
    image_processing_odtrack,
)
from odtrack_hf.data.generation import GenerationConfig, plan_sequence, render_frames
from odtrack_hf.session_odtrack import DEFAULT_MAX_TEMPLATES

# --- template memory policy ------------------------------------------------------------------------------
# docs/official-implementation.md, "Tracker crops, window and update": frame being tracked -> memory indices,
# for TEMPLATE_NUMBER 3 and 4
REFERENCE_TABLE = {
    3: {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [0, 1, 2], 5: [0, 1, 2], 6: [0, 1, 3, 5], 8: [0, 1, 3, 5],
        10: [0, 1, 4, 7], 100: [0, 16, 49, 82], 1000: [0, 166, 499, 832]},
    4: {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [0, 1, 2, 3], 5: [0, 1, 2, 3], 6: [0, 1, 2, 3], 7: [0, 1, 2, 3],
        8: [0, 1, 3, 5, 7], 10: [0, 1, 3, 5, 7], 100: [0, 12, 37, 62, 87], 1000: [0, 125, 375, 625, 875]},
}  # fmt: skip


@pytest.mark.parametrize("template_number", [3, 4])
def test_selection_reproduces_the_reference_table(template_number):
    policy = TemplateMemoryPolicy(template_number)
    for frame, indices in REFERENCE_TABLE[template_number].items():
        assert policy.select(frame, range(frame)) == indices, frame


@pytest.mark.parametrize("template_number", [1, 2, 3, 4])
def test_official_memory_keeps_exactly_the_templates_selected_later(template_number):
    policy = TemplateMemoryPolicy(template_number, max_templates=None)
    for frame in range(0, 120):
        horizon = 2 * template_number * (frame + 2) + template_number  # past it no index <= frame is chosen
        later = set().union(*(policy.select(f, range(f)) for f in range(frame + 1, horizon)))
        assert set(policy.kept(range(frame + 1), frame)) == later & set(range(frame + 1)), frame


@pytest.mark.parametrize("template_number", [3, 4])
def test_pruned_official_memory_selects_as_if_it_kept_everything(template_number):
    policy, stored = TemplateMemoryPolicy(template_number, max_templates=None), [0]
    for frame in range(1, 1500):
        assert policy.select(frame, stored) == policy.select(frame, range(frame))
        stored = policy.kept([*stored, frame], frame)
    # only templates older than ~frame / (2n) can go: the official policy is inherently O(frames)
    assert len(stored) == pytest.approx(1499 * (1 - 1 / (2 * template_number)), abs=3)


@pytest.mark.parametrize("template_number, max_templates", [(1, 4), (1, 16), (3, 8), (3, 16), (4, 10)])
def test_bounded_memory_never_exceeds_its_size_and_stays_near_the_official_choice(template_number, max_templates):
    policy = TemplateMemoryPolicy(template_number, max_templates)
    official = TemplateMemoryPolicy(template_number, max_templates=None)
    stored, official_stored, worst = [0], [0], 0.0
    for frame in range(1, 3000):
        chosen, wanted = policy.select(frame, stored), official.select(frame, official_stored)
        assert set(chosen) <= set(stored) and len(chosen) == len(wanted)  # thinning never merges two choices
        if len(official_stored) <= max_templates:  # the official memory still fits: nothing was thinned
            assert stored == official_stored and chosen == wanted
        else:
            for got, target in zip(chosen, wanted):
                worst = max(worst, abs(got - target) * (max_templates - 2) / frame)
        stored = policy.kept([*stored, frame], frame)
        official_stored = official.kept([*official_stored, frame], frame)
        assert len(stored) <= max_templates and stored[0] == 0 and stored[-1] == frame
    assert 0 < worst <= 1  # each choice within frame / (M - 2) of the official one; the bound was exercised
    assert stored[1] <= official.oldest_selectable(2999) < stored[2]  # the slots cover what can still be chosen


def test_bounded_memory_is_the_default_and_needs_twice_the_templates_of_a_step():
    assert TemplateMemoryPolicy(3).max_templates == DEFAULT_MAX_TEMPLATES
    with pytest.raises(ValueError, match="at least 2 \\* \\(template_number \\+ 1\\) = 8.*or None"):
        TemplateMemoryPolicy(3, max_templates=7)


# --- sessions on the fixture model ------------------------------------------------------------------------
def count_forwards(model) -> list[int]:
    """Record the batch size of every forward of ``model``."""
    batches = []
    model.register_forward_hook(
        lambda module, args, kwargs, output: batches.append(kwargs["pixel_values"].shape[0]), with_kwargs=True
    )
    return batches


def track_alone(frames, box, start=0):
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor)
    return [out.boxes[0] for out in session.propagate(frames[start:], boxes=[box])]


SECOND_BOX = [100.0, 60.0, 30.0, 26.0]


def test_several_objects_share_one_forward_per_frame_and_match_single_object_tracking():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    batches = count_forwards(model)
    session = ODTrackInferenceSession(model, processor)
    outputs = list(session.propagate(frames, boxes=[init_box, SECOND_BOX]))

    assert batches == [2] * (len(frames) - 1)
    assert all(out.object_ids == [1, 2] for out in outputs)
    assert outputs[0].boxes.tolist() == [init_box, SECOND_BOX] and outputs[0].scores.tolist() == [1.0, 1.0]
    for row, box in enumerate([init_box, SECOND_BOX]):
        alone = torch.stack(track_alone(frames, box))
        together = torch.stack([out.boxes[row] for out in outputs])
        assert (alone - together).abs().max() <= 1e-3


def test_objects_added_and_removed_mid_video():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    batches = count_forwards(model)
    session = ODTrackInferenceSession(model, processor)
    outputs = []
    for index, frame in enumerate(frames):
        if index == 8:
            session.remove_objects([1])
        new = {0: [init_box], 4: [SECOND_BOX]}.get(index)
        outputs.append(session.track(frame, new_boxes=new))

    assert [out.object_ids for out in outputs] == [[1]] * 4 + [[1, 2]] * 4 + [[2]] * 4
    assert outputs[4].boxes[1].tolist() == SECOND_BOX and outputs[4].scores[1].item() == 1.0
    # frames 5-7: the two objects have different template counts, so two forwards; then one object
    assert batches == [1, 1, 1, 1] + [1, 1] * 3 + [1] * 4
    late = torch.stack([out.boxes[-1] for out in outputs[4:]])
    assert (late - torch.stack(track_alone(frames, SECOND_BOX, start=4))).abs().max() <= 1e-3
    early = torch.stack([out.boxes[0] for out in outputs[:8]])
    assert (early - torch.stack(track_alone(frames, init_box)[:8])).abs().max() <= 1e-3
    assert session.object_ids == [2]


def test_object_ids_given_explicitly_and_auto_numbered_after_them():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor)
    assert session.track(frames[0], [init_box], new_object_ids=[7]).object_ids == [7]
    assert session.track(frames[1], [SECOND_BOX]).object_ids == [7, 8]


def test_memory_of_the_official_and_bounded_policies():
    frames, init_box, expected = fixture_clip()
    model, processor = fixture_tracker()
    official = ODTrackInferenceSession(model, processor, max_templates=None)
    default = ODTrackInferenceSession(model, processor)
    bounded = ODTrackInferenceSession(model, processor, max_templates=8)
    for frame in frames:
        new = [init_box] if official.frame_idx < 0 else None
        out_official, out_default, _ = (s.track(frame, new) for s in (official, default, bounded))
        assert len(bounded.stored_templates(1)) <= 8
        assert torch.equal(out_default.boxes, out_official.boxes)  # identical while the official memory fits
    tracked = len(frames) - 1
    official_policy = TemplateMemoryPolicy(model.config.tracker_template_number, max_templates=None)
    assert official.stored_templates(1) == official_policy.kept(range(tracked + 1), tracked)
    assert len(official.stored_templates(1)) > 8  # so the bounded memory had to thin
    policy, stored = TemplateMemoryPolicy(model.config.tracker_template_number, max_templates=8), [0]
    for frame in range(1, tracked + 1):
        stored = policy.kept([*stored, frame], frame)
    assert bounded.stored_templates(1) == stored and len(stored) == 8  # the policy, thinned once full
    assert stored != official.stored_templates(1)[-8:]  # thinned across the range, not the newest 8


def test_default_memory_stays_bounded_over_a_long_video_and_none_keeps_the_official_one():
    """A tiny random model with one segment (like the shipped model: the official memory keeps half the
    frames) through 200 frames: the default session stores at most DEFAULT_MAX_TEMPLATES crops."""
    config = tiny_config(tracker_template_number=1)
    model, processor = ODTrackModel(config).eval(), ODTrackProcessor.from_model_config(config)
    rng = np.random.default_rng(0)
    background, square = rng.integers(0, 256, (96, 96, 3), np.uint8), rng.integers(0, 256, (12, 12, 3), np.uint8)
    default = ODTrackInferenceSession(model, processor)
    official = ODTrackInferenceSession(model, processor, max_templates=None)
    for index in range(200):
        frame = background.copy()
        x = 30 + int(20 * np.sin(index / 30))
        frame[40:52, x : x + 12] = square
        for session in (default, official):
            session.track(frame, [[x, 40, 12, 12]] if index == 0 else None)
        assert len(default.stored_templates(1)) <= DEFAULT_MAX_TEMPLATES
        assert official.stored_templates(1) == [0, *range(max(1, (index + 1) // 2), index + 1)]
    crop_bytes = 3 * config.template_size**2
    templates = default._objects[1].templates.values()
    assert sum(t.numel() * t.element_size() for t in templates) == DEFAULT_MAX_TEMPLATES * crop_bytes
    assert len(official.stored_templates(1)) == 101  # the official memory grows with the video


# --- crop backends ------------------------------------------------------------------------------------------
def test_torch_crop_backend_tracks_like_opencv_with_one_crop_call_per_frame(monkeypatch):
    """A generated 320x240 photo sequence whose target starts near the right edge (search crops run off
    the frame) and a second object: the torch crops equal OpenCV's, so boxes and scores are identical."""
    config = GenerationConfig(min_frames=12, max_frames=12, min_size=(320, 240), max_size=(320, 240))
    rendered = list(render_frames(plan_sequence("heldout", 0, config=config)))
    frames = [np.asarray(image.convert("RGB")) for image, _ in rendered]
    x0, y0, x1, y1 = rendered[0][1].box
    boxes = [[x0, y0, x1 - x0, y1 - y0], [100.0, 80.0, 40.0, 30.0]]
    model, processor = fixture_tracker()
    opencv = list(ODTrackInferenceSession(model, processor).propagate(frames, boxes=boxes))

    batches, crop_torch = [], image_processing_odtrack.crop_and_resize_torch

    def counted_crop(frame, crop_boxes, *args):
        batches.append(len(crop_boxes))
        return crop_torch(frame, crop_boxes, *args)

    monkeypatch.setattr(image_processing_odtrack, "crop_and_resize_torch", counted_crop)
    monkeypatch.setattr(image_processing_odtrack, "crop_and_resize", None)  # the OpenCV crop is not called
    processor.image_processor.crop_backend = "torch"  # the session's default comes from the processor
    session = ODTrackInferenceSession(model, processor)
    assert session.crop_backend == "torch"
    with_torch = list(session.propagate(frames, boxes=boxes))

    assert batches == [2] + [2, 2] * (len(frames) - 1)  # first templates, then search crops + new templates
    for ours, reference in zip(with_torch, opencv):
        assert torch.equal(ours.boxes, reference.boxes) and torch.equal(ours.scores, reference.scores)
    assert (opencv[-1].boxes[0] - opencv[0].boxes[0]).abs().max() > 1  # the target was followed, not static


def test_session_rejects_an_unknown_crop_backend():
    model, processor = fixture_tracker()
    with pytest.raises(ValueError, match="crop_backend must be 'opencv'"):
        ODTrackInferenceSession(model, processor, crop_backend="cv2")


# --- errors ------------------------------------------------------------------------------------------------
@pytest.fixture
def started_session():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor)
    session.track(frames[0], [init_box])
    session.track(frames[1])
    return session, frames


def test_a_frame_of_another_size_is_rejected_and_leaves_the_session_unchanged(started_session):
    session, frames = started_session
    session.track(frames[2])
    with pytest.raises(ValueError, match=r"Frame 3 is 80x60 but the video started at 160x120"):
        session.track(frames[3][:60, :80])
    assert session.frame_idx == 2
    assert torch.equal(session.track(frames[3]).boxes[0], track_alone(frames, fixture_clip()[1])[3])


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([170.0, 10.0, 20.0, 20.0], "outside the 160x120 frame"),
        ([10.0, 10.0, 0.0, 20.0], "zero or negative size"),
        ([10.0, 10.0, -5.0, 20.0], "zero or negative size"),
        ([float("nan"), 10.0, 20.0, 20.0], "NaN"),
    ],
)
def test_invalid_new_boxes_are_rejected_without_touching_the_session(started_session, box, message):
    session, frames = started_session
    with pytest.raises(ValueError, match=message):
        session.track(frames[2], new_boxes=[box])
    assert session.frame_idx == 1 and session.object_ids == [1]


@pytest.mark.parametrize("as_array", [np.asarray, torch.tensor])
def test_new_boxes_may_be_arrays_or_tensors(as_array):
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    session = ODTrackInferenceSession(model, processor)
    boxes = [out.boxes[0] for out in session.propagate(frames[:4], boxes=as_array([init_box]))]
    assert all(torch.equal(a, b) for a, b in zip(boxes, track_alone(frames[:4], init_box)))


def test_id_errors(started_session):
    session, frames = started_session
    with pytest.raises(ValueError, match=r"Object ids \[1\] are already in use"):
        session.track(frames[2], new_boxes=[SECOND_BOX], new_object_ids=[1])
    with pytest.raises(ValueError, match="2 new boxes but 1 object ids"):
        session.track(frames[2], new_boxes=[SECOND_BOX, SECOND_BOX], new_object_ids=[5])
    with pytest.raises(ValueError, match=r"Unknown object id 9; tracked ids are \[1\]"):
        session.remove_objects([9])


def test_session_requires_eval_mode_and_matching_crop_sizes():
    model, processor = fixture_tracker()
    with pytest.raises(ValueError, match="call model.eval"):
        ODTrackInferenceSession(model.train(), processor)
    model.eval()
    mismatch = r"processor.search_size \(384\) differs from model.config.search_size \(128\)"
    with pytest.raises(ValueError, match=mismatch):
        ODTrackInferenceSession(model, ODTrackProcessor(template_size=model.config.template_size))


# --- a target leaving the frame ---------------------------------------------------------------------------
class RunawayModel(torch.nn.Module):
    """Always predicts a small box beyond the right edge of the search crop, with a low score."""

    device, dtype = torch.device("cpu"), torch.float32

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.calls = 0

    def forward(self, pixel_values, template_pixel_values, temporal_token=None):
        self.calls += 1
        batch, side = pixel_values.shape[0], self.config.search_feat_size
        box = torch.tensor([1.4, 0.5, 0.1, 0.1])
        return SimpleNamespace(
            pred_boxes=box.expand(batch, 4),
            pred_scores=torch.full((batch,), 0.02),
            score_map=torch.full((batch, 1, side, side), 0.02),
            box_map=box.view(1, 4, 1, 1).expand(batch, 4, side, side),  # the same box at every cell
            temporal_token=torch.zeros(batch, 1, self.config.hidden_size),
        )


def test_a_target_leaving_the_frame_is_clipped_and_tracking_goes_on():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    runaway = RunawayModel(model.config).eval()
    session = ODTrackInferenceSession(runaway, processor)
    outputs = list(session.propagate(frames, boxes=[init_box]))
    assert runaway.calls == len(frames) - 1
    height, width = frames.shape[1:3]
    for out in outputs[1:]:
        x, y, w, h = out.boxes[0].tolist()
        assert 0 <= x <= width - 10 and 0 <= y <= height - 10 and w >= 10 and h >= 10
        assert x + w <= width and y + h <= height
        assert out.scores.tolist() == pytest.approx([0.02])
    assert outputs[-1].boxes[0, 0].item() == width - 10  # pinned to the right edge with the official margin


def test_tracking_runs_under_inference_mode():
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    modes = []
    model.register_forward_hook(lambda *args: modes.append(torch.is_inference_mode_enabled()))
    session = ODTrackInferenceSession(model, processor)
    with torch.enable_grad():
        list(session.propagate(frames[:3], boxes=[init_box]))
    assert modes == [True, True]


@pytest.mark.parametrize("horizon", [None, 1, 3])
def test_temporal_token_horizon_restarts_the_carried_token(horizon):
    """With ``temporal_token_horizon`` H the session passes no token on every H-th tracked frame (and the
    first), so a token is read by at most H - 1 frames; with None it is carried throughout."""
    frames, init_box, _ = fixture_clip()
    model, processor = fixture_tracker()
    model.config.temporal_token_horizon = horizon
    carried = []
    model.register_forward_hook(
        lambda module, args, kwargs, output: carried.append(kwargs.get("temporal_token") is not None), with_kwargs=True
    )
    session = ODTrackInferenceSession(model, processor)
    list(session.propagate(frames, boxes=[init_box]))
    tracked = range(1, len(frames))
    expected = [k > 1 and (horizon is None or k % horizon != 0) for k in tracked]
    assert carried == expected


def test_temporal_token_horizon_must_be_positive():
    with pytest.raises(ValueError, match="temporal_token_horizon must be None"):
        tiny_config(temporal_token_horizon=0)


@pytest.mark.parametrize("interval", [0, -2])
def test_template_refresh_interval_must_be_positive(interval):
    with pytest.raises(ValueError, match="template_refresh_interval must be >= 1"):
        tiny_config(template_refresh_interval=interval)
    with pytest.raises(StrictDataclassFieldValidationError, match="template_refresh_interval"):
        tiny_config(template_refresh_interval=2.5)
