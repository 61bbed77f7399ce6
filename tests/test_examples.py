"""The scripts in examples/ run end to end (smoke tests on tiny data, each in a fresh process)."""

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_convert_official_checkpoint_example(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "convert_official_checkpoint.py"), "--output-dir", str(tmp_path / "out")],
        cwd=tmp_path,
        env=dict(os.environ, HF_HOME=str(tmp_path / "hf_home")),  # offline, from conftest
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK: the saved folder reproduces the converted model exactly" in result.stdout
    files = {path.name for path in (tmp_path / "out").iterdir()}
    assert {"config.json", "model.safetensors", "processor_config.json", "pipeline_odtrack.py"} <= files


def _run(script: str, *args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        cwd=cwd,
        env=dict(os.environ, HF_HOME=str(cwd / "hf_home"), OMP_NUM_THREADS="1"),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_track_video_example(tmp_path):
    import numpy as np
    from tracking_helpers import write_video

    frames = np.zeros((6, 96, 128, 3), dtype=np.uint8)
    for t, frame in enumerate(frames):
        frame[30:50, 20 + 4 * t : 44 + 4 * t] = 255
    video = write_video(tmp_path / "clip.mp4", frames)
    result = _run("track_video.py", str(video), "--box", "20,30,44,50", "--max-frames", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0] == "frame 0: #1 score 1.00 box 20.0,30.0,44.0,50.0"


def test_track_stream_example(tmp_path):
    result = _run("track_stream.py", "--frames", "12", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 12
    assert lines[0].startswith("frame 0: #1 (40.0, 60.0, 40.0, 30.0) score 1.00")
    assert "#2 (200.0, 150.0, 50.0, 50.0) score 1.00" in lines[10]  # the object that joins on frame 10


def test_train_example(tmp_path):
    from odtrack_hf.data.generation import GenerationConfig, generate_split

    generate_split(tmp_path / "data", "train", 3, seed=0, config=GenerationConfig(16, 16, (64, 48), (64, 48)))
    result = _run(
        "train.py",
        str(EXAMPLES / "configs" / "tiny_cpu.yaml"),
        "--videos",
        str(tmp_path / "data" / "train"),
        "--output-dir",
        str(tmp_path / "run"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "model in" in result.stdout
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()


def test_evaluate_folder_example(tmp_path):
    args = ["--root", str(tmp_path / "data"), "--split", "heldout", "--output-dir", str(tmp_path / "out")]
    result = _run("evaluate_folder.py", *args, "--make-data", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 sequences tracked" in result.stdout and "'auc':" in result.stdout
    assert (tmp_path / "out" / "metrics.json").is_file()
    again = _run("evaluate_folder.py", *args, cwd=tmp_path)  # resumes: nothing left to track
    assert again.returncode == 0 and "0 sequences tracked, 2 already finished" in again.stdout
