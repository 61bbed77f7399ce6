"""Accuracy change of bf16 autocast vs fp32: on the official fixture models, and on a held-out set.

1. Official-parity fixtures (``$ODTRACK_PARITY_FIXTURES`` or ``tests/fixtures/official-parity``):
   for each fixture model, the max abs difference of one step's outputs (first search frame of the
   fixture clip), and of the tracked boxes over the 12-frame clip, bf16 autocast vs fp32.
2. With ``--root`` (a folder split written by ``odtrack generate-data``, e.g. ``data/heldout``) and
   ``--model`` (a trained checkpoint): each sequence is tracked by an fp32 and a bf16-autocast session;
   printed: success AUC / precision of both, and their agreement (mean IoU between the two tracks).

    python benchmarks/precision_accuracy.py --threads 2
    python benchmarks/precision_accuracy.py --root data/heldout --model path/to/checkpoint --threads 2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from _timing import machine_line
from safetensors.torch import load_file

import odtrack_hf
from odtrack_hf import ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.data import FolderSource
from odtrack_hf.evaluation import evaluate_tracking

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the fixture helpers of the parity tests
from parity import fixture_dirs, tracker_from_fixture  # noqa: E402


def fixture_report() -> None:
    for directory in fixture_dirs():
        if not (directory / "tracker_outputs.json").is_file():
            continue
        model, processor, tracker = tracker_from_fixture(directory)
        video = load_file(directory / tracker["video_file"])
        frames, box = video["frames"].numpy(), video["init_box_xywh"].tolist()
        search = processor(images=frames[1], boxes=[box], mode="search")["pixel_values"]
        templates = processor(images=frames[0], boxes=[box], mode="template")["pixel_values"].unsqueeze(1)
        with torch.inference_mode():
            fp32 = model(search, templates)
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf16 = model(search, templates)
        sessions = [ODTrackInferenceSession(model, processor, dtype=dtype) for dtype in (None, torch.bfloat16)]
        tracks = [torch.stack([output.boxes[0] for output in s.propagate(frames, [box])]) for s in sessions]
        per_frame = (tracks[1] - tracks[0]).abs().amax(dim=1)
        step = {k: (getattr(bf16, k) - getattr(fp32, k)).abs().max().item() for k in ("score_map", "pred_boxes")}
        print(f"  {directory.name:12s}: one step: max |d score_map| {step['score_map']:.4f}, "
              f"max |d box| {step['pred_boxes'] * tracker['search_size']:.2f} crop px; tracked clip: "
              f"frame 1 {per_frame[1]:.2f} image px, worst frame {per_frame.max():.1f} image px")


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching ``(N, 4)`` x, y, w, h rows."""
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    return inter / (a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter)


def heldout_report(model_path: str, root: str, limit: int | None) -> None:
    model = ODTrackModel.from_pretrained(model_path).eval()
    processor = ODTrackProcessor.from_pretrained(model_path)
    source = FolderSource(root)
    names = source.names[:limit]
    tracks, ground_truth = {"fp32": {}, "bf16 autocast": {}}, {}
    for index, name in enumerate(names):
        sequence = source[index]
        ground_truth[name] = np.asarray(sequence.boxes, dtype=np.float64)
        first = sequence.boxes[0].tolist()
        for label, dtype in (("fp32", None), ("bf16 autocast", torch.bfloat16)):
            session = ODTrackInferenceSession(model, processor, dtype=dtype)
            outputs = session.propagate((sequence.load_frame(i) for i in range(len(sequence))), [first])
            tracks[label][name] = np.stack([output.boxes[0].numpy() for output in outputs])
    agreement = np.concatenate([iou(tracks["fp32"][n][1:], tracks["bf16 autocast"][n][1:]) for n in names])
    untrained = getattr(model.config, "is_untrained_placeholder", False)
    print(f"{root}: {len(names)} sequences, model {model_path}"
          f"{' (UNTRAINED placeholder: accuracy figures are not meaningful)' if untrained else ''}")
    for label, predictions in tracks.items():
        result = evaluate_tracking(predictions, ground_truth)
        print(f"  {label:13s}: success AUC {result['auc']:.2f}  precision {result['precision']:.2f}")
    print(f"  bf16 vs fp32 tracks: mean IoU {agreement.mean():.3f}, frames with IoU > 0.5: {(agreement > 0.5).mean():.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(Path(odtrack_hf.__file__).parent / "default_model"))
    parser.add_argument("--root", default=None, help="held-out folder split, e.g. data/heldout")
    parser.add_argument("--sequences", type=int, default=None, help="only the first N sequences of --root")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"bf16 autocast vs fp32; {machine_line(args.threads)}")
    print("official-parity fixture models (random weights):")
    fixture_report()
    if args.root:
        heldout_report(args.model, args.root, args.sequences)


if __name__ == "__main__":
    main()
