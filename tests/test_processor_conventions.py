"""Conventions of transformers' processors that ODTrack's follow: ``None`` keyword defaults meaning
"the processor's own setting", and channels-first numpy frames."""

import inspect

import numpy as np
import pytest
import torch

from odtrack_hf import ODTrackImageProcessor, ODTrackProcessor


def test_processor_call_keywords_default_to_none():
    parameters = inspect.signature(ODTrackProcessor.__call__).parameters
    defaults = {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}
    assert defaults and all(value is None for value in defaults.values()), defaults


def test_mode_none_is_the_search_crop():
    processor = ODTrackProcessor(template_size=32, search_size=64)
    frame = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
    box = [[20, 15, 16, 12]]
    default = processor(images=frame, boxes=box)
    search = processor(images=frame, boxes=box, mode="search")
    assert default["pixel_values"].shape[-1] == 64
    assert torch.equal(default["pixel_values"], search["pixel_values"])
    with pytest.raises(ValueError, match="mode must be one of"):
        processor(images=frame, boxes=box, mode="serch")


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_channels_first_numpy_frames_crop_like_channels_last(channels):
    hwc = np.random.default_rng(channels).integers(0, 256, (30, 40, channels), dtype=np.uint8)
    processor = ODTrackImageProcessor()
    first = processor(hwc.transpose(2, 0, 1), [[5, 6, 10, 8]], crop_factor=2.0, output_size=16)
    last = processor(hwc, [[5, 6, 10, 8]], crop_factor=2.0, output_size=16)
    assert torch.equal(first["pixel_values"], last["pixel_values"])
