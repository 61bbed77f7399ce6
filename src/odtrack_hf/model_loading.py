"""Where ODTrack models come from: the model shipped with the package, and loading a folder or Hub id
(the model, its processor, or both as a tracker) with one-line errors.

Every failure here is a ``ValueError`` (or ``FileNotFoundError``) whose message names the folder, the problem
and the fix; the command line prints it as one line with exit code 2.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .modeling_odtrack import ODTrackModel
    from .processing_odtrack import ODTrackProcessor

# The model trained with odtrack-hf and shipped with it (model_cards/odtrack-hf-default.md), used when no model is given.
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"

CONVERT_HINT = (
    "make it with 'odtrack convert ODTrack_ep0300.pth.tar {name}' (official weights: see docs/conversion.md) "
    "or 'save_pretrained', or leave the model out to use the packaged default model"
)


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


def _load_quietly(from_pretrained: Callable[[str], Any], model_name: str | None) -> Any:
    """:func:`load_pretrained` of ``model_name`` (default: the packaged model) without download progress bars."""
    from transformers.utils import logging

    logging.disable_progress_bar()  # keep stderr to the tracking progress and one-line errors
    return load_pretrained(from_pretrained, model_name or DEFAULT_MODEL_DIR)


def load_processor(model_name: str | None) -> ODTrackProcessor:
    """The processor of a folder or Hub id (default: the packaged model), errors as in :func:`load_pretrained`."""
    from transformers import AutoProcessor

    return _load_quietly(AutoProcessor.from_pretrained, model_name)


def load_tracker(model_name: str | None, device: str) -> tuple[ODTrackModel, ODTrackProcessor]:
    """``(model in eval mode on device, processor)`` from a folder or Hub id (default: the packaged model),
    errors as in :func:`load_pretrained`."""
    from transformers import AutoModel

    model = _load_quietly(AutoModel.from_pretrained, model_name).to(device).eval()
    return model, load_processor(model_name)


__all__ = ["DEFAULT_MODEL_DIR", "load_pretrained", "load_processor", "load_tracker", "model_folder"]
