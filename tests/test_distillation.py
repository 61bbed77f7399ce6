"""Distillation from a teacher with a larger search crop: the teacher's crops, the loss, and a training run."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from odtrack_hf import ODTrackConfig, ODTrackModel
from odtrack_hf.data.collate import TrackingClipDataset, collate_clips
from odtrack_hf.data.sampling import CausalClipSampler
from odtrack_hf.data.sources import SOURCES
from odtrack_hf.training import TrainingConfig, forward_clip, read_log, train
from odtrack_hf.training.distillation import DistillationLoss, resample_grid, search_token_maps

from test_training import make_videos, tiny_values

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, template_size=32, pretrain_image_size=64,
            head_channels=16, patch_size=16, attn_type="separate", ce_layers=[], ce_keep_ratios=[])  # fmt: skip


def tiny_model(search_size: int, seed: int = 0) -> ODTrackModel:
    torch.manual_seed(seed)
    return ODTrackModel(ODTrackConfig(search_size=search_size, **TINY)).eval()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_videos(tmp_path_factory.mktemp("videos"), num_frames=20)


def clip_dataset(videos, config: ODTrackConfig, teacher_search_size: int | None) -> TrackingClipDataset:
    sampler = CausalClipSampler(
        [SOURCES["folder"](str(videos))], [1.0], num_templates=config.num_templates,
        num_search_frames=config.num_search_frames, min_sequence_length=10, seed=3,
    )  # fmt: skip
    return TrackingClipDataset(sampler, config, teacher_search_size=teacher_search_size)


def test_teacher_crops_are_the_student_windows_at_the_teacher_size(videos):
    config = ODTrackConfig(search_size=64, num_search_frames=3, **TINY)
    plain = [clip_dataset(videos, config, None)[i] for i in range(6)]
    same = [clip_dataset(videos, config, 64)[i] for i in range(6)]
    larger = [clip_dataset(videos, config, 96)[i] for i in range(6)]
    for base, at_same, at_larger in zip(plain, same, larger):
        # the teacher's crops draw nothing from the clip's generator: the student's item is unchanged
        for key in ("template_pixel_values", "pixel_values", "labels"):
            assert torch.equal(base[key], at_same[key]) and torch.equal(base[key], at_larger[key])
        assert "teacher_pixel_values" not in base
        # at the student's size the teacher sees exactly the student's crops (grey, brightness, flip included)
        assert torch.equal(at_same["teacher_pixel_values"], base["pixel_values"])
        # at a larger size, the same windows: shrunk back, they match the student's crops up to resampling
        assert at_larger["teacher_pixel_values"].shape == (3, 3, 96, 96)
        shrunk = F.interpolate(at_larger["teacher_pixel_values"], size=(64, 64), mode="bilinear", antialias=True)
        assert (shrunk - base["pixel_values"]).abs().mean() < 0.1
        assert (shrunk - base["pixel_values"].flip(-1)).abs().mean() > 0.2  # the flip is shared, not lost
    batch = collate_clips(larger[:2])
    assert batch["teacher_pixel_values"].shape == (2, 3, 3, 96, 96)
    assert "teacher_pixel_values" not in collate_clips(plain[:2])


def test_resample_grid_keeps_a_constant_map_and_shrinks_a_grid():
    maps = torch.full((2, 3, 5, 6, 6), 0.25)
    assert torch.allclose(resample_grid(maps, 4), torch.full((2, 3, 5, 4, 4), 0.25))
    ramp = torch.linspace(0, 1, 6).expand(6, 6)[None, None]
    shrunk = resample_grid(ramp, 3)[0, 0]
    assert shrunk.shape == (3, 3) and bool((shrunk[:, 1:] > shrunk[:, :-1]).all())
    assert resample_grid(maps, 6) is not maps and torch.equal(resample_grid(maps, 6), maps)


def test_the_loss_is_at_its_minimum_when_the_student_matches_the_teacher():
    model = tiny_model(64)
    templates, search = torch.randn(2, 2, 3, 32, 32), torch.randn(2, 3, 3, 64, 64)
    with torch.no_grad():
        teacher = forward_clip(model, search, templates)
    student = forward_clip(model, search, templates)
    loss = DistillationLoss(model.config, model.config, score_weight=1.0, feature_weight=1.0)
    terms = loss.frame_terms(student, teacher)
    assert terms["distil_feature"].shape == (3,) and torch.allclose(terms["distil_feature"], torch.zeros(3))
    # a map's divergence from itself is zero, and so is its gradient with respect to the map
    assert torch.allclose(terms["distil_score"], torch.zeros(3), atol=1e-5)
    score_map = student.score_map.detach().requires_grad_(True)
    student.score_map = score_map
    loss(student, teacher).backward()
    assert score_map.grad.abs().max() < 1e-5
    # a different student is pulled: both terms grow (a fresh head scores 0.5 everywhere, so its map is drawn)
    other = forward_clip(tiny_model(64, seed=1), search, templates)
    other.score_map = torch.rand_like(other.score_map) * 0.98 + 0.01
    other_terms = loss.frame_terms(other, teacher)
    assert bool((other_terms["distil_feature"] > 1e-3).all())
    assert bool((other_terms["distil_score"] > 0.1).all())
    assert set(loss.components(other, teacher)) == {"distillation", "distil_score", "distil_feature"}


def test_a_larger_teacher_is_resampled_to_the_student_grid():
    student_model, teacher_model = tiny_model(64), tiny_model(96)
    templates = torch.randn(2, 2, 3, 32, 32)
    student = forward_clip(student_model, torch.randn(2, 2, 3, 64, 64), templates)
    with torch.no_grad():
        teacher = forward_clip(teacher_model, torch.randn(2, 2, 3, 96, 96), templates)
    assert search_token_maps(teacher, teacher_model.config).shape == (2, 2, 32, 6, 6)
    loss = DistillationLoss(student_model.config, teacher_model.config, score_weight=0.5, feature_weight=2.0)
    value = loss(student, teacher)
    value.backward()
    terms = loss.frame_terms(student, teacher)
    expected = (0.5 * terms["distil_score"] + 2.0 * terms["distil_feature"]).mean()  # frames averaged
    assert torch.isclose(value, expected)
    assert all(p.grad is None for p in teacher_model.parameters())


def test_a_teacher_of_another_width_is_refused():
    wide = ODTrackConfig(search_size=96, **{**TINY, "hidden_size": 64})
    with pytest.raises(ValueError, match="hidden_size .*same width"):
        DistillationLoss(ODTrackConfig(search_size=64, **TINY), wide, 1.0, 1.0)


def tiny_teacher(tmp_path, **overrides) -> str:
    values = tiny_values(tmp_path, tmp_path)["model_config"]
    config = ODTrackConfig(**{**values, "search_size": 96, "pretrain_image_size": 96, **overrides})
    torch.manual_seed(5)
    folder = tmp_path / "teacher"
    ODTrackModel(config).save_pretrained(folder)
    return str(folder)


def test_training_with_a_teacher_logs_the_distillation_terms(tmp_path, one_thread_videos):
    teacher = tiny_teacher(tmp_path)
    values = tiny_values(tmp_path / "run", one_thread_videos, num_epochs=2, lr_drop_epoch=2, save_steps=8,
                         teacher_model_name_or_path=teacher, distillation_score_weight=0.5)  # fmt: skip
    result = train(TrainingConfig.from_dict(values))
    log = read_log(tmp_path / "run" / "logs" / "train.jsonl")
    assert [record["step"] for record in log] == list(range(1, 9)) and result.state.skipped_steps == 0
    for record in log:
        # the logged loss is the ground-truth loss plus the weighted distillation terms
        assert record["distillation"] == pytest.approx(0.5 * record["distil_score"] + record["distil_feature"], rel=1e-5)
        ground_truth = record["focal"] + 5.0 * record["l1"] + 2.0 * record["giou"]
        assert record["loss"] == pytest.approx(ground_truth + record["distillation"], rel=1e-4)
    assert np.isfinite([record["distil_feature"] for record in log]).all()


def test_a_teacher_that_crops_other_windows_is_refused_before_training(tmp_path, one_thread_videos):
    teacher = tiny_teacher(tmp_path, search_factor=3.0)
    values = tiny_values(tmp_path / "run", one_thread_videos, teacher_model_name_or_path=teacher)
    with pytest.raises(ValueError, match="teacher's search_factor .*Set the student's search_factor"):
        train(TrainingConfig.from_dict(values))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_negative_distillation_weights_are_refused(tmp_path):
    with pytest.raises(ValueError, match="distillation_feature_weight must be >= 0"):
        TrainingConfig.from_dict(tiny_values(tmp_path, tmp_path, distillation_feature_weight=-1.0))


@pytest.fixture
def one_thread_videos(videos):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield videos
    torch.set_num_threads(threads)
