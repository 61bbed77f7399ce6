"""Export a training checkpoint (``<output_dir>/checkpoints/step_<n>/``) as a model folder for evaluation.

A checkpoint is the full training state (Accelerate ``save_state``); `odtrack eval --model` and
``from_pretrained`` need a ``save_pretrained`` folder with the processor. This builds the run's model from
its training config, loads the checkpoint's weights (strictly) and writes both:

    python scripts/export_checkpoint.py examples/configs/default_model.yaml \
        runs/default_model/checkpoints/step_00000500 runs/default_model/export/step_00000500
    python scripts/export_checkpoint.py examples/configs/default_model.yaml latest runs/default_model/export/latest

``latest`` picks the newest complete checkpoint of the config's ``output_dir``. ``--no-token-propagation``
writes ``propagate_temporal_token: false`` into the exported config: at inference every frame then starts
from the learned temporal token (the default model shipped so up to stage 4, docs/default_model.md §5).
``--temporal-token-horizon H`` writes ``temporal_token_horizon: H``: the session carries the token but
restarts it every H frames (stage 5, docs/default_model.md §11). ``--template-refresh-interval K`` writes
``template_refresh_interval: K``: the session chooses templates every K frames (docs/tracking.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from safetensors.torch import load_file

from odtrack_hf import ODTrackProcessor
from odtrack_hf.conversion import load_state_dict_strict
from odtrack_hf.training.arguments import TrainingConfig
from odtrack_hf.training.loop import build_model, list_checkpoints


def export_checkpoint(
    config_path: str | Path,
    checkpoint: str | Path,
    out: str | Path,
    propagate_temporal_token: bool | None = None,
    temporal_token_horizon: int | None = None,
    template_refresh_interval: int | None = None,
) -> Path:
    """Write ``out`` (model + processor) from ``checkpoint`` (a ``step_<n>`` folder or ``"latest"``).

    ``propagate_temporal_token`` overrides the training config's value in the exported config (``None``
    keeps it); ``temporal_token_horizon`` sets the exported config's token restart period and
    ``template_refresh_interval`` its template choice period (``None`` keeps the training config's).
    Returns the checkpoint folder that was exported.
    """
    config = TrainingConfig.from_file(config_path)
    if str(checkpoint) == "latest":
        found = list_checkpoints(config.output_dir)
        if not found:
            raise FileNotFoundError(f"{config.output_dir} has no checkpoint yet.")
        checkpoint = found[-1]
    checkpoint = Path(checkpoint)
    model = build_model(config)
    load_state_dict_strict(model, load_file(checkpoint / "model.safetensors"), f"checkpoint {checkpoint}")
    if propagate_temporal_token is not None:
        model.config.propagate_temporal_token = propagate_temporal_token
    if temporal_token_horizon is not None:
        model.config.temporal_token_horizon = temporal_token_horizon
    if template_refresh_interval is not None:
        model.config.template_refresh_interval = template_refresh_interval
        model.config.check_architecture()  # rejects an interval below 1
    model.save_pretrained(out)
    cfg = model.config
    ODTrackProcessor.from_model_config(cfg).save_pretrained(out)
    return checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="the run's training config")
    parser.add_argument("checkpoint", help="checkpoints/step_<n> folder, or 'latest'")
    parser.add_argument("out", help="folder to write")
    parser.add_argument(
        "--no-token-propagation", action="store_true",
        help="export with propagate_temporal_token: false (every frame starts from the learned token)",
    )
    parser.add_argument(
        "--temporal-token-horizon", type=int, metavar="H",
        help="export with temporal_token_horizon: H (the session restarts the carried token every H frames)",
    )
    parser.add_argument(
        "--template-refresh-interval", type=int, metavar="K",
        help="export with template_refresh_interval: K (the session chooses templates every K frames)",
    )
    args = parser.parse_args()
    propagate = False if args.no_token_propagation else None
    exported = export_checkpoint(
        args.config, args.checkpoint, args.out, propagate, args.temporal_token_horizon, args.template_refresh_interval
    )
    print(f"{exported} -> {args.out}")


if __name__ == "__main__":
    main()
