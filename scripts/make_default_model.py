"""Write the untrained placeholder checkpoint shipped as the package's default model.

``pipeline("object-tracking")`` and ``odtrack track`` without a model load
``src/odtrack_hf/default_model/``. Until the trained default checkpoint lands, that folder holds a tiny,
randomly initialised ODTrack (seed 0) so the whole stack runs end to end. Its boxes are meaningless.

Run from the repository root: ``.venv/bin/python scripts/make_default_model.py``.
"""

from contextlib import contextmanager
from pathlib import Path

import torch

from odtrack_hf import DEFAULT_MODEL_DIR, ODTrackConfig, ODTrackImageProcessor, ODTrackModel, ODTrackProcessor

README = """# Untrained placeholder: not a tracker

This folder is the default model of `odtrack-hf` (`pipeline("object-tracking")` and `odtrack track`
without `--model`). It is a **tiny, randomly initialised** ODTrack (64-d, 4 blocks, 128/256 px crops,
{parameters:,} parameters, seed 0): it lets the whole stack run end to end, but **its boxes are not
meaningful**. Its config carries `"is_untrained_placeholder": true`, and the pipeline and the CLI warn
when it is used.

It will be replaced by the trained default checkpoint. Until then pass a trained model, e.g. one
converted from the official weights with `odtrack convert ODTrack_ep0300.pth.tar out/`.

Regenerate it with `python scripts/make_default_model.py`.
"""


@contextmanager
def without_remote_code(*classes: type):
    """Save plain files: no copied modules or ``auto_map``, since the package itself provides the classes."""
    saved = [cls._auto_class for cls in classes]
    for cls in classes:
        cls._auto_class = None
    try:
        yield
    finally:
        for cls, auto_class in zip(classes, saved):
            cls._auto_class = auto_class


def main(output_dir: Path = DEFAULT_MODEL_DIR) -> None:
    config = ODTrackConfig(
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        template_size=128,
        search_size=256,
        head_channels=32,
        ce_layers=[1, 2],
        ce_keep_ratios=[0.7, 0.7],
        is_untrained_placeholder=True,
    )
    torch.manual_seed(0)
    model = ODTrackModel(config).eval()
    processor = ODTrackProcessor.from_model_config(config)
    with without_remote_code(ODTrackConfig, ODTrackModel, ODTrackImageProcessor, ODTrackProcessor):
        model.save_pretrained(output_dir)
        processor.save_pretrained(output_dir)
    (output_dir / "model.safetensors").chmod(0o644)  # written via a private temporary file; the package ships it
    parameters = sum(p.numel() for p in model.parameters())
    (output_dir / "README.md").write_text(README.format(parameters=parameters))
    size = sum(f.stat().st_size for f in output_dir.iterdir())
    print(f"Wrote {output_dir} ({parameters:,} parameters, {size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
