"""Property-based tests (hypothesis) of the crop / map-back geometry and of the tracking session.

Invariants, for random boxes (degenerate, outside the frame, NaN, huge), frame sizes, dtypes and
channel layouts:

- the only exception is the documented ``ValueError`` (bad frame or bad box), raised before any state changes;
- after the first frame every box is finite and inside the frame;
- map-back inverts the crop: the box a search crop is centred on, expressed in that crop's normalised
  coordinates, maps back to itself within 1e-6 of the crop side.

A few hundred cases run in CI; ``-m slow`` runs 10,000 of each.
"""

import math

import numpy as np
import PIL.Image
import pytest
import torch
from conftest import tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odtrack_hf import ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.image_processing_odtrack import map_box_back

QUICK = settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
LONG = settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

sides = st.integers(min_value=16, max_value=320)
coordinates = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False)
lengths = st.floats(min_value=1e-3, max_value=1e4, allow_nan=False)
# anything a user might pass as a coordinate, including the degenerate and the absurd
wild = st.one_of(
    coordinates, st.just(0.0), st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.floats(1e6, 1e12)
)


# --- geometry ----------------------------------------------------------------------------------------
@st.composite
def crop_cases(draw):
    height, width = draw(sides), draw(sides)
    w, h = draw(st.floats(1.0, 2.0 * width)), draw(st.floats(1.0, 2.0 * height))
    x, y = draw(st.floats(-w + 1, width - 1)), draw(st.floats(-h + 1, height - 1))
    factor = draw(st.sampled_from([2.0, 4.0, 5.0]))
    size = draw(st.sampled_from([32, 64, 128, 168, 384]))
    return (height, width), [x, y, w, h], factor, size


def check_map_back_inverts_the_crop(case):
    (height, width), box, factor, size = case
    processor = ODTrackProcessor(search_factor=factor, search_size=size, template_size=32)
    crops = processor(images=np.zeros((height, width, 3), np.uint8), boxes=[box])
    side = float(crops["crop_boxes"][0, 2])
    assert crops["pixel_values"].shape == (1, 3, size, size)
    assert math.isclose(float(crops["resize_factors"][0]), size / side)
    # the target box in its own crop's normalised coordinates: centred, scaled by side
    own = torch.tensor([[0.5, 0.5, box[2] / side, box[3] / side]])
    back = map_box_back(own, crops["target_boxes"], crops["resize_factors"], size)
    assert (back[0] - torch.tensor(box, dtype=torch.float64)).abs().max() / side <= 1e-6


@QUICK
@given(crop_cases())
def test_map_back_inverts_the_crop(case):
    check_map_back_inverts_the_crop(case)


@pytest.mark.slow
@LONG
@given(crop_cases())
def test_map_back_inverts_the_crop_long(case):
    check_map_back_inverts_the_crop(case)


# --- session ---------------------------------------------------------------------------------------
MODEL = ODTrackModel(tiny_config()).eval()
PROCESSOR = ODTrackProcessor(template_size=32, search_size=64)
LAYOUTS = ("hwc", "chw", "grey", "rgba", "pil", "tensor_chw")


def as_layout(frame: np.ndarray, layout: str):
    return {
        "hwc": lambda: frame,
        "chw": lambda: np.ascontiguousarray(frame.transpose(2, 0, 1)),
        "grey": lambda: frame[:, :, 0],
        "rgba": lambda: np.concatenate([frame, frame[:, :, :1]], axis=2),
        "pil": lambda: PIL.Image.fromarray(frame.astype(np.uint8)),  # a PIL image has pixels, not a dtype
        "tensor_chw": lambda: torch.from_numpy(frame).permute(2, 0, 1),
    }[layout]()


@st.composite
def session_cases(draw):
    height, width = draw(sides), draw(sides)
    boxes = draw(
        st.lists(
            st.one_of(
                st.tuples(coordinates, coordinates, lengths, lengths),  # mostly inside or near the frame
                st.tuples(wild, wild, wild, wild),
            ),
            min_size=1,
            max_size=3,
        )
    )
    dtype = draw(st.sampled_from(["uint8"] * 6 + ["float32", "int16", "bool"]))
    layout = draw(st.sampled_from(LAYOUTS))
    num_frames = draw(st.integers(2, 4))
    seed = draw(st.integers(0, 2**16))
    return (height, width), [list(b) for b in boxes], dtype, layout, num_frames, seed


def check_session(case):
    (height, width), boxes, dtype, layout, num_frames, seed = case
    rng = np.random.default_rng(seed)
    session = ODTrackInferenceSession(MODEL, PROCESSOR)
    for index in range(num_frames):
        frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8).astype(dtype)
        try:
            output = session.track(as_layout(frame, layout), boxes if index == 0 else None)
        except ValueError:
            assert index == 0 and session.frame_idx == -1 and not session.object_ids  # nothing changed
            return
        assert output.boxes.shape == (len(boxes), 4) and torch.isfinite(output.scores).all()
        if index > 0:
            x, y, w, h = output.boxes.T
            assert torch.isfinite(output.boxes).all()
            assert (x >= 0).all() and (y >= 0).all() and (w > 0).all() and (h > 0).all()
            assert (x + w <= width + 1e-9).all() and (y + h <= height + 1e-9).all()


@QUICK
@given(session_cases())
def test_session_survives_any_boxes_frames_and_layouts(case):
    check_session(case)


@pytest.mark.slow
@LONG
@given(session_cases())
def test_session_survives_any_boxes_frames_and_layouts_long(case):
    check_session(case)
