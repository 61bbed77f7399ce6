"""benchmarks/opencv_baselines.py on a tiny folder: result files, resume, scores."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from script_helpers import load_script

from odtrack_hf.data.sources import FolderSource


@pytest.fixture(scope="module")
def baselines():
    return load_script("benchmarks/opencv_baselines.py")


def _write_sequence(folder: Path, num_frames: int = 6) -> np.ndarray:
    """A textured square moving right by 3 px per frame over a noise background."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    background = rng.integers(0, 80, (96, 128, 3), dtype=np.uint8)
    patch = rng.integers(150, 256, (20, 20, 3), dtype=np.uint8)
    boxes = []
    for i in range(num_frames):
        frame, x = background.copy(), 30 + 3 * i
        frame[40:60, x : x + 20] = patch
        cv2.imwrite(str(folder / f"{i + 1:08d}.png"), frame)
        boxes.append([x, 40, 20, 20])
    np.savetxt(folder / "groundtruth.txt", boxes, fmt="%d", delimiter=",")
    return np.asarray(boxes, dtype=np.float64)


def test_mil_results_resume_and_scores(baselines, tmp_path):
    boxes = _write_sequence(tmp_path / "data" / "seq_a")
    source, out = FolderSource(tmp_path / "data"), tmp_path / "out"
    metrics = baselines.run_tracker("MIL", source, out)

    result = np.loadtxt(out / "MIL" / "results" / "seq_a.txt", ndmin=2)
    assert result.shape == (6, 4)
    np.testing.assert_array_equal(result[0], boxes[0])  # frame 1 = the initial box
    assert len(np.loadtxt(out / "MIL" / "results" / "seq_a_time.txt")) == 6
    assert set(baselines.SCORES) <= set(metrics) and metrics["fps"] > 0
    assert metrics["auc"] > 50  # an easy translation

    (out / "MIL" / "results" / "seq_a.txt").write_text("0\t0\t1\t1\n" * 6)  # a finished file is not redone
    assert baselines.run_tracker("MIL", source, out)["auc"] < metrics["auc"]
    table = baselines.markdown_table({"MIL": metrics}, 1, 6)
    assert f"| MIL | {metrics['auc']:.1f} |" in table
    assert json.loads(json.dumps(metrics))["per_sequence"]["seq_a"]["auc"] == metrics["auc"]  # metrics.json-ready
