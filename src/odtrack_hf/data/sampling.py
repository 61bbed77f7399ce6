"""The causal clip sampler of ODTrack training (official ``TrackingSampler``, mode ``causal``;
docs/official-implementation.md, "Training clips and losses").

A training sample is a *clip*: ``T`` reference (template) frames and ``N`` search frames of one sequence,
every search frame strictly after every template. [`CausalClipSampler`] draws clips the way the official
sampler does, but every draw is a pure function of ``(seed, rank, sample index, attempt)``: sample ``i`` of
rank ``r`` is the same clip whichever process, DataLoader worker or resumed run computes it. The only
state is the number of samples the training loop has consumed (``position``), so resuming is exact.
"""

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .sources import Sequence as TrackingSequence
from .sources import SequenceSource

GAP_INCREASE = 5  # official: the sampling window widens by 5 frames after each failed draw
MIN_SEQUENCE_LENGTH = 20  # official: video sequences shorter than this are never used


@dataclass(frozen=True)
class ClipSample:
    """Frames chosen for one training clip.

    Attributes:
        source: index of the dataset in the sampler's ``sources``.
        sequence_index: index of the sequence in that dataset.
        sequence: the sequence itself (frame references, boxes ``x, y, w, h``, visibility).
        template_frames: ``T`` frame indices, ascending (duplicates possible: drawn with replacement).
        search_frames: ``N`` frame indices, ascending, all after ``template_frames[-1]`` for videos.
    """

    source: int
    sequence_index: int
    sequence: TrackingSequence
    template_frames: tuple[int, ...]
    search_frames: tuple[int, ...]


def choose_visible(
    visible_ids: np.ndarray, low: int, high: int, count: int, length: int, rng: np.random.Generator
) -> np.ndarray | None:
    """``count`` visible frame indices drawn with replacement from ``[low, high)`` (official
    ``_sample_visible_ids``: the range is clipped to ``[0, length)``), or ``None`` if it has none."""
    if count == 0:
        return np.empty(0, dtype=np.int64)
    start, stop = np.searchsorted(visible_ids, [max(low, 0), min(high, length)])
    if stop <= start:
        return None
    return visible_ids[start + rng.integers(stop - start, size=count)]


class CausalClipSampler(torch.utils.data.Sampler[int]):
    r"""Draws ODTrack training clips from several datasets (official causal sampling,
    docs/official-implementation.md, "Training clips and losses").

    Per clip:

    1. A dataset is chosen with probability proportional to ``ratios``, then a sequence uniformly; a video
       sequence is re-drawn (from the same dataset) until it has at least ``min_sequence_length`` frames
       and more than ``2 * (T + N)`` visible ones. Image datasets (COCO) are always accepted.
    2. Video: a visible *base* frame in ``[T - 1, len - N)``; ``T - 1`` visible frames from
       ``[base - max_sample_interval - g, base)`` and ``N`` visible frames from
       ``(base, base + max_sample_interval + g)``, all with replacement; ``g`` starts at 0 and grows by 5
       each time either window is empty, with a new base each time. Templates are ``[base] + previous``
       sorted, search frames sorted: the clip spans up to ``2 * max_sample_interval`` frames.
    3. Image: the image is repeated ``T`` times as template and ``N`` times as search frame; the crops
       then differ only by jitter and augmentation.

    As a ``torch`` sampler it yields the sample indices ``position, position + 1, ...`` forever; the
    dataset turns index ``i`` into a clip with ``draw(generator(i, attempt))``. Because the DataLoader
    prefetches, ``position`` does not move by itself: the training loop calls [`advance`] with the number
    of samples it consumed, and ``state_dict`` records that.

    Args:
        sources: the datasets.
        ratios: sampling weight per dataset (official ``DATASETS_RATIO``; default: equal).
        num_templates: ``T``, reference frames per clip.
        num_search_frames: ``N``, search frames per clip.
        max_sample_interval: the official ``MAX_SAMPLE_INTERVAL`` (400 in every ODTrack config).
        min_sequence_length: shortest usable video (official 20; lower it for short videos of your own).
        seed: base seed of every draw.
        rank: process index; each rank draws its own stream of clips.
    """

    def __init__(
        self,
        sources: Sequence[SequenceSource],
        ratios: Sequence[float] | None = None,
        num_templates: int = 3,
        num_search_frames: int = 2,
        max_sample_interval: int = 400,
        min_sequence_length: int = MIN_SEQUENCE_LENGTH,
        seed: int = 0,
        rank: int = 0,
    ):
        if not sources:
            raise ValueError("CausalClipSampler needs at least one dataset.")
        ratios = [1.0] * len(sources) if ratios is None else [float(r) for r in ratios]
        if len(ratios) != len(sources) or any(r < 0 or not math.isfinite(r) for r in ratios) or sum(ratios) <= 0:
            raise ValueError(
                f"ratios must give one non-negative weight per dataset ({len(sources)}) with a positive sum, got {ratios}."
            )
        for source in sources:
            if len(source) == 0:
                raise ValueError(f"Dataset {source!r} has no sequences.")
        if num_templates < 1 or num_search_frames < 1:
            raise ValueError(
                f"Need at least one template and one search frame, got {num_templates} and {num_search_frames}."
            )
        if max_sample_interval < 1:
            raise ValueError(f"max_sample_interval must be >= 1, got {max_sample_interval}.")
        if seed < 0 or rank < 0:
            raise ValueError(f"seed and rank must be non-negative, got seed={seed}, rank={rank}.")
        self.sources = list(sources)
        self.probabilities = np.asarray(ratios) / sum(ratios)
        self.num_templates = num_templates
        self.num_search_frames = num_search_frames
        self.max_sample_interval = max_sample_interval
        self.min_sequence_length = min_sequence_length
        self.seed = seed
        self.rank = rank
        self.position = 0
        # sequences found unusable, per dataset: a cache that only saves re-reading their annotations
        # (draws are made whether or not it is filled, so it never changes which clip comes out)
        self._unusable: list[set[int]] = [set() for _ in self.sources]

    @property
    def min_visible_frames(self) -> int:
        """A video must have more visible frames than this (official ``2 * (N + T)``)."""
        return 2 * (self.num_templates + self.num_search_frames)

    def generator(self, index: int, attempt: int = 0) -> np.random.Generator:
        """The random generator of sample ``index`` (``attempt`` > 0 after rejected draws): it draws
        the clip and then its augmentation."""
        return np.random.default_rng([self.seed, self.rank, index, attempt])

    def draw(self, rng: np.random.Generator) -> ClipSample:
        """Draw one clip with ``rng`` (see the class docstring for the rules)."""
        source_index = int(rng.choice(len(self.sources), p=self.probabilities))
        source, unusable = self.sources[source_index], self._unusable[source_index]
        while True:
            if len(unusable) == len(source):
                raise ValueError(
                    f"No sequence of {source!r} is usable for training: a video needs at least "
                    f"{self.min_sequence_length} frames (min_sequence_length) and more than "
                    f"{self.min_visible_frames} visible ones (2 x (templates + search frames))."
                )
            sequence_index = int(rng.integers(len(source)))
            if sequence_index in unusable:
                continue
            sequence = source[sequence_index]
            if not source.is_video:
                templates, search = (0,) * self.num_templates, (0,) * self.num_search_frames
                return ClipSample(source_index, sequence_index, sequence, templates, search)
            frames = self._causal_frames(sequence, rng) if self._usable(sequence) else None
            if frames is None:
                unusable.add(sequence_index)
                continue
            return ClipSample(source_index, sequence_index, sequence, *frames)

    def _usable(self, sequence: TrackingSequence) -> bool:
        return len(sequence) >= self.min_sequence_length and int(sequence.visible.sum()) > self.min_visible_frames

    def _causal_frames(
        self, sequence: TrackingSequence, rng: np.random.Generator
    ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
        length, visible_ids = len(sequence), np.flatnonzero(sequence.visible)
        num_t, num_s, max_gap = self.num_templates, self.num_search_frames, self.max_sample_interval
        gap = 0
        # terminates: a usable sequence always has a base with visible frames before and after it
        # (e.g. its N-th last visible frame), and once the windows cover the whole video every draw
        # of that base succeeds
        while True:
            base = choose_visible(visible_ids, num_t - 1, length - num_s, 1, length, rng)
            if base is None:
                return None
            base = int(base[0])
            previous = choose_visible(visible_ids, base - max_gap - gap, base, num_t - 1, length, rng)
            if previous is None:
                gap += GAP_INCREASE
                continue
            search = choose_visible(visible_ids, base + 1, base + max_gap + gap, num_s, length, rng)
            gap += GAP_INCREASE
            if search is not None:
                templates = sorted([base, *previous.tolist()])
                return tuple(templates), tuple(sorted(search.tolist()))

    # --- torch sampler protocol and resume state ----------------------------------------------------
    def __iter__(self) -> Iterator[int]:
        index = self.position
        while True:
            yield index
            index += 1

    def advance(self, num_samples: int) -> None:
        """Record that the training loop consumed ``num_samples`` more samples."""
        self.position += num_samples

    def state_dict(self) -> dict[str, int]:
        """``seed`` and ``position`` (samples consumed); the rank is the process's own and not saved."""
        return {"seed": self.seed, "position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue after ``state["position"]`` samples; the seed must be the one the state was saved with."""
        if state["seed"] != self.seed:
            raise ValueError(
                f"The checkpoint's clip sampler used seed {state['seed']}, this run seed {self.seed}: resume "
                "with the seed of the original run, or start a new run in a new output directory."
            )
        self.position = int(state["position"])


__all__ = ["CausalClipSampler", "ClipSample", "choose_visible"]
