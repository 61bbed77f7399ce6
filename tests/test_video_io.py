"""video_io: streamed decoding, atomic encoding with odd frame sizes, and box drawing."""

import numpy as np
import pytest
from tracking_helpers import write_video

from odtrack_hf.video_io import VideoWriter, draw_tracks, read_video_frames, video_info


def gradient_frames(count, height, width):
    ramp = np.linspace(0, 255, width, dtype=np.uint8)
    return [np.stack([np.tile(ramp, (height, 1))] * 3, axis=2) // (i + 1) for i in range(count)]


def test_writer_round_trip_keeps_count_fps_and_pads_odd_sizes(tmp_path):
    path = tmp_path / "odd.mp4"
    frames = gradient_frames(5, 31, 45)
    with VideoWriter(path, fps=12.5) as writer:
        for frame in frames:
            writer.write(frame)
    info = video_info(path)
    assert (info["width"], info["height"], info["fps"], info["num_frames"]) == (46, 32, 12.5, 5)
    decoded = list(read_video_frames(path))
    assert len(decoded) == 5 and decoded[0].shape == (32, 46, 3) and decoded[0].dtype == np.uint8
    assert np.abs(decoded[0][:31, :45].astype(int) - frames[0]).mean() < 4  # lossy, but the same picture
    assert [p.name for p in tmp_path.iterdir()] == ["odd.mp4"]


def test_writer_discards_the_partial_file_on_error(tmp_path):
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError):
        with VideoWriter(path) as writer:
            writer.write(gradient_frames(1, 16, 16)[0])
            raise RuntimeError("interrupted")
    assert not any(tmp_path.iterdir())


def test_frames_are_decoded_lazily(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gradient_frames(6, 32, 48))
    frames = read_video_frames(path)
    assert next(frames).shape == (32, 48, 3)
    assert sum(1 for _ in frames) == 5


def test_draw_tracks_outlines_each_object_in_its_colour_and_labels_it():
    frame = np.zeros((60, 80, 3), dtype=np.uint8)
    drawn = draw_tracks(frame, [[10, 20, 30, 25], [0, 0, 80, 60]], [1, 2], [0.9, 0.1])
    assert (frame == 0).all()  # the input is left untouched
    assert tuple(drawn[30, 10]) == (0, 255, 0)  # object 1: green left edge
    assert tuple(drawn[59, 40]) == (255, 64, 64)  # object 2 fills the frame: red bottom edge
    assert (drawn[1:8, 1:20] != 0).any()  # its label sits inside the frame's top-left corner
