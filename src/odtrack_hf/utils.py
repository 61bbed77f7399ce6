"""Small pieces every command shares: atomic file writes, checking that an output can be written, and
choosing the device.

Every failure here is a ``ValueError`` whose message names the problem and the fix; the command line prints
it as one line with exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path next to ``path`` to write to; renamed to ``path`` when the block ends cleanly,
    deleted when it raises. A reader (or a killed run) never sees a half-written file under ``path``.

    The temporary name keeps the suffix (``.name.partial.mp4``), so writers that choose a format from the
    suffix still do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        yield partial
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Write ``data`` (text or bytes) to ``path`` through :func:`atomic_path`."""
    with atomic_path(path) as partial:
        if isinstance(data, bytes):
            partial.write_bytes(data)
        else:
            partial.write_text(data)


def check_writable(path: str | os.PathLike, option: str) -> None:
    """Raise ``ValueError`` now, before any long work, if a file cannot be written at ``path``.

    Creates the missing parent folders and a throw-away file in the target folder, so the check is the
    real thing (permission bits do not stop root; a read-only mount or a parent that is a file does).
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{option} {path} is a folder; give the path of a file (a new name, or a file inside it).")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".check"):
            pass
    except OSError as error:
        raise ValueError(
            f"{option} {path} cannot be written ({error.strerror or error}); choose a path in a writable folder."
        ) from None


def resolve_device(device: str | None) -> str:
    """``"cuda"`` or ``"cpu"``: the requested device, or CUDA when available; ``ValueError`` for CUDA without one."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA is not available on this machine; use --device cpu.")
    return device or ("cuda" if torch.cuda.is_available() else "cpu")


__all__ = ["atomic_path", "check_writable", "resolve_device", "write_atomic"]
