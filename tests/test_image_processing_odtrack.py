"""Crops, normalisation, geometry helpers and input handling of ODTrackImageProcessor."""

import json
import math
from types import SimpleNamespace

import cv2
import numpy as np
import PIL.Image
import pytest
import skimage.data
import torch
from parity import fixture_dirs

from odtrack_hf import ODTrackConfig, ODTrackImageProcessor, ODTrackModel
from odtrack_hf.image_processing_odtrack import (
    CROP_BACKENDS,
    check_box,
    clip_boxes,
    crop_and_resize,
    crop_and_resize_torch,
    crop_window,
    hann_window,
    map_box_back,
)

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def official_sample_target(im, target_bb, search_area_factor, output_sz):
    """Verbatim logic of the official lib/train/data/processing_utils.py::sample_target (no mask)."""
    x, y, w, h = target_bb
    crop_sz = math.ceil(math.sqrt(w * h) * search_area_factor)
    if crop_sz < 1:
        raise Exception("Too small bounding box.")
    x1 = round(x + 0.5 * w - crop_sz * 0.5)
    x2 = x1 + crop_sz
    y1 = round(y + 0.5 * h - crop_sz * 0.5)
    y2 = y1 + crop_sz
    x1_pad = max(0, -x1)
    x2_pad = max(x2 - im.shape[1] + 1, 0)
    y1_pad = max(0, -y1)
    y2_pad = max(y2 - im.shape[0] + 1, 0)
    im_crop = im[y1 + y1_pad : y2 - y2_pad, x1 + x1_pad : x2 - x2_pad, :]
    im_crop_padded = cv2.copyMakeBorder(im_crop, y1_pad, y2_pad, x1_pad, x2_pad, cv2.BORDER_CONSTANT)
    return cv2.resize(im_crop_padded, (output_sz, output_sz)), output_sz / crop_sz


def official_normalise(crop):
    """The official Preprocessor: float tensor / 255, minus mean, divided by std."""
    tensor = torch.tensor(crop).float().permute((2, 0, 1)).unsqueeze(dim=0)
    mean = torch.tensor(MEAN).view((1, 3, 1, 1))
    std = torch.tensor(STD).view((1, 3, 1, 1))
    return ((tensor / 255.0) - mean) / std


# --- crop --------------------------------------------------------------------------------------------
def test_crop_matches_official_sample_target_on_random_images_and_borders():
    rng = np.random.default_rng(7)
    checked_border = 0
    for _ in range(300):
        height, width = rng.integers(20, 90, size=2)
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        w, h = rng.uniform(2, 40, size=2)
        x, y = rng.uniform(-w + 1, width - 1), rng.uniform(-h + 1, height - 1)
        factor = float(rng.choice([2.0, 4.0, 5.0, 1.3]))
        size = int(rng.choice([16, 32, 64, 112]))
        x1, y1, side = crop_window([x, y, w, h], factor)
        if not (x1 + side > 0 and y1 + side > 0 and x1 < width - 1 and y1 < height - 1):
            continue  # window misses the image: the official slicing wraps around (see the test below)
        crop, _ = crop_and_resize(image, [x, y, w, h], factor, size)
        expected, resize_factor = official_sample_target(image, [x, y, w, h], factor, size)
        np.testing.assert_array_equal(crop, expected)
        assert size / side == resize_factor
        checked_border += x1 < 0 or y1 < 0 or x1 + side >= width or y1 + side >= height
    assert checked_border > 100  # most windows touch a border: zero padding and the +1 quirk are exercised


def test_window_that_misses_the_image_gives_a_black_crop():
    # a thin box that overlaps the frame, but whose square window lies entirely above it
    image = np.full((40, 40, 3), 255, dtype=np.uint8)
    crop, (x1, y1, side) = crop_and_resize(image, [10, -37, 3, 38], 2.0, 16)
    assert y1 + side <= 0 and (crop == 0).all()


def test_crop_drops_last_row_and_column_at_the_border():
    """Official quirk: a window reaching the right/bottom edge gets a zero column instead of column W-1."""
    image = np.full((10, 10, 3), 200, dtype=np.uint8)
    crop, window = crop_and_resize(image, [6, 6, 4, 4], 1.0, 4)  # window [6, 10) x [6, 10), no resize
    assert window == (6, 6, 4)
    assert (crop[:3, :3] == 200).all()
    assert (crop[3, :] == 0).all() and (crop[:, 3] == 0).all()


@pytest.mark.parametrize(
    ("x", "expected_x1"),
    [(4.5, 2), (5.5, 4), (1.5, 0), (0.5, -2), (-0.5, -2), (-1.5, -4), (2.0, 0)],  # corner x - 2: 2.5 -> 2, 3.5 -> 4
)
def test_crop_corner_uses_bankers_rounding_at_half(x, expected_x1):
    # w = h = 4 and factor 2: side 8, corner = x + 2 - 4
    assert crop_window([x, 10.0, 4.0, 4.0], 2.0) == (expected_x1, 8, 8)


def test_crop_side_is_ceiled():
    assert crop_window([0, 0, 10.0, 10.0], 2.05)[2] == 21  # 20.5 -> 21
    assert crop_window([0, 0, 24.0, 20.0], 5.0)[2] == 110  # sqrt(480) * 5 = 109.5 -> 110


def test_processor_pixel_values_equal_official_normalised_crops():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    boxes = [[30.0, 44.0, 24.0, 20.0], [140.0, 100.0, 30.0, 25.0]]
    out = ODTrackImageProcessor()(image, boxes, crop_factor=5.0, output_size=128)
    assert out["pixel_values"].dtype == torch.float32 and out["pixel_values"].shape == (2, 3, 128, 128)
    for row, box in enumerate(boxes):
        crop, resize_factor = official_sample_target(image, box, 5.0, 128)
        assert torch.equal(out["pixel_values"][row : row + 1], official_normalise(crop))
        assert out["resize_factors"][row].item() == resize_factor
    assert out["target_boxes"].dtype == torch.float64 and out["target_boxes"].tolist() == boxes
    assert out["crop_boxes"].dtype == torch.float64
    assert out["crop_boxes"].tolist() == [[-13.0, -1.0, 110.0, 110.0], [86.0, 44.0, 137.0, 137.0]]
    assert out["image_sizes"].tolist() == [[120, 160], [120, 160]]


def test_uint8_crops_normalise_to_the_same_pixels():
    processor = ODTrackImageProcessor()
    image = np.random.default_rng(0).integers(0, 256, (50, 70, 3), dtype=np.uint8)
    normalised = processor(image, [[10, 10, 20, 15]])["pixel_values"]
    raw = processor(image, [[10, 10, 20, 15]], do_rescale=False, do_normalize=False)["pixel_values"]
    assert raw.dtype == torch.uint8 and raw.shape == (1, 3, 192, 192)
    assert torch.equal(processor.normalize_crops(raw), normalised)


# --- torch crop ------------------------------------------------------------------------------------------
PHOTOS = {"astronaut": skimage.data.astronaut(), "chelsea": skimage.data.chelsea(), "coffee": skimage.data.coffee()}


def photo_boxes(image: np.ndarray) -> list[list[float]]:
    """Boxes whose factor-2 windows (and factor-5 ones more so) cover every case of the crop: inside the
    frame, off each edge and corner, ending on the last row/column, up- and downscaled, and entirely outside."""
    height, width = image.shape[:2]
    return [
        [width / 3, height / 3, 60.0, 45.0],  # inside
        [width / 2, height / 2, 7.0, 9.0],  # small: a strong upscale
        [-20.0, height / 2, 50.0, 30.0],  # off the left edge
        [width / 2, -12.5, 33.3, 41.7],  # off the top edge
        [width - 25.0, height - 30.0, 40.0, 40.0],  # off the bottom-right corner
        [width - 32.0, height - 32.0, 32.0, 32.0],  # the factor-1 window ends at the last row and column
        [-30.0, -30.0, 200.0, 160.0],  # large, off the top-left corner
        [width / 4, height / 4, 32.0, 32.0],  # factor-2 side 64: twice 32 (OpenCV switches to INTER_AREA)
        [10.0, height - 3.0, 3.0, 60.0],  # thin box at the bottom: its window misses the frame
    ]


@pytest.mark.parametrize("name", sorted(PHOTOS))
def test_torch_crop_equals_the_opencv_crop_on_photos(name):
    """Documented tolerance: at most one grey level (OpenCV's scalar kernel rounds its vertical pass);
    with the SIMD kernels opencv-python runs on x86-64 and ARM the crops are equal pixel for pixel."""
    image = PHOTOS[name]
    boxes = photo_boxes(image)
    for factor, size in ((2.0, 32), (2.0, 128), (5.0, 384), (1.0, 37)):
        crops, windows = crop_and_resize_torch(image, boxes, factor, size)
        assert crops.dtype == torch.uint8 and crops.shape == (len(boxes), 3, size, size)
        for crop, window, box in zip(crops, windows, boxes):
            expected, expected_window = crop_and_resize(image, box, factor, size)
            difference = np.abs(crop.permute(1, 2, 0).numpy().astype(int) - expected)
            assert window == expected_window
            assert difference.max() <= 1, (box, factor, size)
            assert (difference == 0).all(), f"{(difference > 0).mean():.2%} of the pixels differ: {box, factor, size}"


def test_torch_crop_of_a_batch_equals_one_box_at_a_time_and_takes_any_frame_layout():
    image = PHOTOS["coffee"]
    boxes = photo_boxes(image)
    batched, windows = crop_and_resize_torch(image, boxes, 5.0, 64)
    for row, box in enumerate(boxes):
        single, single_windows = crop_and_resize_torch(image, [box], 5.0, 64)
        assert torch.equal(single[0], batched[row]) and single_windows == windows[row : row + 1]
    chw = torch.from_numpy(image).permute(2, 0, 1)
    assert torch.equal(crop_and_resize_torch(chw, boxes, 5.0, 64)[0], batched)
    empty, no_windows = crop_and_resize_torch(image, [], 5.0, 64)
    assert empty.shape == (0, 3, 64, 64) and no_windows == []


def test_processor_torch_backend_gives_the_opencv_outputs():
    frames = [PHOTOS["chelsea"], PHOTOS["chelsea"][::-1, ::-1]]  # the second: negative numpy strides
    boxes = [photo_boxes(frames[0])[:4], photo_boxes(frames[1])[4:]]
    for options in ({}, {"do_rescale": False, "do_normalize": False}):
        opencv = ODTrackImageProcessor()(frames, boxes, crop_factor=5.0, output_size=96, **options)
        torch_crops = ODTrackImageProcessor(crop_backend="torch")(
            frames, boxes, crop_factor=5.0, output_size=96, **options
        )
        assert opencv.keys() == torch_crops.keys()
        for key in opencv:
            assert torch.equal(torch_crops[key], opencv[key]), key
        assert torch_crops["pixel_values"].is_contiguous()


def test_crop_backend_is_checked_with_the_valid_values_named():
    with pytest.raises(ValueError, match="crop_backend must be 'opencv' .* or 'torch' .*; got 'cuda'"):
        ODTrackImageProcessor(crop_backend="cuda")
    with pytest.raises(ValueError, match="got 'gpu'"):
        ODTrackImageProcessor()(PHOTOS["coffee"], [[10, 10, 20, 20]], crop_backend="gpu")
    processor = ODTrackImageProcessor()
    processor.crop_backend = "OpenCV"
    with pytest.raises(ValueError, match="got 'OpenCV'"):
        processor(PHOTOS["coffee"], [[10, 10, 20, 20]])


def test_saved_image_processor_keeps_its_crop_backend(tmp_path):
    assert ODTrackImageProcessor().crop_backend == "opencv"
    ODTrackImageProcessor(crop_backend="torch").save_pretrained(tmp_path)
    assert json.loads((tmp_path / "preprocessor_config.json").read_text())["crop_backend"] == "torch"
    assert ODTrackImageProcessor.from_pretrained(tmp_path).crop_backend == "torch"


def test_torch_backend_frames_become_hwc_tensors_once():
    processor = ODTrackImageProcessor(crop_backend="torch")
    chw = torch.from_numpy(PHOTOS["coffee"]).permute(2, 0, 1)
    frame = processor.process_image(chw, device="cpu")
    assert frame.shape == (400, 600, 3) and frame.is_contiguous() and torch.equal(frame, chw.permute(1, 2, 0))
    assert processor.process_image(frame).data_ptr() == frame.data_ptr()  # a converted frame is not copied again
    assert isinstance(processor.process_image(chw, crop_backend="opencv"), np.ndarray)


def test_several_frames_with_their_own_boxes():
    frames = [np.full((40, 50, 3), value, dtype=np.uint8) for value in (10, 250)]
    out = ODTrackImageProcessor()(frames, [[[5, 5, 10, 10]], [[1, 2, 8, 8], [20, 20, 9, 9]]], output_size=32)
    assert out["pixel_values"].shape == (3, 3, 32, 32)
    assert out["target_boxes"].tolist() == [[5, 5, 10, 10], [1, 2, 8, 8], [20, 20, 9, 9]]


# --- inputs --------------------------------------------------------------------------------------------
def _crop(image, crop_backend="opencv"):
    return ODTrackImageProcessor(crop_backend=crop_backend)(image, [[3, 4, 12, 10]], output_size=32)["pixel_values"]


@pytest.mark.parametrize("crop_backend", CROP_BACKENDS)
def test_accepted_frame_types_give_identical_crops(crop_backend):
    rgb = np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    reference = _crop(rgb)
    for frame in (
        rgb,
        PIL.Image.fromarray(rgb),
        torch.from_numpy(rgb),  # HWC
        torch.from_numpy(rgb).permute(2, 0, 1),  # CHW
        np.ascontiguousarray(rgb.transpose(2, 0, 1)),  # CHW numpy, as transformers' processors accept
        np.concatenate([rgb, np.full((30, 40, 1), 7, np.uint8)], axis=2),  # RGBA: alpha dropped
        PIL.Image.fromarray(rgb).convert("RGBA"),
    ):
        assert torch.equal(_crop(frame, crop_backend), reference)


@pytest.mark.parametrize("crop_backend", CROP_BACKENDS)
def test_grey_frames_become_rgb(crop_backend):
    grey = np.random.default_rng(2).integers(0, 256, (30, 40), dtype=np.uint8)
    reference = _crop(np.repeat(grey[:, :, None], 3, axis=2))
    for frame in (grey, grey[:, :, None], grey[None], PIL.Image.fromarray(grey), torch.from_numpy(grey)[None]):
        assert torch.equal(_crop(frame, crop_backend), reference)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (np.zeros((30, 40, 3), dtype=np.float32), "numpy array of dtype float32"),
        (torch.zeros(3, 30, 40), "torch tensor of dtype float32"),
        (np.zeros((2, 30, 40, 3), dtype=np.uint8), "shape (2, 30, 40, 3)"),
        (np.zeros((30, 40, 2), dtype=np.uint8), "shape (30, 40, 2)"),
        ("frame.png", "got str"),
        ([[1, 2], [3, 4]], "got list"),
    ],
)
@pytest.mark.parametrize("crop_backend", CROP_BACKENDS)
def test_unsupported_frames_are_rejected_with_what_was_received(frame, message, crop_backend):
    images = [frame] if isinstance(frame, list) else frame
    with pytest.raises(ValueError, match="Expected a video frame as a PIL image") as error:
        ODTrackImageProcessor(crop_backend=crop_backend)(images, [[1, 1, 5, 5]])
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("box", "message"),
    [
        ([float("nan"), 1, 5, 5], "NaN or infinity"),
        ([1, 1, 0, 5], "zero or negative size"),
        ([1, 1, 5, -2], "zero or negative size"),
        ([40, 1, 5, 5], "outside the 40x30 frame"),
        ([-10, 1, 10, 5], "outside the 40x30 frame"),
        ([1, 2, 3], "must be 4 numbers"),
    ],
)
def test_invalid_boxes_are_rejected(box, message):
    with pytest.raises(ValueError, match=message):
        check_box(box, (30, 40))


def test_box_partly_outside_the_frame_is_accepted():
    assert check_box([-5, -5, 10, 10], (30, 40)) == [-5.0, -5.0, 10.0, 10.0]


def test_boxes_in_the_wrong_layout_name_the_expected_one():
    image = np.zeros((30, 40, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"list of \[x, y, w, h\] boxes"):
        ODTrackImageProcessor()(image, [1, 2, 3, 4])


# --- geometry --------------------------------------------------------------------------------------
def test_hann_window_is_the_official_centred_window():
    window = hann_window(24)
    assert window.dtype == torch.float32 and window.shape == (24, 24)
    one_d = 0.5 * (1 - torch.cos((2 * math.pi / 25) * torch.arange(1, 25).float()))
    assert torch.equal(window, one_d.reshape(1, 1, -1, 1).mul(one_d.reshape(1, 1, 1, -1))[0, 0])
    assert one_d[0].item() == pytest.approx(0.0157, abs=1e-4)
    assert one_d[11].item() == pytest.approx(0.99606, abs=1e-5) and one_d[12].item() == pytest.approx(0.99606, abs=1e-5)
    torch.testing.assert_close(window[11:13, 11:13], torch.full((2, 2), 0.99213), atol=1e-5, rtol=0)
    assert window.argmax().item() == 11 * 24 + 11  # float32 rounding makes (11, 11) the single peak
    assert window[0, 0].item() == pytest.approx(2.47e-4, rel=1e-2)


def test_map_box_back_puts_a_centred_prediction_on_the_previous_centre():
    # previous box (30, 44, 24, 20): centre (42, 54), search side 110, crop 128 px
    boxes = map_box_back(
        torch.tensor([[0.5, 0.5, 0.2, 0.25]]),
        torch.tensor([[30.0, 44.0, 24.0, 20.0]], dtype=torch.float64),
        torch.tensor([128 / 110], dtype=torch.float64),
        128,
    )
    assert boxes.dtype == torch.float64
    torch.testing.assert_close(boxes, torch.tensor([[42 - 11, 54 - 13.75, 22, 27.5]], dtype=torch.float64))


def test_clip_boxes_left_top_right_bottom_and_minimum_size():
    boxes = torch.tensor(
        [
            [-15.0, -5.0, 30.0, 20.0],  # leaves left/top: x1 -> 0, keeps x2 = 15
            [-25.0, -30.0, 20.0, 10.0],  # entirely left/above: x2 -> margin, size -> margin
            [95.0, 75.0, 30.0, 30.0],  # leaves right/bottom: x1 -> W - 10, x2 -> W
            [20.0, 20.0, 4.0, 3.0],  # small: at least 10 x 10
        ],
        dtype=torch.float64,
    )
    clipped = clip_boxes(boxes, torch.tensor([[80, 100]] * 4))
    assert clipped.tolist() == [[0, 0, 15, 15], [0, 0, 10, 10], [90, 70, 10, 10], [20, 20, 10, 10]]


def test_post_process_reproduces_official_boxes_from_recorded_predictions():
    """Golden: the fixtures' decoded crop boxes and search geometry map back to the official boxes bit for bit."""
    directory = next((d for d in fixture_dirs() if (d / "tracker_outputs.json").is_file()), None)
    if directory is None:
        pytest.skip("no tracker fixtures")
    tracker = json.loads((directory / "config.json").read_text())["tracker"]
    expected = json.loads((directory / "tracker_outputs.json").read_text())
    processor = ODTrackImageProcessor(output_size=tracker["search_size"])
    height, width = 120, 160
    for frame in expected["per_frame"]:

        class Outputs:
            pred_boxes = torch.tensor([frame["pred_box_crop_norm_cxcywh"]], dtype=torch.float32)
            pred_scores = torch.tensor([0.5])

        result = processor.post_process_object_tracking(
            Outputs,
            torch.tensor([frame["search_crop"]["box_used"]], dtype=torch.float64),
            torch.tensor([frame["search_crop"]["resize_factor"]], dtype=torch.float64),
            torch.tensor([[height, width]]),
        )
        assert result["boxes"][0].tolist() == expected["boxes_xywh"][frame["frame"]]
        assert result["scores"].tolist() == [0.5]


@pytest.mark.parametrize(("grid", "cell"), [(7, 3), (8, 3), (12, 5), (14, 6), (16, 7), (24, 11)])
def test_ctr_point_vote_rows_use_the_upper_left_centre_cell_on_even_grids(grid, cell):
    config = ODTrackConfig(
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        template_size=16 * grid,
        search_size=32,
        head_channels=8,
        ce_layers=[1],
        ce_keep_ratios=[0.7],
    )
    rows = ODTrackModel(config).ce_vote_rows(2, torch.device("cpu"))
    centre = cell * grid + cell
    assert rows.tolist() == [1 + centre, 1 + grid * grid + centre]  # +1: the temporal token comes first


def test_post_process_window_re_picks_the_peak_from_the_box_map():
    """The tracker's window chooses the cell; the box comes from the model's box map there, the score stays raw."""
    score_map = torch.full((2, 1, 4, 4), 0.1)
    score_map[:, 0, 0, 0] = 0.9  # the raw peak, in a corner
    score_map[:, 0, 2, 1] = 0.6
    box_map = torch.rand(2, 4, 4, 4, generator=torch.Generator().manual_seed(0))
    outputs = SimpleNamespace(
        score_map=score_map, box_map=box_map, pred_boxes=box_map[:, :, 0, 0], pred_scores=score_map[:, 0, 0, 0]
    )
    processor = ODTrackImageProcessor(output_size=64)
    geometry = (torch.tensor([[10.0, 10.0, 20.0, 20.0]] * 2), torch.tensor([0.64, 0.64]), torch.tensor([[200, 200]] * 2))
    raw = processor.post_process_object_tracking(outputs, *geometry)
    windowed = processor.post_process_object_tracking(outputs, *geometry, score_map_window=hann_window(4))
    assert raw["scores"].tolist() == pytest.approx([0.9, 0.9])
    assert windowed["scores"].tolist() == pytest.approx([0.6, 0.6])  # the raw value at the windowed peak
    expected = processor.post_process_object_tracking(
        SimpleNamespace(pred_boxes=box_map[:, :, 2, 1], pred_scores=score_map[:, 0, 2, 1]), *geometry
    )
    assert torch.equal(windowed["boxes"], expected["boxes"])
