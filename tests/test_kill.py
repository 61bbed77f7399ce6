"""Nothing half-written is left under a final name when a run is killed (SIGKILL), and a killed
``odtrack eval`` resumes on its rerun."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from eval_helpers import TINY_SEQUENCES
from tracking_helpers import fixture_clip, write_video

from odtrack_hf.cli import main
from odtrack_hf.data.generation import generate_split
from odtrack_hf.evaluation.metrics import read_results


def start(*argv) -> subprocess.Popen:
    """``odtrack ARGV`` in a subprocess (with this checkout's ``src`` first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), *sys.path])}
    command = [sys.executable, "-m", "odtrack_hf.cli", *(str(a) for a in argv)]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_when(process: subprocess.Popen, ready, timeout: float = 300) -> None:
    """SIGKILL ``process`` as soon as ``ready()`` is true (polled every 5 ms)."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, f"the run ended before it could be killed: {process.stderr.read()!r}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    process.stderr.close()


def has_written_file(folder: Path) -> bool:
    """Whether ``folder`` holds a non-empty file; a file removed between listing and ``stat`` (the
    writability probe the CLI creates and deletes at start) does not count."""
    for path in folder.iterdir() if folder.is_dir() else ():
        try:
            if path.stat().st_size > 0:
                return True
        except FileNotFoundError:
            continue
    return False


def test_killed_track_leaves_no_file_under_the_final_names(tmp_path):
    frames, _, _ = fixture_clip()
    video = write_video(tmp_path / "long.mp4", np.concatenate([frames, frames[::-1]] * 15))  # 360 frames
    out = tmp_path / "out"
    process = start("track", video, "--box", "30,44,24,20", "--results", out / "boxes.txt", "--output",
                    out / "tracked.mp4", "--device", "cpu")  # fmt: skip
    # the annotated video is being encoded: the run is mid-video
    kill_when(process, lambda: has_written_file(out))
    assert not (out / "boxes.txt").exists() and not (out / "tracked.mp4").exists()
    assert all(p.name.startswith(".") for p in out.iterdir())  # only hidden temporary names


def test_killed_eval_resumes_on_rerun(capsys, tmp_path):
    generate_split(tmp_path / "data", "heldout", 8, seed=0, config=TINY_SEQUENCES)
    output = tmp_path / "out"
    argv = ["eval", "--dataset", "folder", "--root", tmp_path / "data" / "heldout", "--device", "cpu",
            "--output-dir", output]  # fmt: skip
    results = output / "results"
    process = start(*argv)
    kill_when(process, lambda: results.is_dir() and any(results.glob("*[0-9].txt")))
    finished = sorted(results.glob("*[0-9].txt"))
    assert 1 <= len(finished) < 8 and not (output / "metrics.json").exists()
    for path in finished:  # every result under its final name is complete
        assert read_results(path).shape == (10, 4)

    assert main([str(a) for a in argv]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{8 - len(finished)} sequences tracked, {len(finished)} already finished"), out
    assert len(list(results.glob("*[0-9].txt"))) == 8 and (output / "metrics.json").is_file()
