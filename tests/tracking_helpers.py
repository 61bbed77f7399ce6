"""Shared helpers of the tracking tests: the official fixture tracker and tiny videos written with PyAV."""

import json
from pathlib import Path

import av
import numpy as np
import pytest
from parity import fixture_dirs, tracker_from_fixture
from safetensors.torch import load_file

from odtrack_hf import ODTrackModel, ODTrackProcessor


def fixture_directory() -> Path:
    """The first official fixture with an end-to-end tracker result (skips the test if there is none)."""
    directory = next((d for d in fixture_dirs() if (d / "tracker_outputs.json").is_file()), None)
    if directory is None:
        pytest.skip("no official-parity tracker fixtures")
    return directory


def fixture_tracker() -> tuple[ODTrackModel, ODTrackProcessor]:
    """The converted fixture model (eval mode) and a processor with the fixture's tracker settings."""
    model, processor, _ = tracker_from_fixture(fixture_directory())
    return model, processor


def fixture_clip() -> tuple[np.ndarray, list[float], list[list[float]]]:
    """Frames ``(12, 120, 160, 3)`` uint8 RGB, the initial box and the official tracker boxes (x, y, w, h)."""
    directory = fixture_directory()
    tracker = json.loads((directory / "config.json").read_text())["tracker"]
    video = load_file(directory / tracker["video_file"])
    expected = json.loads((directory / "tracker_outputs.json").read_text())["boxes_xywh"]
    return video["frames"].numpy(), video["init_box_xywh"].tolist(), expected


def save_fixture_tracker(directory: Path) -> Path:
    """``save_pretrained`` the fixture model and processor into ``directory``."""
    model, processor = fixture_tracker()
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def write_video(path: Path, frames, fps: int = 10, codec: str = "libx264") -> Path:
    """Encode RGB frames (even sides) with PyAV."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path
