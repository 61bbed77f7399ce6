"""Train ODTrack from Python: load a training config, adjust it in code, train.

    python examples/train.py examples/configs/tiny_cpu.yaml --videos data/my_videos --output-dir runs/tiny

Several processes: ``torchrun --nproc_per_node 4 examples/train.py ...`` or
``accelerate launch --config_file examples/accelerate/multi_gpu.yaml examples/train.py ...``.
"""

import argparse

from accelerate import PartialState

from odtrack_hf.training import DatasetSpec, TrainingConfig, train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", help="training config (.yaml or .json)")
    parser.add_argument("--videos", help="train on this folder of your own videos instead of the config's datasets")
    parser.add_argument("--output-dir", help="where checkpoints, logs and the final model go")
    args = parser.parse_args()

    config = TrainingConfig.from_file(args.config)
    if args.videos:
        # <videos>/<sequence>/{frames, groundtruth.txt}: see docs/data.md
        config.datasets = [DatasetSpec(type="folder", root=args.videos)]
    if args.output_dir:
        config.output_dir = args.output_dir
    result = train(config)  # every process runs this; they train one model together
    if PartialState().is_main_process:
        state = result.state
        print(
            f"step {state.step}: {state.skipped_steps} skipped updates, {state.unreadable_frames} clips with "
            f"unreadable frames; model in {result.output_dir / 'model'}"
        )


if __name__ == "__main__":
    main()
