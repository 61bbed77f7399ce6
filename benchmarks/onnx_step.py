"""Time one tracking step in onnxruntime (the ``odtrack export-onnx`` graph) against torch eager, in one run.

The model (random weights) is exported with ``odtrack_hf.onnx_export.export_onnx`` (dynamic batch and
template axes, as ``odtrack track --onnx`` uses it) and checked against torch; then the torch step
(sdpa, fp32, ``inference_mode``) and ``ODTrackOnnxModel`` (numpy conversion included, as the session
calls it) are timed in interleaved rounds, both on the same number of threads.

    python benchmarks/onnx_step.py --config examples/configs/default_model.yaml --threads 1 --repeats 20
    python benchmarks/onnx_step.py --config odtrack-base --templates 4 --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnxruntime
import torch
from _timing import interleaved_medians, machine_line
from end_to_end import model_config

from odtrack_hf import ODTrackModel
from odtrack_hf.onnx_export import export_onnx
from odtrack_hf.onnx_model import ODTrackOnnxModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--config",
        default="examples/configs/default_model.yaml",
        help="a training config (.yaml), a preset name, a model folder or 'default' (the shipped model's config)",
    )
    parser.add_argument("--templates", type=int, help="templates per step (default: tracker_template_number + 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    config = model_config(args.config)
    model = ODTrackModel(config).eval()
    templates = args.templates or config.tracker_template_number + 1
    with tempfile.TemporaryDirectory() as directory:
        result = export_onnx(model, Path(directory) / "step.onnx")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = args.threads, 1
        onnx_model = ODTrackOnnxModel(result.path, session_options=options)

    generator = torch.Generator().manual_seed(0)
    inputs = dict(
        pixel_values=torch.randn(1, 3, config.search_size, config.search_size, generator=generator),
        template_pixel_values=torch.randn(
            1, templates, 3, config.template_size, config.template_size, generator=generator
        ),
        temporal_token=torch.randn(1, 1, config.hidden_size, generator=generator),
    )
    with torch.inference_mode():
        seconds = interleaved_medians(
            {"torch eager": lambda: model(**inputs), "onnxruntime": lambda: onnx_model(**inputs)}, args.repeats
        )

    print(
        f"{args.config}: {templates} templates of {config.template_size} px, {config.search_size}-px search, "
        f"{config.num_hidden_layers} blocks of {config.hidden_size}, attn_type={config.attn_type}, "
        f"CE layers {config.ce_layers}"
    )
    print(f"  {machine_line(args.threads)}, onnxruntime {onnxruntime.__version__}")
    details = ", ".join(f"{name} {value:.1e}" for name, value in result.max_abs_diff.items())
    print(f"  export check, max |onnxruntime - torch|: {details}")
    for name, value in seconds.items():
        print(f"  {name:12s}: {value * 1e3:8.2f} ms/step")
    print(f"  onnxruntime speed vs torch eager: {seconds['torch eager'] / seconds['onnxruntime']:.2f}x")


if __name__ == "__main__":
    main()
