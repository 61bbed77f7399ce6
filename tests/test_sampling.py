"""Clip sampler, augmentation geometry and the training-clip dataset (data/sampling, data/augment, data/collate)."""

import numpy as np
import pytest
import torch
from PIL import Image

from odtrack_hf.data.augment import ClipAugmentation, box_to_crop, crop_has_content, jitter_box
from odtrack_hf.data.collate import TrackingClipDataset, collate_clips
from odtrack_hf.data.sampling import CausalClipSampler, ClipSample
from odtrack_hf.data.sources import FolderSource, Sequence, SequenceSource
from odtrack_hf.image_processing_odtrack import crop_and_resize

from conftest import tiny_config

MEAN = torch.tensor([0.485, 0.456, 0.406]).reshape(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).reshape(3, 1, 1)


class MemorySource(SequenceSource):
    """Sequences held in memory (frames are never read by the sampler)."""

    def __init__(self, visibilities: list[np.ndarray], is_video: bool = True, name: str = "memory"):
        self.visibilities = [np.asarray(v, dtype=bool) for v in visibilities]
        self.names = [f"{name}{i}" for i in range(len(visibilities))]
        self.is_video = is_video
        self.loads = 0

    def _load(self, index: int) -> Sequence:
        self.loads += 1
        visible = self.visibilities[index]
        boxes = np.tile([10.0, 10.0, 20.0, 20.0], (len(visible), 1))
        return Sequence(self.names[index], [f"{i}.jpg" for i in range(len(visible))], boxes, visible)

    def __repr__(self) -> str:
        return f"MemorySource({self.names[0][:-1]})"


def draws(sampler: CausalClipSampler, count: int, start: int = 0) -> list[ClipSample]:
    return [sampler.draw(sampler.generator(index)) for index in range(start, start + count)]


# --- sampler -----------------------------------------------------------------------------------------


def test_causal_order_and_interval_bounds():
    # all frames visible: the windows never widen, so the official bounds hold exactly
    sampler = CausalClipSampler([MemorySource([np.ones(1000)])], max_sample_interval=50, seed=1)
    spans = []
    for clip in draws(sampler, 300):
        templates, search = clip.template_frames, clip.search_frames
        assert len(templates) == 3 and len(search) == 2
        assert list(templates) == sorted(templates) and list(search) == sorted(search)
        base = templates[-1]  # the base is the latest template
        assert 2 <= base < 1000 - 2
        assert base - 50 <= templates[0]
        assert base < search[0] and search[-1] < base + 50  # search strictly after every template
        spans.append(search[-1] - templates[0])
    assert max(spans) > 60  # clips really span both windows (up to ~2 x 50 frames)


def test_only_visible_frames_are_sampled():
    visible = np.random.default_rng(0).random(300) > 0.6
    sampler = CausalClipSampler([MemorySource([visible])], max_sample_interval=30, seed=2)
    for clip in draws(sampler, 200):
        assert visible[list(clip.template_frames + clip.search_frames)].all()
        assert clip.template_frames[-1] < clip.search_frames[0]


def test_windows_widen_when_no_visible_frame_is_in_reach():
    visible = np.zeros(600, dtype=bool)
    visible[::50] = True  # 12 visible frames, 50 apart: more than max_sample_interval
    sampler = CausalClipSampler([MemorySource([visible])], max_sample_interval=20, seed=2)
    for clip in draws(sampler, 50):
        frames = clip.template_frames + clip.search_frames
        assert visible[list(frames)].all()
        base = clip.template_frames[-1]
        assert clip.template_frames[0] < base < clip.search_frames[0]  # found only after widening by >= 30
        assert clip.search_frames[-1] - base >= 50


def test_unusable_sequences_are_redrawn_and_reported():
    short = np.ones(15)  # fewer than min_sequence_length frames
    few_visible = np.r_[np.ones(10), np.zeros(30)]  # not more than 2 * (3 + 2) visible frames
    good = np.ones(30)
    source = MemorySource([short, few_visible, good])
    sampler = CausalClipSampler([source], seed=3)
    assert {clip.sequence_index for clip in draws(sampler, 50)} == {2}
    assert sampler.draw(sampler.generator(0)).sequence.name == "memory2"

    # a lower min_sequence_length admits the short video
    lenient = CausalClipSampler([source], min_sequence_length=10, seed=3)
    assert {clip.sequence_index for clip in draws(lenient, 50)} == {0, 2}

    hopeless = CausalClipSampler([MemorySource([short, few_visible], name="bad")], seed=3)
    with pytest.raises(ValueError, match="MemorySource\\(bad\\).*at least 20 frames.*more than 10 visible"):
        hopeless.draw(hopeless.generator(0))


def test_static_images_are_repeated_as_videos():
    images = MemorySource([np.zeros(1)] * 5, is_video=False, name="coco")  # visibility is ignored for images
    sampler = CausalClipSampler([images], num_templates=3, num_search_frames=2, seed=4)
    for clip in draws(sampler, 20):
        assert clip.template_frames == (0, 0, 0) and clip.search_frames == (0, 0)


def test_dataset_ratios():
    videos, images = MemorySource([np.ones(40)] * 3), MemorySource([np.ones(1)] * 3, is_video=False)
    sampler = CausalClipSampler([videos, images], ratios=[3, 1], seed=5)
    share = np.mean([clip.source == 0 for clip in draws(sampler, 2000)])
    assert 0.72 < share < 0.78
    only_images = CausalClipSampler([videos, images], ratios=[0, 2], seed=5)
    assert {clip.source for clip in draws(only_images, 100)} == {1}
    with pytest.raises(ValueError, match="one non-negative weight per dataset"):
        CausalClipSampler([videos, images], ratios=[1])


def test_draws_depend_only_on_seed_rank_and_index():
    def frames(sampler, index, attempt=0):
        clip = sampler.draw(sampler.generator(index, attempt))
        return clip.sequence_index, clip.template_frames, clip.search_frames

    visibilities = [np.random.default_rng(i).random(120) > 0.3 for i in range(6)] + [np.ones(12)]
    fresh = CausalClipSampler([MemorySource(visibilities)], seed=7)
    used = CausalClipSampler([MemorySource(visibilities)], seed=7)
    draws(used, 300, start=1000)  # fills its cache of unusable sequences
    assert used._unusable[0] == {6}
    for index in (0, 5, 99):
        assert frames(fresh, index) == frames(used, index)  # order of calls and cache do not matter
    assert [frames(fresh, i) for i in range(20)] != [frames(fresh, i, attempt=1) for i in range(20)]
    other_rank = CausalClipSampler([MemorySource(visibilities)], seed=7, rank=1)
    other_seed = CausalClipSampler([MemorySource(visibilities)], seed=8)
    reference = [frames(fresh, i) for i in range(20)]
    assert reference != [frames(other_rank, i) for i in range(20)]
    assert reference != [frames(other_seed, i) for i in range(20)]


def test_state_dict_resumes_the_index_stream():
    sampler = CausalClipSampler([MemorySource([np.ones(30)])], seed=9, rank=1)
    stream = iter(sampler)
    assert [next(stream) for _ in range(3)] == [0, 1, 2]
    sampler.advance(8)
    sampler.advance(8)
    state = sampler.state_dict()
    assert state == {"seed": 9, "position": 16}

    resumed = CausalClipSampler([MemorySource([np.ones(30)])], seed=9, rank=1)
    resumed.load_state_dict(state)
    stream = iter(resumed)
    assert [next(stream) for _ in range(3)] == [16, 17, 18]
    wrong_seed = CausalClipSampler([MemorySource([np.ones(30)])], seed=10)
    with pytest.raises(ValueError, match="seed 9.*seed 10"):
        wrong_seed.load_state_dict(state)


# --- augmentation geometry ---------------------------------------------------------------------------


def test_jitter_box_statistics():
    rng = np.random.default_rng(0)
    box = np.array([100.0, 50.0, 40.0, 10.0])
    assert np.array_equal(jitter_box(box, 0.0, 0.0, rng), box)
    jittered = np.stack([jitter_box(box, 4.5, 0.5, rng) for _ in range(4000)])
    log_scale = np.log(jittered[:, 2:] / box[2:])
    assert np.allclose(log_scale.std(axis=0), 0.5, atol=0.03)
    centre_shift = jittered[:, :2] + jittered[:, 2:] / 2 - (box[:2] + box[2:] / 2)
    offset = centre_shift / np.sqrt(jittered[:, 2:].prod(axis=1))[:, None]
    assert np.all(np.abs(offset) <= 2.25) and np.all(offset.max(axis=0) > 2.1)  # uniform in +-4.5/2


def test_box_to_crop_official_formula():
    # crop made around the box itself: the box is centred on pixel (S - 1) / 2, scaled by S / side
    label = box_to_crop([30.0, 40.0, 20.0, 10.0], [30.0, 40.0, 20.0, 10.0], crop_side=50, output_size=100)
    assert np.allclose(label * 100, [49.5 - 20, 49.5 - 10, 40, 20])
    # moving the crop centre right by 5 image pixels moves the box left by 5 * S / side crop pixels
    shifted = box_to_crop([30.0, 40.0, 20.0, 10.0], [35.0, 40.0, 20.0, 10.0], crop_side=50, output_size=100)
    assert np.allclose((shifted - label) * 100, [-10, 0, 0, 0])


def test_crop_has_content():
    image_size = (48, 64)  # height, width
    assert crop_has_content((10, 5, 30), image_size, 64, 16)
    assert not crop_has_content((100, 5, 30), image_size, 64, 16)  # entirely right of the image
    assert not crop_has_content((-40, -40, 30), image_size, 64, 16)  # entirely above-left
    # only the last image column is covered: the official crop never reads it, so it is all padding
    assert not crop_has_content((63, 5, 30), image_size, 64, 16)
    # a strip of image that no token-grid sample point (window pixels 0, 16, 32, 48) falls on is rejected
    # too (official check); here the image covers window pixels 58..63, then 40..63
    assert not crop_has_content((-58, 5, 64), image_size, 64, 16)
    assert crop_has_content((-40, 5, 64), image_size, 64, 16)


# --- the training-clip dataset -----------------------------------------------------------------------


def object_image(box: tuple[int, int, int, int], size=(150, 200)) -> np.ndarray:
    """Grey frame with a bright object whose left half is red and right half blue."""
    x, y, w, h = box
    image = np.full((*size, 3), 100, dtype=np.uint8)
    image[y : y + h, x : x + w] = (255, 255, 255)
    image[y : y + h, x : x + w // 2, 2] = 0  # left half: yellow-ish (no blue)
    image[y : y + h, x + w // 2 : x + w, 0] = 0  # right half: cyan-ish (no red)
    return image


def denormalise(crop: torch.Tensor) -> np.ndarray:
    return ((crop * STD + MEAN) * 255).permute(1, 2, 0).numpy()


def object_extent(crop: np.ndarray) -> tuple[float, float, float, float]:
    """x1, y1, x2, y2 of the bright object (continuous pixel edges, half-level threshold)."""
    mask = crop.mean(axis=2) > 0.5 * (100 + 170)
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def orientation(crop: np.ndarray) -> bool | None:
    """True when the object's yellow half is left of its cyan half, None when one half is out of view."""
    yellow = (crop[..., 0] > 200) & (crop[..., 2] < 50)
    cyan = (crop[..., 2] > 200) & (crop[..., 0] < 50)
    if not yellow.any() or not cyan.any():
        return None
    return np.nonzero(yellow)[1].mean() < np.nonzero(cyan)[1].mean()


@pytest.mark.parametrize("flip_mode", ["clip", "crop"])
def test_labels_match_the_object_in_the_crops(flip_mode):
    box = (70, 50, 30, 20)
    images = {0: object_image(box)}
    sequence = Sequence("synthetic", ["frame.png"], [box], [True])
    clip = ClipSample(0, 0, sequence, (0, 0, 0), (0, 0))
    augmentation = ClipAugmentation(flip_mode=flip_mode, grayscale_probability=0.0, brightness_jitter=0.0)
    dataset = TrackingClipDataset(None, tiny_config(template_size=64, search_size=128), augmentation)
    orientations, compared = [], 0
    for seed in range(12):
        item = dataset.process(clip, images, np.random.default_rng(seed))
        assert item["template_pixel_values"].shape == (3, 3, 64, 64) and item["pixel_values"].shape == (2, 3, 128, 128)
        for crop, label in zip(item["pixel_values"], item["labels"]):
            label = label.numpy() * 128
            measured = np.array(object_extent(denormalise(crop)))
            # the official label ignores the crop-corner rounding and centres the crop on (S - 1) / 2:
            # within 0.5 + 0.5 * resize factor pixels, plus 0.5 for the blurred edge of the object
            tolerance = 1.0 + 0.5 * (label[2] - label[0]) / box[2]
            inside = (label > tolerance) & (label < 128 - tolerance)  # edges the crop shows
            assert np.allclose(label[inside], measured[inside], atol=tolerance), (seed, label, measured)
            compared += inside.sum()
        crops = [*item["template_pixel_values"], *item["pixel_values"]]
        orientations.append({orientation(denormalise(crop)) for crop in crops} - {None})
    assert compared > 60
    if flip_mode == "clip":
        assert all(len(per_clip) == 1 for per_clip in orientations)  # templates and search frames mirrored together
    else:
        assert any(len(per_clip) == 2 for per_clip in orientations)  # the official independent flips
    assert set.union(*orientations) == {True, False}  # both orientations occur


def test_template_crop_is_centred_on_the_box():
    box = (70, 50, 30, 20)
    sequence = Sequence("synthetic", ["frame.png"], [box], [True])
    dataset = TrackingClipDataset(None, tiny_config(template_size=64), ClipAugmentation(flip_probability=0.0))
    item = dataset.process(ClipSample(0, 0, sequence, (0, 0, 0), (0, 0)), {0: object_image(box)}, np.random.default_rng(0))
    x1, y1, x2, y2 = object_extent(denormalise(item["template_pixel_values"][0]))
    crop, (_, _, side) = crop_and_resize(object_image(box), box, 2.0, 64)
    assert abs((x1 + x2) / 2 - 32) <= 1 and abs((y1 + y2) / 2 - 32) <= 1
    assert abs((x2 - x1) - 30 * 64 / side) <= 1


def write_sequence(folder, boxes, image_fn, corrupt=()):
    folder.mkdir(parents=True)
    for index, box in enumerate(boxes):
        path = folder / f"{index + 1:08d}.png"
        if index in corrupt:
            path.write_bytes(b"not a png")
        else:
            Image.fromarray(image_fn(box)).save(path)
    (folder / "groundtruth.txt").write_text("".join(f"{x},{y},{w},{h}\n" for x, y, w, h in boxes))


def test_unreadable_frames_and_invalid_crops_are_skipped_and_counted(tmp_path, caplog):
    boxes = [(10 + i, 10, 12, 12) for i in range(12)]
    small = lambda box: object_image(box, size=(48, 64))  # noqa: E731
    write_sequence(tmp_path / "good", boxes, small)
    write_sequence(tmp_path / "broken", boxes, small, corrupt=range(12))
    write_sequence(tmp_path / "outside", [(500, 500, 12, 12)] * 12, small)  # box far outside the frame
    source = FolderSource(tmp_path)
    sampler = CausalClipSampler([source], min_sequence_length=10, seed=0)
    dataset = TrackingClipDataset(sampler, tiny_config(), ClipAugmentation())
    with caplog.at_level("WARNING", logger="odtrack_hf.data.collate"):
        items = [dataset[index] for index in range(12)]
    batch = collate_clips(items)
    assert batch["template_pixel_values"].shape == (12, 3, 3, 32, 32)
    assert batch["pixel_values"].shape == (12, 2, 3, 64, 64) and batch["labels"].shape == (12, 2, 4)
    assert torch.isfinite(batch["pixel_values"]).all()
    assert batch["unreadable_frames"] == sum(item["unreadable_frames"] for item in items) > 0
    assert batch["rejected_samples"] == sum(item["rejected_samples"] for item in items) > 0
    assert "cannot read frame" in caplog.text and "broken" in caplog.text
    # every returned clip comes from the good sequence: its object is in the search crop
    assert ((batch["labels"][..., 2:] > 0) & (batch["labels"][..., :2] < 1)).all()
    # the same index gives the same clip again (workers, processes and resumed runs agree)
    again = dataset[3]
    assert torch.equal(again["pixel_values"], items[3]["pixel_values"]) and torch.equal(again["labels"], items[3]["labels"])
