"""Track objects in a live stream of frames with the inference session, one frame at a time.

    python examples/track_stream.py [--model MODEL_DIR] [--frames 60]

A "camera" here is a generator that renders frames on demand (a textured square moving over a noise
background), standing in for any live source: the session never needs the whole video. A second
object joins on frame 10 and the first one leaves the session on frame 40, as a live application would
do. Boxes are (x, y, w, h) pixels.
"""

import argparse
from collections.abc import Iterator

import numpy as np
from transformers import AutoModel, AutoProcessor

import odtrack_hf
from odtrack_hf import ODTrackInferenceSession


def camera(num_frames: int, height: int = 240, width: int = 320) -> Iterator[np.ndarray]:
    """Yield HWC uint8 RGB frames of a 40x30 chequered square moving right and down."""
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    square = np.kron((np.indices((6, 8)).sum(0) % 2) * 255, np.ones((5, 5)))[..., None].repeat(3, 2).astype(np.uint8)
    for t in range(num_frames):
        frame = background.copy()
        x, y = 40 + 3 * t % (width - 80), 60 + t % (height - 100)
        frame[y : y + 30, x : x + 40] = square
        yield frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(odtrack_hf.DEFAULT_MODEL_DIR), help="a save_pretrained folder")
    parser.add_argument("--frames", type=int, default=60)
    args = parser.parse_args()

    model = AutoModel.from_pretrained(args.model).eval()
    processor = AutoProcessor.from_pretrained(args.model)
    session = ODTrackInferenceSession(model, processor, max_templates=16)  # bounded memory for endless streams
    for index, frame in enumerate(camera(args.frames)):
        if index == 0:
            result = session.track(frame, new_boxes=[[40, 60, 40, 30]])  # object 1: the square
        elif index == 10:
            result = session.track(frame, new_boxes=[[200, 150, 50, 50]])  # object 2 joins
        else:
            if index == 40:
                session.remove_objects([1])  # object 1 leaves the session
            result = session.track(frame)
        boxes = "  ".join(
            f"#{object_id} ({', '.join(f'{v:.1f}' for v in box.tolist())}) score {score:.2f}"
            for object_id, box, score in zip(result.object_ids, result.boxes, result.scores)
        )
        print(f"frame {result.frame_idx}: {boxes}")


if __name__ == "__main__":
    main()
