"""benchmarks/paired_bootstrap.py: per-sequence scores from metrics files, averaged over runs, and the interval."""

import json
import subprocess
import sys

import numpy as np
import pytest
from script_helpers import REPO, load_script

bootstrap = load_script("benchmarks/paired_bootstrap.py")


def write_metrics(path, scores: dict[str, float]) -> str:
    path.write_text(json.dumps({"per_sequence": {name: {"auc": value} for name, value in scores.items()}}))
    return str(path)


def test_runs_of_one_tracker_are_averaged_per_sequence(tmp_path):
    first = write_metrics(tmp_path / "f32.json", {"a": 10.0, "b": 50.0})
    second = write_metrics(tmp_path / "bf16.json", {"a": 30.0, "b": 40.0})
    assert bootstrap.mean_scores([first, second], "auc") == {"a": 20.0, "b": 45.0}
    assert bootstrap.mean_scores([first], "auc") == {"a": 10.0, "b": 50.0}


def test_runs_of_different_sets_are_refused(tmp_path):
    first = write_metrics(tmp_path / "one.json", {"a": 10.0, "b": 50.0})
    other = write_metrics(tmp_path / "other.json", {"a": 10.0, "c": 50.0})
    with pytest.raises(SystemExit, match="scored different sequences"):
        bootstrap.mean_scores([first, other], "auc")


def test_the_interval_holds_the_mean_and_shrinks_to_it_for_a_constant_difference():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 100, 40)
    mean, (low, high) = bootstrap.paired_bootstrap(a + 3.0, a, resamples=500)
    assert mean == pytest.approx(3.0) and low == pytest.approx(3.0) and high == pytest.approx(3.0)
    b = a + rng.normal(0, 10, 40)
    mean, (low, high) = bootstrap.paired_bootstrap(a, b, resamples=2000)
    assert low < mean < high and mean == pytest.approx((a - b).mean())


def test_the_command_line_prints_the_averaged_difference(tmp_path):
    a1 = write_metrics(tmp_path / "a1.json", {"s1": 40.0, "s2": 60.0})
    a2 = write_metrics(tmp_path / "a2.json", {"s1": 20.0, "s2": 60.0})
    b1 = write_metrics(tmp_path / "b1.json", {"s1": 30.0, "s2": 50.0})
    result = subprocess.run(
        [sys.executable, str(REPO / "benchmarks/paired_bootstrap.py"), a1, b1, "--also-a", a2, "--resamples", "100"],
        capture_output=True, text=True, check=True,
    )
    # A per sequence: 30 and 60; B: 30 and 50
    assert "A 45.00, B 40.00: A - B = +5.00" in result.stdout
    assert f"A = {a1} + {a2}" in result.stdout and "A ahead in 1, behind in 0, level in 1" in result.stdout
