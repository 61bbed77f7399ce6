"""Track objects through a video file with pipeline("object-tracking").

    python examples/track_video.py VIDEO --box 62,16,112,92 [--box ...] [--model MODEL_DIR] [--max-frames N]

Boxes are [xmin, ymin, xmax, ymax] in pixels of the first frame. Without --model the package's default
checkpoint is used. The video is decoded with PyAV and streamed: frames are never all in memory.
"""

import argparse

import odtrack_hf  # noqa: F401  (registers the "object-tracking" pipeline)
from transformers import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("--box", action="append", required=True, help="xmin,ymin,xmax,ymax (repeat per object)")
    parser.add_argument("--model", help="a save_pretrained folder or Hub id (default: the package's model)")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    args = parser.parse_args()

    boxes = [[float(v) for v in box.split(",")] for box in args.box]
    tracker = pipeline("object-tracking", model=args.model, device="cpu")
    for index, frame in enumerate(tracker.stream(args.video, boxes=boxes)):
        if args.max_frames is not None and index >= args.max_frames:
            break
        summary = "  ".join(
            f"#{obj['object_id']} score {obj['score']:.2f} box "
            + ",".join(f"{obj['box'][k]:.1f}" for k in ("xmin", "ymin", "xmax", "ymax"))
            for obj in frame
        )
        print(f"frame {index}: {summary}")


if __name__ == "__main__":
    main()
