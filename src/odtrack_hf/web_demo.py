"""The web demo: a Gradio page to track objects in a video (``odtrack demo --web``, ``demo/app.py``).

The callbacks are plain functions of plain values (paths, text, numbers), so they are tested without a
browser; :func:`build_demo` only wires them to components. Tracking reuses the pieces of
``odtrack track``: the model loader, PyAV decode, the annotated-video writer and the GOT-10k writer.
Every user error is a ``gr.Error`` whose text says what is wrong and how to fix it; the page shows it
and the server keeps serving.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .cli_common import track_and_draw, write_results
from .demo_clips import DEMO_CLIPS, demo_clip_path
from .image_processing_odtrack import check_box
from .model_loading import load_tracker
from .session_odtrack import DEFAULT_MAX_TEMPLATES, ODTrackInferenceSession, default_inference_dtype
from .utils import resolve_device
from .video_io import VideoWriter, draw_tracks, read_video_frames, video_info

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_TARGET_LINE = re.compile(rf"^\s*({_NUMBER})\s*[,\s]\s*({_NUMBER})\s*[,\s]\s*({_NUMBER})\s*[,\s]\s*({_NUMBER})\s*$")


# --- choosing a video and its targets -------------------------------------------------------------
def clip_choices() -> list[tuple[str, str]]:
    """``(label, name)`` pairs of the packaged clips, for a dropdown."""
    return [(f"{name}: {clip.description}", name) for name, clip in DEMO_CLIPS.items()]


def choose_clip(name: str | None) -> tuple[str | None, str]:
    """A packaged clip → ``(path of a copy the web server may serve, its suggested target as text)``.

    The copy lives in the system temporary folder, the only place outside the working directory from
    which Gradio serves files.
    """
    if not name:
        return None, ""
    try:
        source = demo_clip_path(name)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
    copy = Path(tempfile.gettempdir()) / "odtrack-demo-clips" / source.name
    if not copy.is_file():
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_name(f".{copy.name}.partial")
        shutil.copyfile(source, partial)
        partial.replace(copy)
    return str(copy), format_box(DEMO_CLIPS[name].box)


def format_box(box) -> str:
    """``x,y,w,h`` text of a box, without needless decimals."""
    return ",".join(f"{v:g}" for v in box)


def first_frame(video: str | None) -> np.ndarray:
    """The first frame of ``video`` as an RGB array; ``gr.Error`` if there is none or it is not a video."""
    if not video:
        raise gr.Error("Upload a video or pick a packaged clip first.", print_exception=False)
    try:
        with contextlib.closing(read_video_frames(video)) as frames:
            return next(frames)
    except ValueError as error:
        raise gr.Error(f"{error} Upload a video file (mp4, avi, mkv, webm, ...).", print_exception=False) from None


def parse_targets(text: str | None, frame_size: tuple[int, int]) -> list[list[float]]:
    """Lines of ``x,y,w,h`` (pixels of the first frame) → boxes, checked against the ``(height, width)``
    frame before any tracking starts. A box that only partly overlaps the frame is kept, with a warning."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    if not lines:
        raise gr.Error(
            "Mark at least one target: click two opposite corners on the first frame, or type x,y,w,h.",
            print_exception=False,
        )
    height, width = frame_size
    boxes = []
    for number, line in enumerate(lines, start=1):
        match = _TARGET_LINE.match(line)
        if match is None:
            raise gr.Error(
                f"Target {number} ({line.strip()!r}) must be four numbers x,y,w,h: the top-left corner, width "
                "and height in pixels, e.g. 62,16,50,76.",
                print_exception=False,
            )
        try:
            box = check_box([float(v) for v in match.groups()], frame_size, name=f"Target {number}")
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from None
        x, y, w, h = box
        if x < 0 or y < 0 or x + w > width or y + h > height:
            gr.Warning(f"Target {number} extends past the {width}x{height} frame; the tracker uses the part inside.")
        boxes.append(box)
    return boxes


def add_corner(
    corner: list[int] | None, targets: str | None, point: tuple[int, int]
) -> tuple[list[int] | None, str]:
    """A click on the first frame: the first click of a pair is remembered, the second adds the box
    spanned by the two corners to the targets. Returns ``(pending corner, targets text)``."""
    x, y = (int(v) for v in point)
    if corner is None:
        return [x, y], targets or ""
    (x0, x1), (y0, y1) = sorted([corner[0], x]), sorted([corner[1], y])
    box = format_box((x0, y0, max(x1 - x0, 1), max(y1 - y0, 1)))
    text = (targets or "").rstrip("\n")
    return None, f"{text}\n{box}" if text.strip() else box


def preview(video: str | None, targets: str | None, corner: list[int] | None = None) -> np.ndarray | None:
    """The first frame with the targets typed so far drawn on it (lines not yet valid are skipped) and a
    pending corner marked; ``None`` when no video is chosen."""
    if not video:
        return None
    frame = first_frame(video)
    boxes = [
        [float(v) for v in match.groups()]
        for match in map(_TARGET_LINE.match, (targets or "").splitlines())
        if match is not None
    ]
    canvas = draw_tracks(frame, boxes, list(range(1, len(boxes) + 1)), [1.0] * len(boxes))
    if corner is not None:
        radius = max(3, min(frame.shape[:2]) // 60)
        cv2.drawMarker(canvas, tuple(int(v) for v in corner), (255, 255, 0), cv2.MARKER_CROSS, 4 * radius, 2)
    return canvas


# --- tracking -----------------------------------------------------------------------------------------
@dataclass
class TrackingUpdate:
    """One step of :func:`track`: progress while it runs; the results in the last one (``done``)."""

    frames: int
    total: int | None
    fps: float
    done: bool = False
    stopped: bool = False
    video: Path | None = None
    box_files: list[Path] = field(default_factory=list)
    scores: dict[int, list[float]] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """One line for the page: frames tracked (of how many), speed, and whether it ended early."""
        of = f" of {self.total}" if self.total else ""
        state = "stopped after" if self.stopped else ("tracked" if self.done else "tracking")
        return f"{state.capitalize()} {self.frames}{of} frames at {self.fps:.1f} fps"


@functools.lru_cache(maxsize=2)
def _tracker(model: str | None, device: str):
    """The model and processor, loaded once per (model, device) while the server runs."""
    return load_tracker(model, device)


def track(
    video: str | None,
    targets: str | None,
    model: str | None,
    output_dir: str | Path,
    max_frames: int | None = None,
    stop: threading.Event | None = None,
    device: str | None = None,
    max_templates: int | None = DEFAULT_MAX_TEMPLATES,
    dtype: str | None = None,
) -> Iterator[TrackingUpdate]:
    """Track the targets through ``video``, yielding a :class:`TrackingUpdate` after every frame.

    The last update (``done=True``) holds the annotated video and one GOT-10k box file per object, written
    to ``output_dir``, and each object's score per frame. ``max_frames`` (0 or ``None``: all) bounds the
    frames tracked; setting ``stop`` ends the run after the current frame with the results so far. ``dtype``
    names the compute dtype (default: the session's automatic choice, as ``odtrack track``). The video, the
    targets and the model are checked before the first frame is tracked: problems raise ``gr.Error``.
    """
    if not video:
        raise gr.Error("Upload a video or pick a packaged clip first.", print_exception=False)
    try:
        info = video_info(video)
    except ValueError as error:
        raise gr.Error(f"{error} Upload a video file (mp4, avi, mkv, webm, ...).", print_exception=False) from None
    boxes = parse_targets(targets, (info["height"], info["width"]))
    if max_frames is not None and max_frames < 0:
        raise gr.Error(f"Frames to track must be 0 (all) or more, got {max_frames}.", print_exception=False)
    try:
        device = resolve_device(device)
    except ValueError as error:
        raise gr.Error(str(error), print_exception=False) from None
    try:
        tracking_model, processor = _tracker((model or "").strip() or None, device)
    except (ValueError, OSError) as error:  # the loader's one-line errors (FileNotFoundError included)
        message = str(error)
        raise gr.Error(
            f"{message[:1].upper()}{message[1:]}. Leave the model empty for the shipped default, or give a folder "
            "or Hub id of a converted ODTrack checkpoint.",
            print_exception=False,
        ) from None
    compute_dtype = getattr(torch, dtype) if dtype else default_inference_dtype(tracking_model)
    session = ODTrackInferenceSession(tracking_model, processor, max_templates=max_templates, dtype=compute_dtype)

    output_dir = Path(output_dir)
    stem = Path(video).stem
    annotated = output_dir / f"{stem}_tracked.mp4"
    known = [n for n in (info["num_frames"], max_frames) if n]  # the container may not say
    total = min(known) if known else None
    tracks: dict[int, list[list[float]]] = {}
    scores: dict[int, list[float]] = {}
    count, stopped, start = 0, False, time.perf_counter()

    def frames_to_track(frames: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
        """The first ``max_frames`` frames, ending early once ``stop`` is set."""
        nonlocal stopped
        for index, frame in enumerate(itertools.islice(frames, max_frames or None)):
            if index and stop is not None and stop.is_set():  # the first frame only places the targets
                stopped = True
                return
            yield frame

    try:
        with VideoWriter(annotated, info["fps"]) as writer, contextlib.closing(read_video_frames(video)) as frames:
            for result in track_and_draw(session, frames_to_track(frames), boxes, writer):
                count += 1
                for object_id, box, score in zip(result.object_ids, result.boxes.tolist(), result.scores.tolist()):
                    tracks.setdefault(object_id, []).append(box)
                    scores.setdefault(object_id, []).append(score)
                yield TrackingUpdate(count, total, count / (time.perf_counter() - start))
    except ValueError as error:  # a frame that does not decode, or a box the tracker rejects
        raise gr.Error(str(error), print_exception=False) from None
    fps = count / (time.perf_counter() - start)
    box_files = write_results(tracks, output_dir / f"{stem}_boxes.txt")
    yield TrackingUpdate(count, total, fps, True, stopped, annotated, box_files, scores)


def score_plot(scores: dict[int, list[float]]) -> Figure:
    """Each object's score per frame (the score of the given first box is 1)."""
    figure = Figure(figsize=(7, 2.8), layout="constrained")  # no pyplot: no global state between requests
    axes = figure.subplots()
    for object_id, values in scores.items():
        axes.plot(range(1, len(values) + 1), values, label=f"object {object_id}", linewidth=1.5)
    axes.set(xlabel="frame", ylabel="score", ylim=(0, 1.05))
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left", fontsize="small")
    return figure


# --- the page -----------------------------------------------------------------------------------------
_INTRO = """# ODTrack: track any object through a video
Pick a clip or upload a video, mark each target on the first frame (click two opposite corners, or type
`x,y,w,h`), and track. ODTrack (AAAI 2024) follows each target from frame to frame with a temporal token;
this page runs odtrack-hf, its port to Hugging Face transformers, by default with the small model shipped
with the package."""

# Stop requests per browser session: the Stop button sets the event that the session's run checks.
_STOPS: dict[str, threading.Event] = {}


def build_demo(
    model: str | None = None,
    device: str | None = None,
    max_templates: int | None = DEFAULT_MAX_TEMPLATES,
    dtype: str | None = None,
) -> gr.Blocks:
    """The Gradio page. ``model`` pre-fills the model box (default: the shipped model); ``device``,
    ``max_templates`` and ``dtype`` apply to every run (as in ``odtrack track``)."""

    def run(video, targets, model_name, max_frames, request: gr.Request, progress=gr.Progress()):
        stop = _STOPS[request.session_hash] = threading.Event()
        run_dir = Path(tempfile.mkdtemp(prefix="odtrack-demo-"))
        shown = 0.0
        try:
            for update in track(
                video, targets, model_name, run_dir, int(max_frames or 0), stop, device, max_templates, dtype
            ):
                if update.done:
                    if update.stopped:
                        gr.Warning(f"Stopped: the results cover the first {update.frames} frames.")
                    # Gradio copies the files into its cache as this value is sent, before run_dir goes
                    yield update.status, str(update.video), score_plot(update.scores), [
                        str(path) for path in [*update.box_files, update.video]
                    ]
                    continue
                progress((update.frames, update.total), desc=f"{update.fps:.1f} fps", unit="frames")
                if time.monotonic() - shown > 0.5:  # the status line, at most twice a second
                    shown = time.monotonic()
                    yield update.status, gr.skip(), gr.skip(), gr.skip()
        finally:
            _STOPS.pop(request.session_hash, None)
            shutil.rmtree(run_dir, ignore_errors=True)

    def request_stop(request: gr.Request) -> None:
        if request.session_hash in _STOPS:
            _STOPS[request.session_hash].set()

    def corner_clicked(video, corner, targets, event: gr.SelectData):
        corner, targets = add_corner(corner, targets, event.index)
        return corner, targets, preview(video, targets, corner)

    # Gradio's default theme, as on the Hub's Spaces; served files are cleared hourly; no usage reports sent
    with gr.Blocks(title="ODTrack object tracking", delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        gr.Markdown(_INTRO)
        corner = gr.State(None)
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"], elem_id="video")
                clip = gr.Dropdown(clip_choices(), value=None, label="…or a packaged clip", elem_id="clip")
                frame = gr.Image(
                    label="First frame: click two opposite corners of each target",
                    interactive=False,
                    type="numpy",
                    elem_id="first-frame",
                )
                targets = gr.Textbox(
                    label="Targets: x,y,w,h in pixels, one per line",
                    placeholder="62,16,50,76",
                    lines=2,
                    elem_id="targets",
                )
                clear = gr.Button("Clear targets", size="sm")
            with gr.Column():
                model_name = gr.Textbox(
                    label="Model",
                    value=model or "",
                    placeholder="empty: the shipped default; or a folder / Hub id of a converted checkpoint",
                    elem_id="model",
                )
                max_frames = gr.Number(
                    label="Frames to track (0: all)", value=0, precision=0, minimum=0, elem_id="max-frames"
                )
                with gr.Row():
                    start = gr.Button("Track", variant="primary", elem_id="track")
                    stop = gr.Button("Stop", variant="stop", elem_id="stop")
                status = gr.Markdown(elem_id="status")
                result = gr.Video(label="Tracked video", interactive=False, elem_id="result-video")
                plot = gr.Plot(label="Score per frame", elem_id="scores")
                downloads = gr.File(
                    label="Downloads: boxes (GOT-10k, one file per object) and video",
                    file_count="multiple",
                    interactive=False,
                    elem_id="downloads",
                )

        clip.input(choose_clip, clip, [video, targets])
        video.upload(lambda: ("", None), None, [targets, clip])
        for component in (video, targets):
            component.change(lambda v, t: (None, preview(v, t)), [video, targets], [corner, frame])
        frame.select(corner_clicked, [video, corner, targets], [corner, targets, frame])
        clear.click(lambda: ("", None), None, [targets, corner])
        start.click(run, [video, targets, model_name, max_frames], [status, result, plot, downloads])
        stop.click(request_stop, None, None, concurrency_limit=None)
    return demo


__all__ = [
    "TrackingUpdate",
    "add_corner",
    "build_demo",
    "choose_clip",
    "clip_choices",
    "first_frame",
    "format_box",
    "parse_targets",
    "preview",
    "score_plot",
    "track",
]
