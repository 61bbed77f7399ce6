"""Training: loss goes down, exact kill-and-resume, two processes over gloo, skipped non-finite steps,
unreadable frames, optimiser and schedules, config files and the CLI.

Run as a script, this file is the training worker the subprocess tests launch (see ``worker``).
"""

import argparse
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file

from odtrack_hf import ODTrackModel
from odtrack_hf.data.collate import TrackingClipDataset
from odtrack_hf.training import (
    TrainingConfig,
    apply_lr_schedule,
    build_scheduler,
    ce_keep_ratio,
    list_checkpoints,
    parameter_groups,
    read_log,
    train,
)
from odtrack_hf.training.cli import add_train_parser

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "examples" / "configs" / "tiny_cpu.yaml"
BASE_CONFIG = REPO / "examples" / "configs" / "odtrack_base.yaml"
TIMING_KEYS = {"samples_per_second"}
SUBPROCESS_ENV = {
    **os.environ,
    "OMP_NUM_THREADS": "1",  # tiny models on a shared 2-core machine: threads only contend
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
}


# --- helpers (also used by the worker) ---------------------------------------------------------------


def make_videos(root: Path, num_sequences: int = 3, num_frames: int = 12, broken_sequences: int = 0) -> Path:
    """GOT-10k-layout folder: 64x48 PNG frames of a textured square moving over a grey background.

    The last ``broken_sequences`` sequences have valid boxes but frame files that cannot be decoded.
    """
    rng = np.random.default_rng(0)
    for index in range(num_sequences + broken_sequences):
        folder = root / f"seq{index:02d}"
        folder.mkdir(parents=True)
        texture = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
        boxes = []
        for frame in range(num_frames):
            x, y = 6 + (3 * frame + 7 * index) % 44, 6 + (2 * frame + 5 * index) % 28
            path = folder / f"{frame + 1:08d}.png"
            if index >= num_sequences:
                path.write_bytes(b"\x89PNG but truncated")
            else:
                image = np.full((48, 64, 3), 110, dtype=np.uint8)
                image[y : y + 12, x : x + 12] = texture
                Image.fromarray(image).save(path)
            boxes.append(f"{x},{y},12,12")
        (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
    return root


def tiny_values(output_dir: Path, data: Path, **overrides) -> dict:
    """The tiny CPU example config, pointed at ``data`` and ``output_dir``."""
    values = yaml.safe_load(TINY_CONFIG.read_text())
    values.update(output_dir=str(output_dir), datasets=[{"type": "folder", "root": str(data)}], **overrides)
    return values


def patch_dataset(set_attribute, fixed_set=None, nan_index=None, nan_rank=0, kill_index=None, seen=None):
    """Wrap ``TrackingClipDataset.__getitem__``: draw only ``fixed_set`` different clips, make sample
    ``nan_index`` of rank ``nan_rank`` NaN, SIGKILL the process at sample ``kill_index``, and record the
    indices asked for in ``seen``."""
    original = TrackingClipDataset.__getitem__

    def getitem(self, index):
        if index == kill_index:
            os.kill(os.getpid(), signal.SIGKILL)
        if seen is not None:
            seen.append(index)
        item = original(self, index if fixed_set is None else index % fixed_set)
        if index == nan_index and self.sampler.rank == nan_rank:
            item["pixel_values"] = item["pixel_values"] * float("nan")
        return item

    set_attribute(TrackingClipDataset, "__getitem__", getitem)


def worker(argv: list[str]) -> None:
    """``python tests/test_training.py CONFIG.json [--kill-index I] [--nan-index I --nan-rank R] [--dump DIR]``:
    train (in every process of a launch) and optionally save this rank's parameters."""
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("--kill-index", type=int)
    parser.add_argument("--nan-index", type=int)
    parser.add_argument("--nan-rank", type=int, default=0)
    parser.add_argument("--dump", type=Path)
    args = parser.parse_args(argv)
    patch_dataset(setattr, nan_index=args.nan_index, nan_rank=args.nan_rank, kill_index=args.kill_index)
    result = train(TrainingConfig.from_dict(json.loads(args.config.read_text())))
    if args.dump is not None:
        rank = int(os.environ.get("RANK", 0))
        torch.save({name: p.detach().clone() for name, p in result.model.named_parameters()}, args.dump / f"rank{rank}.pt")


def run_worker(tmp_path: Path, values: dict, *args: str, processes: int = 1) -> subprocess.CompletedProcess:
    config = tmp_path / f"config_{len(list(tmp_path.glob('config_*.json')))}.json"
    config.write_text(json.dumps(values))
    launcher = [sys.executable]
    env = dict(SUBPROCESS_ENV)
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        env["ACCELERATE_USE_CPU"] = "1"  # Accelerate on the CPU: the gloo backend
    return subprocess.run(
        [*launcher, __file__, str(config), *args], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )


def without_timing(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in records]


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "model" / "model.safetensors")


@pytest.fixture
def one_thread():
    """Tiny models run ~10x faster on one thread on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return make_videos(tmp_path_factory.mktemp("videos"))


# --- training runs -----------------------------------------------------------------------------------


def test_training_reduces_the_loss_and_exports_the_model(tmp_path, videos, one_thread, monkeypatch):
    # a fixed set of 8 clips: the loss must clearly fall over the 60 steps (15 epochs of 4 steps)
    patch_dataset(monkeypatch.setattr, fixed_set=8)
    config = TrainingConfig.from_dict(tiny_values(tmp_path / "run", videos))
    result = train(config)

    log = read_log(tmp_path / "run" / "logs" / "train.jsonl")
    assert [record["step"] for record in log] == list(range(1, 61))
    losses = np.array([record["loss"] for record in log])
    assert losses[-5:].mean() < 0.7 * losses[:5].mean(), losses  # about 0.3-0.45 over seeds 0-2
    # schedules: 4 steps per epoch; CE warm-up over epochs 2..6, learning rate x0.1 after epoch 13
    for record in log:
        epoch = (record["step"] - 1) // 4 + 1
        assert record["epoch"] == epoch
        assert record["ce_keep_ratio"] == pytest.approx(ce_keep_ratio(epoch, 2, 4, 0.7))
        assert record["lr_head"] == pytest.approx(1e-2 if record["step"] <= 52 else 1e-3)
        assert record["lr_backbone"] == pytest.approx(record["lr_head"] * 0.1)
    assert result.state.step == 60 and result.state.skipped_steps == 0

    # checkpoints every 10 steps, the newest 2 kept; the final model reloads with from_pretrained
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["step_00000050", "step_00000060"]
    model_dir = tmp_path / "run" / "model"
    reloaded = ODTrackModel.from_pretrained(model_dir)
    trained = result.model.state_dict()
    assert all(torch.equal(value, trained[name]) for name, value in reloaded.state_dict().items())
    assert (model_dir / "processor_config.json").is_file()
    card = (model_dir / "README.md").read_text()
    assert "library_name: transformers" in card and "60 optimiser steps" in card
    assert json.loads((model_dir / "training_config.json").read_text())["learning_rate"] == 1e-2


def test_kill_and_resume_is_exact(tmp_path, videos, one_thread, monkeypatch):
    # 12 steps of 2 batches of 2 clips, drop path on: resume must restore RNG, sampler, optimiser, scheduler
    values = dict(
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        num_epochs=3,
        save_steps=4,
        save_total_limit=3,
        ce_start_epoch=1,
        ce_warmup_epochs=2,
    )
    reference = TrainingConfig.from_dict(tiny_values(tmp_path / "uninterrupted", videos, **values))
    train(reference)

    # the same run in a subprocess, SIGKILLed while loading the first batch of step 6 (samples 20, 21)
    interrupted = tmp_path / "interrupted"
    killed = run_worker(tmp_path, tiny_values(interrupted, videos, **values), "--kill-index", "21")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert [p.name for p in list_checkpoints(interrupted)] == ["step_00000004"]
    assert not (interrupted / "model").exists()
    assert max(record["step"] for record in read_log(interrupted / "logs" / "train.jsonl")) == 5
    # a checkpoint a kill interrupted mid-write is never picked up
    (interrupted / "checkpoints" / "step_00000008.partial").mkdir()

    seen = []
    patch_dataset(monkeypatch.setattr, seen=seen)
    resumed = train(TrainingConfig.from_dict(tiny_values(interrupted, videos, **values)))
    assert min(seen) == 16  # continued after the 4 x 4 samples of steps 1-4
    assert resumed.state.step == 12
    assert not list((interrupted / "checkpoints").glob("*.partial"))

    expected, actual = final_weights(tmp_path / "uninterrupted"), final_weights(interrupted)
    assert expected.keys() == actual.keys()
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert without_timing(read_log(interrupted / "logs" / "train.jsonl")) == without_timing(
        read_log(tmp_path / "uninterrupted" / "logs" / "train.jsonl")
    )


def test_two_processes_train_one_model(tmp_path, videos):
    # bf16 on 2 CPU processes over gloo, one DataLoader worker each; sample 3 of rank 1 only is NaN
    values = tiny_values(
        tmp_path / "run", videos, per_device_train_batch_size=2, num_epochs=2, mixed_precision="bf16", num_workers=1
    )
    (tmp_path / "dump").mkdir()
    done = run_worker(tmp_path, values, "--dump", "dump", "--nan-index", "3", "--nan-rank", "1", processes=2)
    assert done.returncode == 0, done.stderr[-3000:]

    rank0, rank1 = (torch.load(tmp_path / "dump" / f"rank{r}.pt") for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[name], rank1[name]) for name in rank0)
    saved = final_weights(tmp_path / "run")
    assert all(torch.equal(rank0[name], saved[name]) for name in rank0)

    log = read_log(tmp_path / "run" / "logs" / "train.jsonl")
    assert [record["step"] for record in log] == list(range(1, 9))  # 16 clips per epoch / (2 x 2 processes)
    assert [record["skipped_steps"] for record in log] == [0] + [1] * 7  # both ranks skipped step 2
    assert "loss" not in log[1] and all(np.isfinite(record["loss"]) for record in log if record["step"] != 2)


def test_nonfinite_steps_are_skipped_and_unreadable_frames_counted(tmp_path, one_thread, monkeypatch, caplog):
    data = make_videos(tmp_path / "videos", num_sequences=1, broken_sequences=1)
    patch_dataset(monkeypatch.setattr, nan_index=5)  # a NaN image in step 2: NaN activations and loss
    config = TrainingConfig.from_dict(tiny_values(tmp_path / "run", data, max_steps=4, save_steps=2))
    with caplog.at_level("WARNING"):
        result = train(config)

    log = read_log(tmp_path / "run" / "logs" / "train.jsonl")
    assert [record["skipped_steps"] for record in log] == [0, 1, 1, 1]
    assert result.state.skipped_steps == 1 and "Step 2: non-finite loss" in caplog.text
    # nothing of the NaN step reached the weights, the optimiser or the BatchNorm statistics
    assert all(torch.isfinite(tensor).all() for tensor in result.model.state_dict().values() if tensor.is_floating_point())
    optimizer = torch.load(tmp_path / "run" / "checkpoints" / "step_00000004" / "optimizer.bin", weights_only=False)
    assert {float(state["step"]) for state in optimizer["state"].values()} == {3.0}
    # the broken sequence's clips were skipped, counted and reported, and training went on
    assert result.state.unreadable_frames > 0 and log[-1]["unreadable_frames"] == result.state.unreadable_frames
    assert "cannot read frame" in caplog.text


def test_existing_checkpoints_are_not_overwritten_by_a_fresh_run(tmp_path, videos, one_thread):
    train(TrainingConfig.from_dict(tiny_values(tmp_path / "run", videos, max_steps=1)))
    with pytest.raises(ValueError, match="already holds checkpoints"):
        train(TrainingConfig.from_dict(tiny_values(tmp_path / "run", videos, resume_from_checkpoint=None)))


def test_training_from_an_exported_hf_dataset(tmp_path, videos, one_thread):
    from odtrack_hf.data import FolderSource, export_parquet

    export_parquet(FolderSource(videos), tmp_path / "hf", split="train")
    values = tiny_values(tmp_path / "run", videos, max_steps=2)
    values["datasets"] = [{"type": "hf", "root": str(tmp_path / "hf"), "split": "train", "ratio": 2}]
    result = train(TrainingConfig.from_dict(values))
    assert result.state.step == 2 and result.state.unreadable_frames == 0
    assert [record["step"] for record in read_log(tmp_path / "run" / "logs" / "train.jsonl")] == [1, 2]


def test_model_from_pretrained_mae_or_scratch(tmp_path):
    from test_conversion import _mae_checkpoint

    from odtrack_hf.modeling_odtrack import resample_position_embeddings
    from odtrack_hf.training import build_model

    values = tiny_values(tmp_path / "run", tmp_path)
    scratch = build_model(TrainingConfig.from_dict(values))
    assert scratch.config.hidden_size == 32 and scratch.config.num_hidden_layers == 2
    mae_weights = _mae_checkpoint(scratch.config, tmp_path / "mae.pth")
    mae = build_model(TrainingConfig.from_dict({**values, "mae_checkpoint": str(tmp_path / "mae.pth")}))
    assert torch.equal(mae.embeddings.temporal_token, mae_weights["cls_token"])
    assert torch.equal(mae.encoder.layers[1].attention.qkv.weight, mae_weights["blocks.1.attn.qkv.weight"])
    mae.save_pretrained(tmp_path / "pretrained")
    # model_name_or_path wins over mae_checkpoint; model_config still overrides config fields
    tuned = build_model(
        TrainingConfig.from_dict(
            {**values, "model_name_or_path": str(tmp_path / "pretrained"), "mae_checkpoint": "ignored.pth",
             "model_config": {"drop_path_rate": 0.0}}
        )
    )  # fmt: skip
    assert tuned.config.drop_path_rate == 0.0
    assert all(torch.equal(value, mae.state_dict()[name]) for name, value in tuned.state_dict().items())
    # new crop sizes resample the pretrained model's own position tables, not the pre-training one
    search_size = mae.config.search_size + 2 * mae.config.patch_size
    resized = build_model(
        TrainingConfig.from_dict(
            {**values, "model_name_or_path": str(tmp_path / "pretrained"), "model_config": {"search_size": search_size}}
        )
    )
    assert resized.config.search_size == search_size and resized.config.template_size == mae.config.template_size
    expected = resample_position_embeddings(mae.embeddings.search_position_embeddings.data, resized.config.search_feat_size)
    torch.testing.assert_close(resized.embeddings.search_position_embeddings.data, expected)
    assert torch.equal(resized.embeddings.template_position_embeddings, mae.embeddings.template_position_embeddings)
    assert torch.equal(resized.encoder.layers[1].attention.qkv.weight, mae.encoder.layers[1].attention.qkv.weight)


# --- optimiser and schedules -------------------------------------------------------------------------


def test_parameter_groups_by_name():
    from conftest import tiny_config

    model = ODTrackModel(tiny_config())
    head, backbone = parameter_groups(model, learning_rate=1e-4, backbone_multiplier=0.1, weight_decay=1e-4)
    assert (head["name"], head["lr"], backbone["name"], backbone["lr"]) == ("head", 1e-4, "backbone", pytest.approx(1e-5))
    assert head["weight_decay"] == backbone["weight_decay"] == 1e-4  # official: decay on everything
    names = {id(p): name for name, p in model.named_parameters()}
    assert {names[id(p)] for p in head["params"]} == {n for n, p in model.named_parameters() if n.startswith("head.")}
    backbone_names = {names[id(p)] for p in backbone["params"]}
    assert "embeddings.temporal_token" in backbone_names and "encoder.layers.0.attention.qkv.weight" in backbone_names
    assert "embeddings.pretrain_position_embeddings" not in backbone_names  # frozen, never read in forward
    assert len(head["params"]) + len(backbone["params"]) == sum(p.requires_grad for p in model.parameters())


def test_ce_keep_ratio_schedule_matches_official_values():
    # ODTrack-B: no elimination before epoch 20, cosine to 0.7 at epoch 100
    # (docs/official-implementation.md, "Training clips and losses")
    rates = {epoch: ce_keep_ratio(epoch, 20, 80, 0.7) for epoch in (1, 19, 20, 40, 60, 99, 100, 300)}
    assert rates[1] == rates[19] == rates[20] == 1.0
    assert rates[40] == pytest.approx(0.7 + 0.3 * (np.cos(np.pi / 4) + 1) / 2)  # ~0.956
    assert rates[60] == pytest.approx(0.85)
    assert 0.7 < rates[99] < 0.701 and rates[100] == rates[300] == 0.7


def test_step_lr_drops_after_lr_drop_epoch():
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
    scheduler = build_scheduler(optimizer, steps_per_epoch=5, lr_drop_epoch=3, lr_drop_factor=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[:15] == [1e-4] * 15 and lrs[15:] == pytest.approx([1e-5] * 5)


def test_a_resumed_scheduler_follows_the_edited_drop_epoch():
    def stepped(lr_drop_epoch: int, steps: int):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-4)
        scheduler = build_scheduler(optimizer, steps_per_epoch=5, lr_drop_epoch=lr_drop_epoch, lr_drop_factor=0.1)
        for _ in range(steps):
            optimizer.step()
            scheduler.step()
        return optimizer, scheduler

    _, saved = stepped(lr_drop_epoch=4, steps=12)  # saved at step 12 of a run that would drop at step 20
    for new_drop_epoch, expected_now, expected_later in ((2, 1e-5, 1e-5), (3, 1e-4, 1e-5), (4, 1e-4, 1e-4)):
        optimizer, scheduler = stepped(lr_drop_epoch=new_drop_epoch, steps=0)
        scheduler.load_state_dict(saved.state_dict())
        assert apply_lr_schedule(scheduler, new_drop_epoch * 5, 0.1) == (new_drop_epoch != 4)
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_now)
        for _ in range(4):  # to step 16: past a drop at 15, not yet at 20
            optimizer.step()
            scheduler.step()
        assert optimizer.param_groups[0]["lr"] == pytest.approx(expected_later)
        assert scheduler.get_last_lr() == pytest.approx([expected_later])


# --- configuration and CLI ---------------------------------------------------------------------------


def test_example_configs_load():
    tiny = TrainingConfig.from_file(TINY_CONFIG)
    assert tiny.model_config["hidden_size"] == 32 and tiny.datasets[0].type == "folder"
    base = TrainingConfig.from_file(BASE_CONFIG)
    assert [(spec.type, spec.ratio) for spec in base.datasets] == [
        ("lasot", 1.0), ("got10k", 1.0), ("coco", 1.0), ("trackingnet", 1.0),
    ]  # fmt: skip
    assert base.datasets[1].options == {"subset": "train", "split": "vot_train"}
    official = dict(
        learning_rate=1e-4, backbone_learning_rate_multiplier=0.1, weight_decay=1e-4, num_epochs=300,
        lr_drop_epoch=240, max_grad_norm=0.1, samples_per_epoch=30000, per_device_train_batch_size=8,
        max_sample_interval=400, ce_start_epoch=20, ce_warmup_epochs=80,
    )  # fmt: skip
    assert {key: getattr(base, key) for key in official} == official
    assert base.augmentation.search_center_jitter == 4.5 and base.augmentation.search_scale_jitter == 0.5
    # JSON works as well as YAML, and to_dict round-trips
    assert TrainingConfig.from_dict(json.loads(json.dumps(base.to_dict()))) == base


def test_config_errors_name_the_problem(tmp_path):
    def config(**values):
        return TrainingConfig.from_dict({"output_dir": "x", "datasets": [{"type": "folder", "root": "y"}], **values})

    with pytest.raises(ValueError, match="Unknown key\\(s\\) in the training config: learning_rat;"):
        config(learning_rat=1)
    with pytest.raises(ValueError, match="Unknown key\\(s\\) in the augmentation: flip"):
        config(augmentation={"flip": 1})
    with pytest.raises(ValueError, match="needs 'type' and 'root'"):
        config(datasets=[{"type": "folder"}])
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        config(mixed_precision="fp8")
    with pytest.raises(ValueError, match="flip_mode must be one of"):
        config(augmentation={"flip_mode": "x"})
    broken = tmp_path / "broken.yaml"
    broken.write_text("output_dir: [unclosed\n")
    with pytest.raises(ValueError, match="broken.yaml: cannot parse"):
        TrainingConfig.from_file(broken)


@pytest.mark.parametrize(
    ("make_root", "message"),
    [
        (lambda tmp: tmp / "missing", "missing is not a folder; expected "),
        (lambda tmp: tmp, "run has no sequence folders; expected "),
    ],
)
def test_cli_reports_bad_dataset_roots_in_one_line(tmp_path, make_root, message):
    (tmp_path / "run").mkdir()
    config = tmp_path / "run" / "config.json"
    config.write_text(json.dumps(tiny_values(tmp_path / "run", make_root(tmp_path / "run"))))
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", str(config), "--max-steps", "1"])
    assert args.max_steps == 1
    with pytest.raises(ValueError) as error:
        args.func(args)  # odtrack_hf.cli prints a ValueError as one line
    text = str(error.value)
    assert message in text and text.endswith("/<sequence>/groundtruth.txt.") and "\n" not in text
    assert not (tmp_path / "run" / "checkpoints").exists()


if __name__ == "__main__":
    worker(sys.argv[1:])
