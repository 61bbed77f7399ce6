"""Video decoding and encoding with PyAV, and drawing tracked boxes on frames.

Frames are streamed: :func:`read_video_frames` decodes one frame at a time, so a long video is never
held in memory. Every failure to read a video becomes a ``ValueError`` whose message names the file
and the problem.
"""

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .utils import atomic_path, check_writable

# RGB colours, one per object id
_COLOURS = [(0, 255, 0), (255, 64, 64), (64, 160, 255), (255, 200, 0), (255, 0, 255), (0, 255, 255)]


def _open(path: Path) -> av.container.InputContainer:
    if not path.is_file():
        raise ValueError(f"Video file {str(path)!r} does not exist; check the path.")
    if path.stat().st_size == 0:
        raise ValueError(f"Video file {str(path)!r} is empty (0 bytes).")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as error:
        raise ValueError(
            f"Cannot read video {str(path)!r}: {error.strerror}. "
            "It is not a video FFmpeg can decode, or it is truncated."
        ) from None
    problem = _not_a_video(container)
    if problem:
        container.close()
        raise ValueError(f"{str(path)!r} is not a video: {problem}. Give a video file (mp4, avi, mkv, webm, ...).")
    return container


# FFmpeg renders text files (ANSI art, .nfo, .asc, ...) as frames with these demuxers and decoders
_TEXT_FORMATS = {"tty", "bin", "xbin", "adf", "idf"}
_TEXT_CODECS = {"ansi", "bintext", "xbin", "idf"}


def _not_a_video(container: av.container.InputContainer) -> str | None:
    """Why an opened file is not a video (None if it is one): no video stream, text rendered as
    frames, or a single still image (an image demuxer; animated GIF/APNG have demuxers of their own)."""
    if not container.streams.video:
        return "it has no video stream"
    formats = set(container.format.name.split(","))
    if formats & _TEXT_FORMATS or container.streams.video[0].codec_context.name in _TEXT_CODECS:
        return "it is a text file, which FFmpeg would only render as text"
    if formats & {"image2"} or any(name.endswith("_pipe") for name in formats):
        return "it is a single still image (to track through images, pass a list of frames to the pipeline)"
    return None


def check_video_output(path: str | os.PathLike, option: str = "--output") -> None:
    """Raise ``ValueError`` now, before tracking, if no video can be written at ``path``: an unwritable
    place (see :func:`odtrack_hf.utils.check_writable`) or a suffix FFmpeg has no container for."""
    path = Path(path)
    check_writable(path, option)
    with tempfile.TemporaryDirectory() as folder:
        try:
            av.open(str(Path(folder) / f"probe{path.suffix}"), mode="w").close()
        except (ValueError, av.error.FFmpegError):
            raise ValueError(
                f"{option} {path}: FFmpeg writes no video format with the suffix {path.suffix!r}; use e.g. "
                f"{option} {path.with_suffix('.mp4')}"
            ) from None


def video_info(path: str | os.PathLike) -> dict:
    """``{"width", "height", "fps", "num_frames"}`` of a video file (``num_frames`` is 0 when the
    container does not say)."""
    with _open(Path(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        return {
            "width": stream.codec_context.width,
            "height": stream.codec_context.height,
            "fps": float(rate) if rate else 25.0,
            "num_frames": int(stream.frames or 0),
        }


def read_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode a video file frame by frame as ``(H, W, 3)`` uint8 RGB arrays.

    Raises ``ValueError`` if the file is missing, empty, not a video, has no frames, or is truncated
    (decoding fails part-way, or yields fewer frames than the container declares).
    """
    path = Path(path)
    container = _open(path)
    count = 0
    try:
        stream = container.streams.video[0]
        declared = int(stream.frames or 0)
        try:
            for frame in container.decode(stream):
                count += 1
                yield frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as error:
            raise ValueError(
                f"Video {str(path)!r} is truncated or corrupt: decoding failed after {count} frames ({error.strerror})."
            ) from None
    finally:
        container.close()
    if count == 0:
        raise ValueError(f"Video {str(path)!r} contains no frames.")
    if declared and count < declared:
        raise ValueError(f"Video {str(path)!r} is truncated: it declares {declared} frames but only {count} decode.")


class VideoWriter:
    """Encode RGB frames to a video file with PyAV (H.264 in yuv420p, MPEG-4 Part 2 if no H.264 encoder).

    The file is written under a temporary name and renamed when the ``with`` block ends cleanly (see
    :func:`odtrack_hf.utils.atomic_path`), so a reader, or a run that was killed, never leaves a
    half-written video under ``path``; on an error the temporary file is deleted. yuv420p needs even
    sides: odd frames get one black row/column.

    ``with VideoWriter(path, fps) as writer: writer.write(frame)``
    """

    def __init__(self, path: str | os.PathLike, fps: float = 25.0):
        self.path = Path(path)
        self.fps = fps
        self._files = contextlib.ExitStack()  # holds the temporary file from the first frame on
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if self._container is not None:
            if exc_type is None:
                for packet in self._stream.encode():  # flush the encoder
                    self._container.mux(packet)
            self._container.close()
            self._container = None
        self._files.__exit__(exc_type, exc, traceback)  # rename into place, or delete on an error

    def write(self, frame: np.ndarray) -> None:
        """Append one ``(H, W, 3)`` uint8 RGB frame."""
        height, width = frame.shape[:2]
        if self._container is None:
            self._start(width + width % 2, height + height % 2)
        if height % 2 or width % 2:
            frame = np.pad(frame, ((0, height % 2), (0, width % 2), (0, 0)))
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
            self._container.mux(packet)

    def _start(self, width: int, height: int) -> None:
        partial = self._files.enter_context(atomic_path(self.path))
        self._container = av.open(str(partial), mode="w")  # container from the suffix
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        self._stream = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001))
        self._stream.width, self._stream.height, self._stream.pix_fmt = width, height, "yuv420p"


def draw_tracks(
    frame: np.ndarray,
    boxes_xywh: Sequence[Sequence[float]],
    object_ids: Sequence[int],
    scores: Sequence[float],
) -> np.ndarray:
    """A copy of an RGB frame with each box drawn in its object's colour and labelled ``id score``."""
    canvas = np.ascontiguousarray(frame).copy()
    thickness = max(1, round(min(canvas.shape[:2]) / 200))
    scale = max(0.35, min(canvas.shape[:2]) / 600)
    for box, object_id, score in zip(boxes_xywh, object_ids, scores):
        colour = _COLOURS[(object_id - 1) % len(_COLOURS)]
        x, y, w, h = (int(round(v)) for v in box)
        cv2.rectangle(canvas, (x, y), (x + w - 1, y + h - 1), colour, thickness)
        label = f"{object_id} {score:.2f}"
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        # above the box when it fits, otherwise inside its top-left corner; never off the frame
        top = y - text_h - baseline if y - text_h - baseline >= 0 else max(y, 0)
        left = min(max(x, 0), max(canvas.shape[1] - text_w, 0))
        cv2.rectangle(canvas, (left, top), (left + text_w, top + text_h + baseline), colour, -1)
        cv2.putText(canvas, label, (left, top + text_h), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    return canvas


__all__ = ["VideoWriter", "check_video_output", "draw_tracks", "read_video_frames", "video_info"]
