"""The ODTrack training loop on Accelerate: one process per device, any launcher Accelerate supports.

One optimiser step takes ``gradient_accumulation_steps`` batches of clips per process. For each batch
:func:`forward_clip` runs the model once per search frame of the clip (``pixel_values``
``(B, N, 3, S, S)``): the temporal token starts fresh and is carried from search frame to search frame,
so clips never share a token.

Resume is exact: a checkpoint holds the model, optimiser, scheduler, every process's RNG states, the
clip sampler's position and the step counters, and the data of sample ``i`` depends only on
``(seed, rank, i)``. Checkpoints are written to ``step_<n>.partial`` and renamed when complete, so a run
killed while saving resumes from the previous one.
"""

import dataclasses
import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.tracking import GeneralTracker, on_main_process
from accelerate.utils import ProjectConfiguration, extract_model_from_parallel, is_tensorboard_available, set_seed
from tqdm.auto import tqdm

from ..configuration_odtrack import ODTrackConfig, odtrack_preset
from ..conversion import load_mae_backbone
from ..data.collate import TrackingClipDataset, collate_clips
from ..data.sampling import CausalClipSampler
from ..loss_odtrack import ODTrackLoss
from ..model_card import build_trained_model_card
from ..modeling_odtrack import ODTrackModel, ODTrackOutput
from ..processing_odtrack import ODTrackProcessor
from .arguments import TrainingConfig
from .distillation import DistillationLoss
from .optim import apply_lr_schedule, build_optimizer, build_scheduler, ce_keep_ratio

logger = get_logger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_PATTERN = re.compile(r"step_(\d+)")
PARTIAL_SUFFIX = ".partial"
LOG_FILE = Path("logs") / "train.jsonl"
MODEL_DIR = "model"
# per-frame outputs stacked along the clip's frame axis (what the loss and its statistics read)
CLIP_OUTPUTS = (
    "pred_boxes", "pred_scores", "score_map", "size_map", "offset_map", "box_map", "temporal_token", "last_hidden_state",
)  # fmt: skip


def forward_clip(
    model: torch.nn.Module,
    pixel_values: torch.Tensor,
    template_pixel_values: torch.Tensor,
    ce_keep_ratios: list[float] | None = None,
) -> ODTrackOutput:
    """Run the model over a training clip, one search frame at a time, carrying the temporal token.

    The token starts fresh (``None``) with the first frame, so clips never share a token, and each
    frame's output token is passed with the next frame (the model ignores it when
    ``config.propagate_temporal_token`` is off).

    Args:
        model: an [`ODTrackModel`], possibly wrapped by Accelerate.
        pixel_values: ``(B, N, 3, S, S)`` normalised search crops of N consecutive frames.
        template_pixel_values: ``(B, T, 3, s, s)`` normalised template crops, shared by the N frames.
        ce_keep_ratios: candidate-elimination keep ratios for every frame (the warm-up schedule).

    Returns:
        An [`ODTrackOutput`] whose ``CLIP_OUTPUTS`` have a frame axis at dim 1 (``pred_boxes``
        ``(B, N, 4)``, ``score_map`` ``(B, N, 1, H, W)``, ...), as [`ODTrackLoss`] takes them.
    """
    # with separate attention the template tokens never see the search frame, so their path runs once
    # per clip and the frames share it (the gradients of the N frames add up in the one template path)
    unwrapped = extract_model_from_parallel(model)
    if unwrapped.config.attn_type == "separate":
        templates = {"template_cache": unwrapped.encode_templates(template_pixel_values)}
    else:
        templates = {"template_pixel_values": template_pixel_values}
    frames, token = [], None
    for index in range(pixel_values.shape[1]):
        frame = model(pixel_values=pixel_values[:, index], temporal_token=token, ce_keep_ratios=ce_keep_ratios, **templates)
        token = frame.temporal_token
        frames.append(frame)
    return ODTrackOutput(**{name: torch.stack([getattr(frame, name) for frame in frames], dim=1) for name in CLIP_OUTPUTS})


@dataclass
class TrainingState:
    """Step counter and data counters, saved with every checkpoint (identical on every process).

    Attributes:
        step: optimiser steps taken, skipped ones included.
        skipped_steps: steps whose update was not applied (non-finite loss or gradient).
        unreadable_frames: clips dropped because a frame could not be read.
        rejected_samples: clips dropped by the crop validity check.
    """

    step: int = 0
    skipped_steps: int = 0
    unreadable_frames: int = 0
    rejected_samples: int = 0

    def state_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def load_state_dict(self, state: dict[str, int]) -> None:
        for key, value in state.items():
            setattr(self, key, int(value))


@dataclass
class TrainingResult:
    """What [`train`] returns: the trained (unwrapped) model, the final counters and the output folder."""

    model: ODTrackModel
    state: TrainingState
    output_dir: Path


class JSONLTracker(GeneralTracker):
    """Accelerate tracker writing one JSON object per logged step (``{"step": n, ...}``) to a file."""

    name = "jsonl"
    requires_logging_directory = False

    def __init__(self, path: str | Path):
        super().__init__()
        self.path = Path(path)
        self._file = None

    @property
    def tracker(self):
        return self._file

    @on_main_process
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")

    @on_main_process
    def store_init_configuration(self, values: dict) -> None:
        (self.path.parent / "training_config.json").write_text(json.dumps(values, indent=2))

    @on_main_process
    def log(self, values: dict, step: int | None = None, **kwargs) -> None:
        self._file.write(json.dumps({"step": step, **values}) + "\n")
        self._file.flush()

    @on_main_process
    def finish(self) -> None:
        self._file.close()


def read_log(path: str | Path) -> list[dict]:
    """The records of a ``train.jsonl`` log."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def build_model(config: TrainingConfig) -> ODTrackModel:
    """The model to train: ``model_name_or_path``, else the preset with MAE backbone weights
    (``mae_checkpoint``), else the preset with random weights; ``model_config`` overrides config fields.
    New crop sizes for a pretrained model resample its trained position tables to the new grids."""
    if config.model_name_or_path:
        from ..model_loading import load_pretrained

        overrides = dict(config.model_config)
        sizes = {name: overrides.pop(name) for name in ("template_size", "search_size") if name in overrides}
        model = load_pretrained(
            lambda source: ODTrackModel.from_pretrained(source, **overrides), config.model_name_or_path
        )
        current = {"template_size": model.config.template_size, "search_size": model.config.search_size}
        if {**current, **sizes} != current:
            model.resize_crop_sizes(**{**current, **sizes}, from_trained=True)
        return model
    model = ODTrackModel(odtrack_preset(config.model_preset, **config.model_config))
    if config.mae_checkpoint:
        load_mae_backbone(model, config.mae_checkpoint)
    return model


def build_teacher(config: TrainingConfig, student_config: ODTrackConfig) -> ODTrackModel | None:
    """The frozen distillation teacher (``teacher_model_name_or_path``), or ``None`` without one; it must
    share the student's template crops, since both read the same template crops of a clip."""
    if not config.teacher_model_name_or_path:
        return None
    from ..model_loading import load_pretrained

    teacher = load_pretrained(ODTrackModel.from_pretrained, config.teacher_model_name_or_path)
    for name in ("template_size", "template_factor", "search_factor", "num_templates"):
        if getattr(teacher.config, name) != getattr(student_config, name):
            raise ValueError(
                f"teacher_model_name_or_path: the teacher's {name} ({getattr(teacher.config, name)}) differs from "
                f"the student's ({getattr(student_config, name)}); the two must crop the same windows. Set the "
                f"student's {name} to the teacher's in model_config."
            )
    return teacher.eval().requires_grad_(False)


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``output_dir/checkpoints``, oldest first."""
    root = Path(output_dir) / CHECKPOINT_DIR
    found = [p for p in root.iterdir() if p.is_dir() and CHECKPOINT_PATTERN.fullmatch(p.name)] if root.is_dir() else []
    return sorted(found, key=lambda p: int(CHECKPOINT_PATTERN.fullmatch(p.name)[1]))


def _checkpoint_to_resume(config: TrainingConfig) -> Path | None:
    existing = list_checkpoints(config.output_dir)
    if config.resume_from_checkpoint is None:
        if existing:
            raise ValueError(
                f"{config.output_dir} already holds checkpoints (newest {existing[-1].name}); set "
                "resume_from_checkpoint to 'latest' to continue that run, or choose a new output_dir."
            )
        return None
    if config.resume_from_checkpoint == "latest":
        return existing[-1] if existing else None
    path = Path(config.resume_from_checkpoint)
    if not (path / "custom_checkpoint_0.pkl").is_file():
        raise ValueError(f"resume_from_checkpoint: {path} is not a checkpoint folder written by odtrack train.")
    return path


def _save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, keep: int) -> None:
    root = output_dir / CHECKPOINT_DIR
    final = root / f"step_{step:08d}"
    partial = final.with_name(final.name + PARTIAL_SUFFIX)
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    # an explicit folder, not automatic_checkpoint_naming: checkpoints are named by step, and the
    # counter behind automatic names (project_configuration.iteration) is not restored by load_state
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)  # from a later step of a run resumed at an earlier checkpoint
        partial.rename(final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _apply_update(accelerator: Accelerator, model, optimizer, max_grad_norm: float) -> tuple[bool, torch.Tensor | None]:
    """Clip the (synchronised) gradients and step; returns whether the update was applied, and the norm."""
    grad_norm = accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
    norm_finite = grad_norm is None or bool(torch.isfinite(grad_norm))  # None: DeepSpeed clips itself
    if norm_finite or accelerator.scaler is not None:
        # fp16: the grad scaler skips overflowed steps itself and lowers its scale
        optimizer.step()
    return norm_finite and not optimizer.step_was_skipped, grad_norm


def _truncate_log(path: Path, step: int) -> None:
    """Drop records after ``step``: the interrupted run logged them, the resumed run logs them again."""
    if path.is_file():
        kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
        path.write_text("".join(line + "\n" for line in kept))


def _flat_config(values: dict[str, Any]) -> dict[str, Any]:
    """Trackers such as TensorBoard take scalar hyper-parameters only: encode the rest as JSON."""
    return {k: v if isinstance(v, (int, float, str, bool)) or v is None else json.dumps(v) for k, v in values.items()}


def _write_model_card(model_dir: Path, config: TrainingConfig, state: TrainingState, steps_per_epoch: int) -> None:
    if config.model_name_or_path:
        origin = f"fine-tuned from `{config.model_name_or_path}`"
    elif config.mae_checkpoint:
        origin = f"backbone initialised from the MAE weights `{config.mae_checkpoint}`"
    else:
        origin = "initialised at random"
    card = build_trained_model_card(
        origin=origin,
        steps=state.step,
        steps_per_epoch=steps_per_epoch,
        samples_per_epoch=config.samples_per_epoch,
        datasets=[
            f"`{spec.type}` at `{spec.root}`, ratio {spec.ratio:g}" + (f", {spec.options}" if spec.options else "")
            for spec in config.datasets
        ],
        skipped_steps=state.skipped_steps,
        unreadable_frames=state.unreadable_frames,
        rejected_samples=state.rejected_samples,
    )
    card.save(model_dir / "README.md")


def train(config: TrainingConfig) -> TrainingResult:
    """Train ODTrack as ``config`` says, continuing from a checkpoint where ``resume_from_checkpoint`` finds
    one, and write the final model (``save_pretrained`` + processor + model card) to ``output_dir/model``.

    Run it in every process of a launch (``accelerate launch``, ``torchrun``, or a single process).
    """
    output_dir = Path(config.output_dir)
    checkpoint = _checkpoint_to_resume(config)
    # open the datasets first: a wrong path fails before anything is set up or written
    sources = [spec.build() for spec in config.datasets]
    trackers: list = [JSONLTracker(output_dir / LOG_FILE)]
    if is_tensorboard_available():
        trackers.append("tensorboard")
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        # stepped by hand once per optimiser step (skipped ones too), so that epochs stay aligned
        step_scheduler_with_optimizer=False,
        log_with=trackers,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
    )

    set_seed(config.seed)  # the same initial weights in every process
    model = build_model(config)
    model_config = model.config
    teacher = build_teacher(config, model_config)
    distillation = None
    if teacher is not None:
        teacher.to(accelerator.device)
        distillation = DistillationLoss(
            model_config, teacher.config, config.distillation_score_weight, config.distillation_feature_weight
        )
    set_seed(config.seed, device_specific=True)  # independent stochastic depth per process (official: seed + rank)
    model.train()

    clips_per_step = config.per_device_train_batch_size * accelerator.num_processes * config.gradient_accumulation_steps
    steps_per_epoch = config.samples_per_epoch // clips_per_step
    if steps_per_epoch < 1:
        raise ValueError(
            f"samples_per_epoch ({config.samples_per_epoch}) is smaller than one optimiser step "
            f"({clips_per_step} clips = batch x processes x accumulation)."
        )
    total_steps = config.num_epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)

    sampler = CausalClipSampler(
        sources,
        [spec.ratio for spec in config.datasets],
        num_templates=model_config.num_templates,
        num_search_frames=model_config.num_search_frames,
        max_sample_interval=config.max_sample_interval,
        min_sequence_length=config.min_sequence_length,
        seed=config.seed,
        rank=accelerator.process_index,
    )
    # the crops are normalised by the processor saved with the model, as at inference
    processor = ODTrackProcessor.from_model_config(model_config)
    dataset = TrackingClipDataset(
        sampler, model_config, config.augmentation, processor, None if teacher is None else teacher.config.search_size
    )
    optimizer = build_optimizer(model, config.learning_rate, config.backbone_learning_rate_multiplier, config.weight_decay)
    scheduler = build_scheduler(optimizer, steps_per_epoch, config.lr_drop_epoch, config.lr_drop_factor)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    state = TrainingState()
    accelerator.register_for_checkpointing(sampler, state)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        accelerator.print(f"Resuming from {checkpoint} (step {state.step}); to start afresh, choose a new output_dir.")
        if apply_lr_schedule(scheduler.scheduler, config.lr_drop_epoch * steps_per_epoch, config.lr_drop_factor):
            logger.warning(
                f"The learning-rate drop of {checkpoint} differs from the config's; resuming with the config's "
                f"(x{config.lr_drop_factor} every {config.lr_drop_epoch} epochs).",
                main_process_only=True,
            )
        logger.info(f"Resumed from {checkpoint} at step {state.step}", main_process_only=True)
    if accelerator.is_main_process:
        _truncate_log(output_dir / LOG_FILE, state.step)
    accelerator.init_trackers("odtrack", config=_flat_config(config.to_dict()))

    # the sampler yields this process's sample indices from its restored position; the DataLoader gets
    # its own generator so that starting it does not consume the global RNG (resume stays exact)
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=config.per_device_train_batch_size,
        sampler=sampler,
        num_workers=config.num_workers,
        collate_fn=collate_clips,
        pin_memory=accelerator.device.type == "cuda",
        generator=torch.Generator(),
    )
    batches = iter(loader)
    loss_fn = ODTrackLoss(model_config)
    final_keep_ratio = model_config.ce_keep_ratios[0] if model_config.use_candidate_elimination else None
    progress = tqdm(
        total=total_steps, initial=state.step, desc="train", unit="step", disable=not accelerator.is_main_process
    )

    while state.step < total_steps:
        started = time.perf_counter()
        epoch = state.step // steps_per_epoch + 1
        keep_ratio = None
        if final_keep_ratio is not None:
            keep_ratio = ce_keep_ratio(epoch, config.ce_start_epoch, config.ce_warmup_epochs, final_keep_ratio)
        log_now = (state.step + 1) % config.logging_steps == 0 or state.step + 1 == total_steps
        finite, applied, grad_norm, stats = True, False, None, []
        for _ in range(config.gradient_accumulation_steps):
            batch = next(batches)
            sampler.advance(config.per_device_train_batch_size)
            labels = batch["labels"].to(accelerator.device)
            with accelerator.accumulate(model):
                buffers = [buffer.detach().clone() for buffer in model.buffers()]
                outputs = forward_clip(
                    model,
                    batch["pixel_values"].to(accelerator.device),
                    batch["template_pixel_values"].to(accelerator.device),
                    None if keep_ratio is None else [keep_ratio] * len(model_config.ce_layers),
                )
                outputs.loss = loss_fn(outputs, labels)
                if teacher is not None:
                    with torch.no_grad(), accelerator.autocast():
                        teacher_outputs = forward_clip(
                            teacher,
                            batch["teacher_pixel_values"].to(accelerator.device),
                            batch["template_pixel_values"].to(accelerator.device),
                        )
                    outputs.loss = outputs.loss + distillation(outputs, teacher_outputs)
                # one collective per batch: every process learns whether any loss was non-finite, and
                # all skip the update together (DDP would hang if only some ran backward)
                flags = accelerator.reduce(
                    torch.tensor(
                        [float(not torch.isfinite(outputs.loss)), batch["unreadable_frames"], batch["rejected_samples"]],
                        device=accelerator.device,
                    ),
                    "sum",
                )
                state.unreadable_frames += int(flags[1])
                state.rejected_samples += int(flags[2])
                if flags[0] > 0:
                    finite = False
                    for buffer, saved in zip(model.buffers(), buffers):  # undo this forward's BatchNorm update
                        buffer.copy_(saved)
                if finite:
                    accelerator.backward(outputs.loss)
                    if log_now:
                        stats.append(loss_fn.components(outputs, labels))
                        if teacher is not None:
                            stats[-1].update(distillation.components(outputs, teacher_outputs))
                            stats[-1]["loss"] = outputs.loss.detach()
                if accelerator.sync_gradients:
                    if finite:
                        applied, grad_norm = _apply_update(accelerator, model, optimizer, config.max_grad_norm)
                    optimizer.zero_grad()
        learning_rates = [group["lr"] for group in optimizer.param_groups]  # the rates this step used (head, backbone)
        scheduler.step()
        state.step += 1
        if not applied:
            state.skipped_steps += 1
            logger.warning(
                f"Step {state.step}: non-finite {'gradient' if finite else 'loss'}; the update was skipped "
                f"({state.skipped_steps} so far).",
                main_process_only=True,
            )
        samples_per_second = clips_per_step / (time.perf_counter() - started)
        progress.update(1)
        progress.set_postfix(loss=f"{outputs.loss.item():.4f}", samples_s=f"{samples_per_second:.1f}")
        if log_now:
            record = {
                "epoch": epoch,
                "lr_head": learning_rates[0],
                "lr_backbone": learning_rates[1],
                "ce_keep_ratio": 1.0 if keep_ratio is None else keep_ratio,
                "samples_per_second": samples_per_second,
                "skipped_steps": state.skipped_steps,
                "unreadable_frames": state.unreadable_frames,
                "rejected_samples": state.rejected_samples,
            }
            if stats:
                names = list(stats[0])
                means = torch.stack([torch.stack([s[name] for s in stats]).mean() for name in names])
                record.update(zip(names, accelerator.reduce(means, "mean").tolist()))
                if grad_norm is not None:  # None where the engine clips itself (DeepSpeed)
                    record["grad_norm"] = float(grad_norm)
            accelerator.log(record, step=state.step)
        if state.step % config.save_steps == 0 or state.step == total_steps:
            _save_checkpoint(accelerator, output_dir, state.step, config.save_total_limit)
    progress.close()

    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    model_dir = output_dir / MODEL_DIR
    unwrapped.save_pretrained(
        model_dir, is_main_process=accelerator.is_main_process, state_dict=accelerator.get_state_dict(model)
    )
    if accelerator.is_main_process:
        processor.save_pretrained(model_dir)
        (model_dir / "training_config.json").write_text(json.dumps(config.to_dict(), indent=2))
        _write_model_card(model_dir, config, state, steps_per_epoch)
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainingResult(unwrapped, state, output_dir)


__all__ = [
    "JSONLTracker",
    "TrainingResult",
    "TrainingState",
    "build_model",
    "build_teacher",
    "forward_clip",
    "list_checkpoints",
    "read_log",
    "train",
]
