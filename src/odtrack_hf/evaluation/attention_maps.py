"""Attention of the temporal token over the search region (the paper's Fig. 6), drawn on the search crop.

The tracker runs as usual (one :class:`~odtrack_hf.ODTrackInferenceSession` step per frame). On the frames asked
for, the model is called with ``output_attentions=True`` and the temporal token's attention row of one block is
taken, averaged over heads, and its search columns are put back on the search grid. With candidate elimination,
blocks after an eliminating block see fewer search tokens, in score order: the model's ``search_indices`` output
names the raster position of each column, and eliminated positions are NaN (they take no part in that block).

The session makes the model call; :func:`record_outputs` asks it for the attentions on the frames asked for and
keeps its outputs, and the session is told not to use its template cache (which keeps no per-block template states,
hence no attentions).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..session_odtrack import ODTrackInferenceSession

if TYPE_CHECKING:
    from ..modeling_odtrack import ODTrackModel, ODTrackOutput
    from ..processing_odtrack import ODTrackProcessor


@contextmanager
def record_outputs(model: ODTrackModel, when: Callable[[], bool] = lambda: True) -> Iterator[list[ODTrackOutput]]:
    """While active, every forward of ``model`` during which ``when()`` holds (default: every forward) returns its
    attentions, and its output is appended to the list."""
    calls: list[ODTrackOutput] = []

    def ask_for_attentions(module, args, kwargs):
        return (args, {**kwargs, "output_attentions": True}) if when() else None

    def keep_outputs(module, args, outputs):
        if when():
            calls.append(outputs)

    handles = [
        model.register_forward_pre_hook(ask_for_attentions, with_kwargs=True),
        model.register_forward_hook(keep_outputs),
    ]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def temporal_token_attention(attention: torch.Tensor, search_index: torch.Tensor, grid_size: int) -> torch.Tensor:
    """The temporal token's attention to each search position, averaged over heads.

    Args:
        attention: ``(B, heads, L, L)`` probabilities of one block (``outputs.attentions[i]``); the token is row 0
            and the search tokens are the last ``n`` columns.
        search_index: ``(B, n)`` raster index of each of those columns (``outputs.search_indices[i]``).
        grid_size: side of the search token grid.

    Returns:
        ``(B, grid_size, grid_size)`` float32, NaN where the search token was eliminated before this block.
    """
    num_search = search_index.shape[1]
    row = attention[:, :, 0, -num_search:].float().mean(dim=1)  # (B, n)
    grid = row.new_full((row.shape[0], grid_size * grid_size), float("nan"))
    grid.scatter_(1, search_index.to(row.device, torch.int64), row)
    return grid.reshape(-1, grid_size, grid_size)


@dataclass
class AttentionMap:
    """The temporal token's attention on one frame.

    Attributes:
        frame_index: index of the frame in the video.
        crop: ``(S, S, 3)`` uint8 RGB search crop the model saw.
        grid: ``(H, W)`` attention per search token (heads averaged), NaN for eliminated tokens.
        box: the tracked box ``(x, y, w, h)`` in image pixels.
    """

    frame_index: int
    crop: np.ndarray
    grid: np.ndarray
    box: list[float]


def track_attention_maps(
    model: ODTrackModel,
    processor: ODTrackProcessor,
    frames: Iterable[Any],
    box: list[float],
    frame_indices: Collection[int],
    layer: int = -1,
    max_templates: int | None = None,
) -> list[AttentionMap]:
    """Track one object from ``box`` on the first frame and return the temporal token's attention on the frames
    ``frame_indices`` (>= 1: frame 0 initialises the tracker without running the model).

    Args:
        model, processor: the tracker (model in eval mode).
        frames: the video's frames (anything :meth:`ODTrackInferenceSession.track` takes); read up to the last
            frame asked for.
        box: ``(x, y, w, h)`` of the object on frame 0.
        frame_indices: frames to return.
        layer: block whose attention is taken (negative counts from the last; default the last).
        max_templates: template memory bound (default: the official memory).

    Raises:
        ValueError: frame 0 or a negative index, a frame past the end of the video, or a block that does not exist.
    """
    wanted = set(frame_indices)
    if not wanted or min(wanted) < 1:
        raise ValueError(
            "attention frames must be >= 1: frame 0 initialises the tracker from the box and does not run the model."
        )
    num_layers = model.config.num_hidden_layers
    if not -num_layers <= layer < num_layers:
        raise ValueError(f"--layer {layer} does not exist: the model has {num_layers} blocks (0..{num_layers - 1}).")
    session = ODTrackInferenceSession(model, processor, max_templates=max_templates)
    session.use_template_cache = False  # the crops every frame: attentions need every block's template states
    block = layer % num_layers  # search_indices has one entry more than the blocks
    # one frame feeds both the session and the crop drawn under the map (tee buffers at most one frame)
    shown, tracked = itertools.tee(itertools.islice(frames, max(wanted) + 1))
    maps, previous, count = [], box, 0
    # the session numbers a frame before its forward: frame_idx is the frame being tracked
    with record_outputs(model, when=lambda: session.frame_idx in wanted) as calls:
        for frame, result in zip(shown, session.propagate(tracked, [box])):
            count += 1
            current = result.boxes[0].tolist()
            if result.frame_idx in wanted:
                # the search crop the model saw, cut around the box of the frame before
                crop = processor(images=frame, boxes=[previous], mode="search", do_rescale=False, do_normalize=False)
                outputs = calls.pop()
                grid = temporal_token_attention(
                    outputs.attentions[block], outputs.search_indices[block], model.config.search_feat_size
                )
                image = crop["pixel_values"][0].permute(1, 2, 0).to(torch.uint8).numpy()
                maps.append(AttentionMap(result.frame_idx, image, grid[0].cpu().numpy(), current))
            previous = current
    if count <= max(wanted):
        raise ValueError(f"the video has {count} frames; frame {max(wanted)} does not exist.")
    return maps


def attention_overlay(crop: np.ndarray, grid: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The grid, scaled from its minimum (0) to its maximum (1) and coloured with matplotlib's ``jet``, blended
    over the crop.

    Each token covers its patch (nearest-neighbour upsampling); eliminated tokens (NaN) show as 0.
    Returns an ``(S, S, 3)`` uint8 image the size of the crop.
    """
    from matplotlib import colormaps
    from PIL import Image

    low, high = np.nanmin(grid), np.nanmax(grid)
    values = (grid - low) / (high - low) if high > low else np.zeros_like(grid)
    values = np.nan_to_num(values, nan=0.0).astype(np.float32)
    height, width = crop.shape[:2]
    heat = np.asarray(Image.fromarray(values).resize((width, height), Image.NEAREST))
    colours = colormaps["jet"](heat)[..., :3] * 255.0
    return ((1.0 - alpha) * crop + alpha * colours).round().clip(0, 255).astype(np.uint8)


def save_attention_maps(maps: Iterable[AttentionMap], output_dir: str | PathLike[str]) -> list[Path]:
    """Write ``frame_<index>.png`` (the overlay, the size of the search crop) per map; returns the paths."""
    from PIL import Image

    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in maps:
        path = folder / f"frame_{item.frame_index:06d}.png"
        Image.fromarray(attention_overlay(item.crop, item.grid)).save(path)
        paths.append(path)
    return paths
