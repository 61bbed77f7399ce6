"""Small pieces every command shares: atomic file writes, checking that an output can be written,
choosing the device, and checking and loading an ODTrack folder with one-line errors.

Every failure here is a ``ValueError`` (or ``FileNotFoundError``) whose message names the problem and
the fix; the command line prints it as one line with exit code 2.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CONVERT_HINT = (
    "make it with 'odtrack convert ODTrack_ep0300.pth.tar {name}' (official weights: see docs/conversion.md) "
    "or 'save_pretrained', or leave the model out to use the packaged default model"
)


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


def model_folder(path: str | os.PathLike) -> str:
    """``path`` as a string, once checked to be a model folder (one with a ``config.json``), for
    ``pipeline("object-tracking", model=...)`` or ``from_pretrained``.

    transformers takes a name that is no folder for a Hub id, so offline a missing folder only gets
    "couldn't connect to huggingface.co". Here it raises ``FileNotFoundError`` naming the folder and how
    to make it. For a Hub id, pass the id itself.
    """
    folder = Path(path).expanduser()
    if (folder / "config.json").is_file():
        return str(folder)
    if not folder.exists():
        problem = f"no model folder {str(folder)!r} here"
    elif folder.is_dir():
        problem = f"{str(folder)!r} is not a model folder (it has no config.json)"
    else:
        problem = f"{str(folder)!r} is a file, not a model folder"
    raise FileNotFoundError(f"{problem}; {CONVERT_HINT.format(name=folder)}.")


def load_pretrained(from_pretrained: Callable[[str], Any], source: str | os.PathLike) -> Any:
    """``from_pretrained(source)`` of an ODTrack folder or Hub id, with every failure as one ``ValueError``
    (``FileNotFoundError`` for a missing folder) naming the folder, the problem and the fix.

    Checked first: the folder holds an ODTrack ``config.json`` (not another model type). Then the
    loader's own errors are translated: no such folder (offline or not on the Hub), a truncated or
    corrupt weights file, weights that do not match ``config.json``.
    """
    from safetensors import SafetensorError
    from transformers import AutoConfig

    source = str(source)
    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:  # HFValidationError is a ValueError
        if not Path(source).exists():
            raise FileNotFoundError(
                f"no model folder {source!r} here, and it could not be fetched from the Hub "
                f"({str(error).splitlines()[0]}); {CONVERT_HINT.format(name=source)}."
            ) from None
        raise ValueError(f"cannot load the model {source!r}: {str(error).splitlines()[0]}") from None
    if config.model_type != "odtrack":
        raise ValueError(
            f"{source} holds a {config.model_type!r} model, not an ODTrack model; pass an ODTrack folder "
            f"({CONVERT_HINT.format(name=source)})."
        )
    try:
        return from_pretrained(source)
    except SafetensorError as error:
        raise ValueError(
            f"the weights in {source} are truncated or corrupt ({str(error).splitlines()[0]}); "
            "save or download the model again."
        ) from None
    except RuntimeError as error:
        if "mismatched" not in str(error) and "size mismatch" not in str(error):
            raise
        raise ValueError(
            f"the weights in {source} do not match its config.json (different tensor shapes); use the config.json "
            "saved with these weights."
        ) from None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot load the model {source!r}: {str(error).splitlines()[0]}") from None

__all__ = ["atomic_path", "check_writable", "load_pretrained", "model_folder", "resolve_device", "write_atomic"]
