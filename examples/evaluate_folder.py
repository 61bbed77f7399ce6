"""Evaluate a tracker on a benchmark folder and print its scores.

    python examples/evaluate_folder.py --root data --split heldout --output-dir runs/heldout [--model MODEL_DIR]

The folder holds one GOT-10k-style sequence per sub-folder (frames, groundtruth.txt, optional
absence.label), as `odtrack generate-data` writes. With --make-data N, N small held-out sequences are
generated first (from the photographs that ship with scikit-image; needs `pip install "odtrack-hf[data]"`).
Running again with the same --output-dir resumes: finished sequences are skipped.
"""

import argparse

from odtrack_hf.evaluation.runner import EvalConfig, evaluate_benchmark, format_summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="benchmark folder")
    parser.add_argument("--split", help="sub-folder of --root holding the sequences, e.g. heldout")
    parser.add_argument("--output-dir", required=True)
    parser.add_argument("--model", help="a save_pretrained folder or Hub id (default: the package's model)")
    parser.add_argument("--make-data", type=int, metavar="N", help="first generate N tiny held-out sequences")
    args = parser.parse_args()

    if args.make_data:
        from odtrack_hf.data.generation import GenerationConfig, generate_split

        tiny = GenerationConfig(min_frames=12, max_frames=12, min_size=(128, 96), max_size=(128, 96))
        generate_split(args.root, args.split or "heldout", args.make_data, seed=0, config=tiny)
    config = EvalConfig(
        dataset="folder", root=args.root, split=args.split, output_dir=args.output_dir, model=args.model, device="cpu"
    )
    summary = evaluate_benchmark(config)
    print(format_summary(summary, args.output_dir))
    metrics = summary["metrics"]
    print({key: round(metrics[key], 2) for key in ("auc", "precision", "norm_precision", "ao", "sr50", "sr75")})


if __name__ == "__main__":
    main()
