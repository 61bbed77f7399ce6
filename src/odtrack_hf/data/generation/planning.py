"""Sequence plans: the attributes a sequence aims for, and the motion, layers, lighting and background
that produce them. A plan is a pure function of ``(split, index, seed, config)``."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .attributes import ATTRIBUTES, WIDE_ATTRIBUTES
from .layers import Bend, KnotPath, Layer, make_layer, prepare_sprite
from .photos import SPLITS, check_split, load_video
from .pools import MIXES, Pool, pool_for
from .rendering import Shade, render_frames
from .sprites import Sprite, cutout_shapes, patch_sprite, sprite_sources


@dataclass(frozen=True)
class GenerationConfig:
    """Sequence lengths and frame sizes; each sequence draws its length and its 4:3 size in range.

    ``max_stretch`` > 1 stretches each target by a constant aspect factor drawn log-uniformly in
    ``[1 / max_stretch, max_stretch]`` (on top of its photo's shape and any aspect change), so that thin and
    wide targets (people, poles, cars) appear in training: without it, 99 % of the training frames are
    within 2.6:1.
    The factor comes from a random stream of its own: 1 (the default) leaves every sequence as it was.

    ``mix`` picks the pool (`pools.pool_for`): ``"classic"`` (the default, the original photo sources)
    or ``"wide"`` (adds the asset packages; the held-out split uses only held-out packages).
    """

    min_frames: int = 60
    max_frames: int = 150
    min_size: tuple[int, int] = (320, 240)
    max_size: tuple[int, int] = (640, 480)
    jpeg_quality: int = 90
    max_stretch: float = 1.0
    mix: str = "classic"

    def __post_init__(self):
        if not 2 <= self.min_frames <= self.max_frames:
            raise ValueError(f"need 2 <= min_frames <= max_frames, got {self.min_frames} and {self.max_frames}.")
        if not (32 <= self.min_size[0] <= self.max_size[0] and 32 <= self.min_size[1] <= self.max_size[1]):
            raise ValueError(f"frame sizes must be >= 32 and min <= max, got {self.min_size} and {self.max_size}.")
        if not self.max_stretch >= 1:
            raise ValueError(f"max_stretch must be >= 1 (1 = no stretch), got {self.max_stretch}.")
        if self.mix not in MIXES:
            raise ValueError(f"mix must be one of {', '.join(MIXES)}, got {self.mix!r}.")


@dataclass
class _Background:
    """Frames cut from still or video canvases along a camera window path."""

    source: str
    kind: str
    canvases: list[Image.Image]
    canvas_index: np.ndarray  # (T,) canvas per frame
    windows: np.ndarray  # (T, 4) x0, y0, x1, y1 in canvas pixels
    camera_motion: bool
    clutter_sources: frozenset[str] = frozenset()
    lookalikes: int = 0
    _last: tuple | None = field(default=None, repr=False)

    def frame(self, t: int, size: tuple[int, int]) -> Image.Image:
        """Frame ``t`` of the background at ``size``, a new image each call."""
        key = (int(self.canvas_index[t]), tuple(float(v) for v in self.windows[t]), size)
        if self._last is None or self._last[0] != key:  # a still camera on a still reuses the frame
            canvas = self.canvases[key[0]]
            self._last = (key, canvas.resize(size, Image.BILINEAR, box=key[1]))
        return self._last[1].copy()


@dataclass
class SequencePlan:
    """Everything needed to render one sequence; rendering draws no random numbers.

    Attributes:
        name: sequence folder name.
        split, index, seed: its identity; the plan is a function of them and the config.
        width, height, num_frames: frame geometry.
        layers: distractors, target and occluders, back to front.
        target: index of the target in ``layers``.
        lighting: ``(T, 3)`` global RGB gain per frame, or ``None``.
        target_lighting: ``(T, 3)`` extra gain on the target only, or ``None``.
        planned: the attributes the plan aims for.
        clutter: number of clutter patches pasted into the background.
        sources: every photo source the sequence uses.
        mix: the pool it draws from (`GenerationConfig.mix`).
        shade: moving light or shadow across the frame, or ``None``.
        lookalikes: copies of the target pasted into the background (camouflage).
    """

    name: str
    split: str
    index: int
    seed: int
    width: int
    height: int
    num_frames: int
    background: _Background
    layers: list[Layer]
    target: int
    lighting: np.ndarray | None
    target_lighting: np.ndarray | None
    planned: frozenset[str]
    clutter: int
    sources: frozenset[str] = field(default_factory=frozenset)
    mix: str = "classic"
    shade: Shade | None = None
    lookalikes: int = 0


def sequence_name(split: str, index: int) -> str:
    """Folder name of sequence ``index`` (0-based) of ``split``, e.g. ``SYN_Train_000001``."""
    return f"SYN_{split.capitalize()}_{index + 1:06d}"


# Probability that a training sequence aims for each attribute; held-out sequences also force
# ATTRIBUTES[index % 13], so any 13 consecutive held-out sequences aim for every attribute.
_ATTRIBUTE_PROBABILITY = {
    "fast_motion": 0.35,
    "scale_change": 0.4,
    "aspect_change": 0.3,
    "rotation": 0.35,
    "partial_occlusion": 0.3,
    "full_occlusion": 0.2,
    "similar_distractors": 0.4,
    "motion_blur": 0.2,
    "illumination_change": 0.3,
    "out_of_view": 0.2,
    "small_target": 0.2,
    "background_clutter": 0.35,
}


# The wide mix also aims for what trackers fail at: strong light changes, deforming targets,
# camouflage and crowds of look-alikes.
_WIDE_PROBABILITY = {
    "strong_illumination": 0.35,
    "deformation": 0.3,
    "camouflage": 0.2,
    "distractor_crowd": 0.25,
}


def _choose_attributes(rng: np.random.Generator, split: str, index: int, mix: str = "classic") -> set[str]:
    """The attributes sequence ``index`` aims for; smooth and fast motion exclude each other."""
    probability = _ATTRIBUTE_PROBABILITY if mix == "classic" else {**_ATTRIBUTE_PROBABILITY, **_WIDE_PROBABILITY}
    vocabulary = ATTRIBUTES if mix == "classic" else WIDE_ATTRIBUTES
    wanted = {name for name, p in probability.items() if rng.random() < p}
    if split == "heldout":
        wanted.add(vocabulary[index % len(vocabulary)])
    if "smooth_motion" in wanted:
        wanted -= {"fast_motion", "motion_blur"}
    elif "fast_motion" not in wanted and "motion_blur" not in wanted:
        wanted.add("smooth_motion")
    return wanted


def _knot_times(rng: np.random.Generator, length: int, count: int) -> np.ndarray:
    """``count`` knot times from the first to the last frame, evenly spaced give or take 30 %, so that
    no two knots crowd together (which would make a sudden change)."""
    spacing = (length - 1) / (count - 1)
    times = np.arange(count) * spacing
    times[1:-1] += rng.uniform(-0.3, 0.3, count - 2) * spacing
    return times


def _range_knots(rng: np.random.Generator, length: int, centre: float, spread: float) -> tuple[np.ndarray, np.ndarray]:
    """Knots of a path in ``[centre - spread/2, centre + spread/2]`` that visits both ends."""
    times = _knot_times(rng, length, int(rng.integers(3, 6)))
    values = centre + rng.uniform(-spread / 2, spread / 2, len(times))
    first, other = rng.permutation(len(times))[:2]
    sign = rng.choice([-1.0, 1.0])
    values[first], values[other] = centre + sign * spread / 2, centre - sign * spread / 2
    return times, values


def _ratio_path(rng: np.random.Generator, length: int, base: float, ratio: float) -> KnotPath:
    """A positive path around ``base`` (geometrically) whose max / min is ``ratio``."""
    times, values = _range_knots(rng, length, math.log(base), math.log(ratio))
    return KnotPath(times, np.exp(values))


def _walk(
    rng: np.random.Generator,
    length: int,
    start: np.ndarray,
    speed: float,
    gap: tuple[float, float],
    low: np.ndarray,
    high: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Knots ``(times, points)`` of a random walk at ``speed`` px/frame, reflected into ``[low, high]``."""
    times, points = [0.0], [start]
    span = np.maximum(high - low, 1e-6)
    while times[-1] < length - 1:
        step = min(rng.uniform(*gap), length - 1 - times[-1])
        direction = rng.uniform(0, 2 * np.pi)
        point = points[-1] + speed * step * np.array([math.cos(direction), math.sin(direction)])
        point = low + span - np.abs((point - low) % (2 * span) - span)  # reflect at the walls
        times.append(times[-1] + step)
        points.append(np.clip(point, low, high))
    return np.array(times), np.array(points)


def _half_extent(image_size: tuple[int, int], object_size: float, max_aspect: float) -> float:
    """Largest half extent of a sprite of ``image_size`` (w, h), at any rotation and up to
    ``max_aspect`` stretch, per unit of its object size."""
    return math.hypot(*image_size) / 2 / object_size * math.sqrt(max_aspect)


def _pick_target(rng: np.random.Generator, pool: Pool) -> Sprite:
    """A named object (categories equally likely) or, 40 % of the time, a textured cut-out; an asset
    image that is no usable cut-out is drawn again."""
    if rng.random() < 0.4:
        return patch_sprite(rng, pool, cutout_shapes(pool))
    objects = pool.objects
    categories = sorted({s.category for s in objects})
    for _ in range(200):
        category = categories[rng.integers(len(categories))]  # drawn once: every category equally likely
        members = [s for s in objects if s.category == category]
        sprite = pool.sprite(members[rng.integers(len(members))])
        if sprite is not None:
            return sprite
    raise RuntimeError(f"no usable object among 200 drawn from the {pool.split} pool of the {pool.mix} mix.")


def _distractor_sprite(rng: np.random.Generator, pool: Pool, target: Sprite) -> tuple[Sprite, np.ndarray | None]:
    """Another instance of the target's category (another coin, another cut-out of the same texture
    and shape), or else the target itself recoloured; returns the sprite and its colour gain."""
    if target.category.startswith("patch:"):
        _, source, kind = target.category.split(":")
        return patch_sprite(rng, pool, (kind,), source, target.region), None
    others = [s for s in pool.objects if s.category == target.category and s.name != target.name]
    sprite = pool.sprite(others[rng.integers(len(others))]) if others else None
    if sprite is not None:
        return sprite, None
    return target, rng.uniform(0.75, 1.25, 3)


def plan_sequence(split: str, index: int, seed: int = 0, config: GenerationConfig = GenerationConfig()) -> SequencePlan:
    """Plan sequence ``index`` of ``split``: a pure function of ``(split, index, seed, config)``.

    The first frame always shows the whole target, unoccluded (the tracker's initialisation).
    """
    check_split(split)
    rng = np.random.default_rng([seed, SPLITS.index(split), index])
    steps = (config.max_size[0] - config.min_size[0]) // 32
    width = config.min_size[0] + 32 * int(rng.integers(steps + 1))
    height = int(np.clip(round(width * 3 / 4), config.min_size[1], config.max_size[1]))
    length = int(rng.integers(config.min_frames, config.max_frames + 1))
    wanted = _choose_attributes(rng, split, index, config.mix)
    log_stretch = 0.0
    if config.max_stretch > 1:
        bound = math.log(config.max_stretch)
        log_stretch = float(np.random.default_rng([seed, SPLITS.index(split), index, 1]).uniform(-bound, bound))
    for _ in range(50):
        plan = _try_plan(rng, pool_for(split, config.mix), index, seed, width, height, length, wanted, log_stretch)
        _, first = next(render_frames(plan))
        if first.in_frame > 0.97 and first.visible > 0.97:
            return plan
    raise RuntimeError(f"could not plan {sequence_name(split, index)} with a visible first frame")


def _try_plan(
    rng: np.random.Generator,
    pool: Pool,
    index: int,
    seed: int,
    width: int,
    height: int,
    length: int,
    wanted: set[str],
    log_stretch: float = 0.0,
) -> SequencePlan:
    """One attempt at a plan (`plan_sequence` checks its first frame); ``log_stretch`` is the log of the
    target's constant aspect stretch (`GenerationConfig.max_stretch`)."""
    frame = np.array([width, height], dtype=float)
    diagonal = math.sqrt(width * height)
    sprite = _pick_target(rng, pool)

    # Size, aspect and rotation of the target; size is sqrt(object area) in frame pixels.
    scale_ratio = rng.uniform(1.8, 3.0) if "scale_change" in wanted else rng.uniform(1.0, 1.15)
    aspect_ratio = rng.uniform(1.6, 2.2) if "aspect_change" in wanted else rng.uniform(1.0, 1.06)
    native = math.sqrt(float(sprite.rgba[:, :, 3].sum()) / 255)
    max_aspect = math.sqrt(aspect_ratio) * math.exp(abs(log_stretch))
    half_extent = _half_extent(sprite.rgba.shape[1::-1], native, max_aspect)
    base = diagonal * (rng.uniform(0.035, 0.065) if "small_target" in wanted else rng.uniform(0.12, 0.3))
    # The largest view stays inside the frame (shrink the object rather than clip it), and a sprite
    # (a coin, a galaxy) is never enlarged beyond 1.5x its photo resolution.
    largest = min(0.45 * min(width, height) / half_extent, 1.5 * native)
    base = max(min(base, largest / math.sqrt(scale_ratio)), 6.0)
    prepared = prepare_sprite(sprite, base * math.sqrt(scale_ratio), flip=bool(rng.random() < 0.5))
    size = _ratio_path(rng, length, base, scale_ratio)
    aspect = KnotPath(*_range_knots(rng, length, log_stretch, math.log(aspect_ratio)))
    if "rotation" in wanted:
        times = _knot_times(rng, length, int(rng.integers(3, 6)))
        amplitude = math.radians(rng.uniform(60, 200))
        angles = rng.uniform(-amplitude, amplitude, len(times))
        angles[rng.integers(1, len(times))] = rng.choice([-1.0, 1.0]) * amplitude
        angles[0] = rng.uniform(-0.2, 0.2)
    else:
        times = _knot_times(rng, length, 3)
        angles = rng.uniform(-0.08, 0.08, len(times))
    angle = KnotPath(times, angles)

    # Centre: a random walk reflected inside the frame, with an excursion out of view.
    reach = half_extent * base * math.sqrt(scale_ratio)
    margin = np.minimum(reach + 2, frame / 2)
    low, high = margin, frame - margin
    if "fast_motion" in wanted:
        speed, gap = min(rng.uniform(0.6, 1.4) * base + 0.02 * diagonal, 0.25 * min(width, height)), (3.0, 8.0)
    elif "motion_blur" in wanted:
        speed, gap = rng.uniform(0.3, 0.5) * base + 0.01 * diagonal, (5.0, 15.0)
    else:
        speed, gap = rng.uniform(0.02, 0.1) * base, (15.0, 40.0)
    times, points = _walk(rng, length, rng.uniform(low, high), speed, gap, low, high)
    busy = []  # (start, end) frames already used by an out-of-view stay or an occlusion
    if "out_of_view" in wanted and length >= 12:
        leave = rng.uniform(0.25, 0.5) * length
        stay = max(3.0, rng.uniform(0.08, 0.2) * length)
        times, points, span = _exit_knots(times, points, leave, stay, frame, reach + 3, max(speed, 0.1 * base))
        busy.append(span)  # no occlusion while the target leaves, stays out or returns
    exposure = rng.uniform(0.6, 1.0) if "motion_blur" in wanted else 0.0
    bend = None
    if "deformation" in wanted:
        width_px = prepared[0].size[0]
        swing = rng.uniform(12, 40)
        bend = Bend(
            rng.uniform(0.06, 0.15) * width_px, rng.uniform(0.5, 1.5), rng.uniform(0.1, 0.4), swing, rng.uniform(0, 6.3)
        )
    target = make_layer("target", sprite, prepared, KnotPath(times, points), size, aspect, angle, exposure, bend)

    behind, front = [], []
    if "similar_distractors" in wanted:
        for _ in range(int(rng.integers(1, 4))):
            layer = _distractor_layer(rng, pool, target, length, frame, base, speed, gap)
            (front if rng.random() < 0.25 else behind).append(layer)
    if "distractor_crowd" in wanted:  # look-alikes that cross the target, one after another
        for _ in range(int(rng.integers(3, 6))):
            layer = _distractor_layer(rng, pool, target, length, frame, base, speed, gap, passing=(0.0, 0.7))
            (front if rng.random() < 0.4 else behind).append(layer)
    for kind in ("full_occlusion", "partial_occlusion"):
        if kind in wanted and length >= 8:
            layer = _occluder_layer(rng, pool, target, length, kind == "full_occlusion", busy)
            if layer is not None:
                front.append(layer)

    lighting = target_lighting = None
    if "illumination_change" in wanted:
        lighting = _lighting(rng, length, rng.uniform(1.8, 2.8))
        if rng.random() < 0.5:
            target_lighting = _lighting(rng, length, rng.uniform(1.2, 1.8))
    shade = None
    if "strong_illumination" in wanted:
        lighting, shade = _strong_lighting(rng, length, width, height)

    clutter = int(rng.integers(10, 26)) if "background_clutter" in wanted else int(rng.integers(0, 3))
    camouflage = sprite if "camouflage" in wanted else None
    background = _plan_background(rng, pool, sprite.source, length, width, height, base, clutter, camouflage)
    layers = behind + [target] + front
    sources = {background.source, *background.clutter_sources}.union(*(sprite_sources(l.sprite) for l in layers))
    return SequencePlan(
        name=sequence_name(pool.split, index),
        split=pool.split,
        index=index,
        seed=seed,
        width=width,
        height=height,
        num_frames=length,
        background=background,
        layers=layers,
        target=len(behind),
        lighting=lighting,
        target_lighting=target_lighting,
        planned=frozenset(wanted),
        clutter=clutter,
        sources=frozenset(sources),
        mix=pool.mix,
        shade=shade,
        lookalikes=background.lookalikes,
    )


def _exit_knots(
    times: np.ndarray,
    points: np.ndarray,
    leave: float,
    stay: float,
    frame: np.ndarray,
    reach: float,
    speed: float,
) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
    """Make the walk leave through the nearest frame edge at ``leave``, stay ``reach`` pixels out
    (enough to hide the whole object) for ``stay`` frames and come back, moving at about ``speed``
    px/frame on the way (PCHIP holds it outside while the knots are outside). Returns the new knots
    and the frames from the start of the exit to the end of the return."""
    walk = KnotPath(times, points)
    position = walk(leave)
    side = int(np.argmin(np.concatenate([position, frame - position])))  # left, top, right, bottom
    axis = side % 2
    outside = position.copy()
    outside[axis] = -reach if side < 2 else frame[axis] + reach
    # The way out (and back) takes at most 15 % of the sequence, leaving time for other events.
    lead = float(
        np.clip(abs(outside[axis] - position[axis]) / max(speed, 1e-3), 3.0, min(leave - 1.0, 0.15 * times[-1]))
    )
    back = min(leave + stay + lead, times[-1])
    keep = (times < leave - lead) | (times > back)
    times = np.concatenate([times[keep], [leave - lead, leave, leave + stay, back]])
    points = np.concatenate([points[keep], [walk(leave - lead), outside, outside, walk(back)]])
    return times, points, (leave - lead, back)


def _distractor_layer(
    rng: np.random.Generator,
    pool: Pool,
    target: Layer,
    length: int,
    frame: np.ndarray,
    base: float,
    speed: float,
    gap: tuple[float, float],
    passing: tuple[float, float] = (1.0, 1.8),
) -> Layer:
    """A similar object on its own walk that passes the target once, its centre ``passing`` target
    sizes from the target's (below 1 it crosses the target)."""
    sprite, gain = _distractor_sprite(rng, pool, target.sprite)
    size = base * rng.uniform(0.75, 1.3)
    prepared = prepare_sprite(sprite, size * 1.2, bool(rng.random() < 0.5), gain)
    half = np.minimum(_half_extent(prepared[0].size, prepared[1], 1.1) * size, frame / 2)
    times, points = _walk(
        rng, length, rng.uniform(half, frame - half), max(speed, 0.05 * base), gap, half, frame - half
    )
    meet = rng.uniform(0.2, 0.9) * (length - 1)
    direction = rng.uniform(0, 2 * np.pi)
    near = target.centre(meet) + rng.uniform(*passing) * base * np.array([math.cos(direction), math.sin(direction)])
    keep = np.abs(times - meet) > 2
    centre = KnotPath(np.concatenate([times[keep], [meet]]), np.concatenate([points[keep], [near]]))
    ends = np.array([0.0, length - 1.0])
    aspect = KnotPath(ends, rng.uniform(-0.05, 0.05, 2))
    angle = KnotPath(ends, target.angle(ends) + rng.uniform(-0.3, 0.3, 2))
    return make_layer("distractor", sprite, prepared, centre, _ratio_path(rng, length, size, 1.3), aspect, angle)


def _occluder_layer(
    rng: np.random.Generator, pool: Pool, target: Layer, length: int, full: bool, busy: list[tuple[float, float]]
) -> Layer | None:
    """A real-photo layer that slides over the target: for ``full`` occlusion a convex cut-out larger
    than the target that stays over it for a few frames, else a smaller object that covers part of
    it while crossing. ``None`` when no free time is left."""
    hold = max(2.0, rng.uniform(0.06, 0.15) * length) if full else 0.0
    approach = rng.uniform(4, 12)
    for _ in range(50):
        middle = rng.uniform(0.15, 0.9) * (length - 1)
        span = (middle - hold / 2 - approach, middle + hold / 2 + approach)
        core = (middle - hold / 2 - 2, middle + hold / 2 + 2)
        if span[0] >= 1 and not any(core[0] < end and start < core[1] for start, end in busy):
            break
    else:
        return None
    busy.append(core)
    during = np.linspace(middle - hold / 2, middle + hold / 2, max(2, int(hold / 2) + 1))
    reach = max(np.hypot(*(box[2:] - box[:2])) / 2 for box in (target.box(t) for t in during))
    direction = rng.uniform(0, 2 * np.pi)
    unit = np.array([math.cos(direction), math.sin(direction)])
    ends = np.array([0.0, length - 1.0])
    if full:
        sprite = patch_sprite(rng, pool, ("ellipse", "rounded_rect"))
        radii = (reach + 4) * rng.uniform(1.15, 1.5, 2)
        prepared = prepare_sprite(sprite, 2 * math.sqrt(radii[0] * radii[1]), bool(rng.random() < 0.5))
        # Stretch the cut-out so that its shape (the photo region inside the crop's margin) spans
        # (2 rx, 2 ry) pixels.
        crop = np.array(sprite.rgba.shape[1::-1], dtype=float)
        stretch = 2 * radii * crop / np.array(sprite.region[2:]) / np.array(prepared[0].size)
        size = prepared[1] * math.sqrt(stretch[0] * stretch[1])
        log_aspect = math.log(stretch[0] / stretch[1])
        close = rng.uniform(0.0, max(radii.min() - reach - 3, 0.0))  # still covering everything
        far = reach + radii.max() + 4
        knots = [
            (span[0], -far * unit),
            (middle - hold / 2, -close * unit),
            (middle + hold / 2, close * unit),
            (span[1], far * unit),
        ]
        angle = KnotPath(ends, [0.0, 0.0])
    else:
        candidates = [s for s in pool.objects if s.category != target.sprite.category]
        use_object = candidates and rng.random() < 0.5
        sprite = pool.sprite(candidates[rng.integers(len(candidates))]) if use_object else None
        if sprite is None:
            sprite = patch_sprite(rng, pool, cutout_shapes(pool))
        size = reach * rng.uniform(0.5, 1.0)
        prepared = prepare_sprite(sprite, size, bool(rng.random() < 0.5))
        log_aspect = 0.0
        far = reach + _half_extent(prepared[0].size, prepared[1], 1.0) * size + 4
        side = rng.uniform(0.0, 0.5) * reach * np.array([-unit[1], unit[0]])
        knots = [(span[0], side - far * unit), (middle, side), (span[1], side + far * unit)]
        angle = KnotPath(ends, rng.uniform(-0.5, 0.5, 2))
    # Follow the target during the encounter (offsets relative to its centre, every 2 frames) ...
    knot_times = np.array([k[0] for k in knots])
    offsets = np.array([k[1] for k in knots])
    times = np.unique(np.concatenate([knot_times, np.arange(math.ceil(span[0]), span[1], 2.0)]))
    points = target.centre(times) + np.stack([np.interp(times, knot_times, offsets[:, k]) for k in (0, 1)], axis=1)
    # ... and keep the velocity outside it, so the occluder comes from and leaves through the edges.
    lead = 2.0 * length
    entry = (points[1] - points[0]) / (times[1] - times[0])
    leave = (points[-1] - points[-2]) / (times[-1] - times[-2])
    times = np.concatenate([[times[0] - lead], times, [times[-1] + lead]])
    points = np.concatenate([[points[0] - lead * entry], points, [points[-1] + lead * leave]])
    constant = KnotPath(ends, [size, size])
    return make_layer(
        "occluder", sprite, prepared, KnotPath(times, points), constant, KnotPath(ends, [log_aspect] * 2), angle
    )


def _lighting(rng: np.random.Generator, length: int, ratio: float) -> np.ndarray:
    """``(T, 3)`` RGB gains whose brightness spans ``ratio`` (max / min), slightly tinted."""
    brightness = _ratio_path(rng, length, math.exp(rng.uniform(-0.15, 0.15)), ratio)(np.arange(length))
    tint_times = _knot_times(rng, length, 3)
    tint = KnotPath(tint_times, rng.uniform(0.9, 1.1, (len(tint_times), 3)))(np.arange(length))
    return brightness[:, None] * tint


def _plan_background(
    rng: np.random.Generator,
    pool: Pool,
    avoid: str,
    length: int,
    width: int,
    height: int,
    base: float,
    clutter: int,
    camouflage: Sprite | None = None,
) -> _Background:
    """Background canvases (a still, or video frames) with clutter pasted in, and a camera path. With
    ``camouflage`` (the target), the still the target was cut from where it is one, and copies of the
    target pasted all over."""
    videos = pool.videos
    if videos and rng.random() < 0.35:
        source = videos[rng.integers(len(videos))]
        frames = load_video(source)
        stride = int(rng.integers(1, 3))
        start = int(rng.integers(len(frames)))
        # Play forwards, bouncing at the ends, so any length fits any video.
        steps = (start + stride * np.arange(length)) % (2 * len(frames) - 2)
        indices = np.where(steps < len(frames), steps, 2 * len(frames) - 2 - steps)
        used, canvas_index = np.unique(indices, return_inverse=True)
        canvases = [Image.fromarray(frames[k]) for k in used]
        kind, moving = "video", bool(rng.random() < 0.3)
    else:
        stills = [s for s in pool.stills if s != avoid]
        source = stills[rng.integers(len(stills))]
        if camouflage is not None and camouflage.source in pool.stills:
            source = camouflage.source
        canvases = [Image.fromarray(pool.photo(source))]
        canvas_index = np.zeros(length, dtype=int)
        kind, moving = "still", bool(rng.random() < 0.6)
    if rng.random() < 0.5:
        canvases = [c.transpose(Image.FLIP_LEFT_RIGHT) for c in canvases]
    canvas_w, canvas_h = canvases[0].size
    # Camera: a window of the output's aspect ratio that pans and zooms smoothly over the canvas.
    full_w = min(canvas_w, canvas_h * width / height)
    zoom = _ratio_path(rng, length, rng.uniform(0.6, 0.85), rng.uniform(1.0, 1.4) if moving else 1.0)
    window_w = np.minimum(full_w * zoom(np.arange(length)), full_w)
    window_h = window_w * height / width
    times = _knot_times(rng, length, int(rng.integers(2, 5)))
    where = rng.uniform(0, 1, (len(times), 2))
    if not moving:
        where[:] = where[0]
    where = KnotPath(times, where)(np.arange(length))
    x0, y0 = where[:, 0] * (canvas_w - window_w), where[:, 1] * (canvas_h - window_h)
    windows = np.stack([x0, y0, x0 + window_w, y0 + window_h], axis=1)
    # Downscale large canvases once, so that no frame resamples more than 1.25x.
    factor = min(1.0, 1.25 * width / window_w.min())
    if factor < 1.0:
        size = (max(1, round(canvas_w * factor)), max(1, round(canvas_h * factor)))
        canvases = [c.resize(size, Image.LANCZOS) for c in canvases]
        windows = windows * factor
    # rounding of the downscaled canvas (and path overshoot) can push a window past the edge, which PIL
    # refuses: move it back inside
    limits = np.array(canvases[0].size, dtype=float)
    for axis in (0, 1):
        low, high = windows[:, axis], windows[:, axis + 2]
        shift = np.minimum(0.0, limits[axis] - high) - np.minimum(0.0, low)
        windows[:, axis] = np.maximum(0.0, low + shift)
        windows[:, axis + 2] = np.minimum(limits[axis], high + shift)
    background = _Background(source, kind, canvases, canvas_index, windows, moving)
    if clutter:
        # The target's size in canvas pixels, at the mean zoom.
        _paste_clutter(rng, pool, background, clutter, base * window_w.mean() * factor / width)
    if camouflage is not None:
        _paste_lookalikes(
            rng, background, camouflage, int(rng.integers(12, 31)), base * window_w.mean() * factor / width
        )
    return background


def _paste_clutter(rng: np.random.Generator, pool: Pool, background: _Background, count: int, base: float) -> None:
    """Paste ``count`` real-photo cut-outs and objects about ``base`` canvas pixels in size into the
    background canvases, so that they move with the camera like the rest of the scene."""
    objects = pool.objects
    width, height = background.canvases[0].size
    patches, sources = [], set()
    for _ in range(count):
        sprite = pool.sprite(objects[rng.integers(len(objects))]) if rng.random() < 0.4 else None
        if sprite is None:
            sprite = patch_sprite(rng, pool, cutout_shapes(pool))
        image, _ = prepare_sprite(sprite, base * rng.uniform(0.3, 1.3), bool(rng.random() < 0.5))
        image = image.rotate(float(rng.uniform(-180, 180)), Image.BILINEAR, expand=True)
        position = (int(rng.integers(-image.size[0] // 2, width)), int(rng.integers(-image.size[1] // 2, height)))
        patches.append((image, position))
        sources |= sprite_sources(sprite)
    background.canvases = [canvas.copy() for canvas in background.canvases]
    for canvas in background.canvases:
        for image, position in patches:
            canvas.paste(image, position, image)
    background.clutter_sources = frozenset(sources)


def _paste_lookalikes(
    rng: np.random.Generator, background: _Background, target: Sprite, count: int, base: float
) -> None:
    """Camouflage: paste ``count`` copies of the target (recoloured a little, turned, 0.7-1.3 times its
    size in canvas pixels ``base``) into the background canvases."""
    width, height = background.canvases[0].size
    patches = []
    for _ in range(count):
        image, _ = prepare_sprite(
            target, base * rng.uniform(0.7, 1.3), bool(rng.random() < 0.5), rng.uniform(0.85, 1.15, 3)
        )
        image = image.rotate(float(rng.uniform(-180, 180)), Image.BILINEAR, expand=True)
        patches.append(
            (image, (int(rng.integers(-image.size[0] // 2, width)), int(rng.integers(-image.size[1] // 2, height))))
        )
    background.canvases = [canvas.copy() for canvas in background.canvases]
    for canvas in background.canvases:
        for image, position in patches:
            canvas.paste(image, position, image)
    background.lookalikes = count


def _strong_lighting(rng: np.random.Generator, length: int, width: int, height: int) -> tuple[np.ndarray, Shade | None]:
    """``(T, 3)`` global gains and a moving shade for one of: dimming to about a quarter, dusk (darker
    and bluer), a strong colour cast, flicker, or a light or shadow band sweeping across the frame."""
    frames = np.arange(length)
    kind = ("dim", "dusk", "cast", "flicker", "shade")[int(rng.integers(5))]
    gains = np.ones((length, 3))
    shade = None
    if kind in ("dim", "dusk"):
        low = rng.uniform(0.2, 0.3) if kind == "dim" else rng.uniform(0.25, 0.4)
        start, end = sorted(rng.uniform(0.1, 0.9, 2) * (length - 1))
        level = np.interp(frames, [0, start, max(end, start + 1), length - 1], [1.0, 1.0, low, low])
        if rng.random() < 0.5:  # or the light comes back up
            level = level[::-1]
        gains *= level[:, None]
        if kind == "dusk":
            fade = (1 - level) / (1 - low)
            gains *= 1 + fade[:, None] * np.array([-0.25, -0.1, 0.2])
    elif kind == "cast":
        times = _knot_times(rng, length, int(rng.integers(3, 6)))
        gains = KnotPath(times, rng.uniform(0.55, 1.35, (len(times), 3)))(frames)
    elif kind == "flicker":
        level = rng.uniform(0.6, 1.0)
        gains *= (
            np.where(rng.random(length) < rng.uniform(0.2, 0.5), rng.uniform(0.3, 0.7, length), 1.0)[:, None] * level
        )
    else:
        angle = rng.uniform(0, 2 * np.pi)
        normal = (math.cos(angle), math.sin(angle))
        corners = np.array([[0, 0], [width, 0], [0, height], [width, height]]) @ np.array(normal)
        band = rng.uniform(0.15, 0.4) * math.hypot(width, height)
        offsets = np.linspace(corners.min() - band, corners.max() + band, length)
        shade = Shade(
            normal, offsets[:: 1 if rng.random() < 0.5 else -1], band, rng.uniform(0.55, 0.75), bool(rng.random() < 0.5)
        )
    return gains, shade
