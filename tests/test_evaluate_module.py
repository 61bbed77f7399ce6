"""The `evaluate` metric module: loads offline by path and returns exactly what evaluate_tracking returns."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from odtrack_hf.evaluation import METRIC_MODULE_PATH, SCORE_KEYS

MODULE_FILE = Path(METRIC_MODULE_PATH) / "odtrack_success.py"

# Runs in a fresh interpreter: HF_HOME and HF_HUB_OFFLINE are read when the HF libraries are imported, and
# evaluate copies the module on its own into $HF_HOME/modules.
CHILD = r"""
import json, sys
import evaluate
import numpy as np
from odtrack_hf.evaluation import METRIC_MODULE_PATH, SCORE_KEYS, evaluate_tracking

rng = np.random.default_rng(0)
names = ["car", "bird"]
ground_truth = [np.abs(rng.normal(50, 20, (n, 4))) + 1 for n in (12, 7)]
predictions = [np.abs(gt + rng.normal(0, 5, gt.shape)) for gt in ground_truth]
visible = [rng.uniform(size=len(gt)) > 0.2 for gt in ground_truth]
out = {"modules_cache": evaluate.config.HF_MODULES_CACHE.as_posix()}

def scores(result):
    return {key: result[key] for key in SCORE_KEYS}

metric = evaluate.load(METRIC_MODULE_PATH)
out["by_folder"] = scores(metric.compute(
    predictions=[p.tolist() for p in predictions], references=[g.tolist() for g in ground_truth],
    visible=[v.tolist() for v in visible], sequence_names=names, dataset="lasot"))
out["direct"] = scores(evaluate_tracking(
    dict(zip(names, predictions)), dict(zip(names, ground_truth)), dict(zip(names, visible)), dataset="lasot"))

by_file = evaluate.load(METRIC_MODULE_PATH + "/odtrack_success.py")
for prediction, gt in zip(predictions, ground_truth):
    by_file.add_batch(predictions=[prediction.tolist()], references=[gt.tolist()])
result = by_file.compute(convention="got10k")
out["batched_got10k"] = scores(result)
out["batched_curve_length"] = len(result["success_curve"])
out["direct_got10k"] = scores(evaluate_tracking(
    {"0": predictions[0], "1": predictions[1]}, {"0": ground_truth[0], "1": ground_truth[1]}, convention="got10k"))

errors = {}
bad_predictions = {"short_box": [[1.0, 2.0, 3.0]], "nan": [[1.0, 2.0, 3.0, 4.0], [1.0, float("nan"), 3.0, 4.0]]}
for label, prediction in bad_predictions.items():
    try:
        metric.compute(predictions=[prediction], references=[[[1.0, 2.0, 3.0, 4.0]] * len(prediction)],
                       sequence_names=["car"])
    except ValueError as error:
        errors[label] = str(error)
out["errors"] = errors
json.dump(out, sys.stdout)
"""


def test_metric_module_loads_offline_and_matches_evaluate_tracking(tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    child = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])

    assert out["modules_cache"].startswith((tmp_path / "hf").as_posix())
    assert set(out["by_folder"]) == set(SCORE_KEYS)
    assert out["by_folder"] == out["direct"]
    assert out["batched_got10k"] == out["direct_got10k"]
    assert out["batched_curve_length"] == 21
    assert "don't match the expected format" in out["errors"]["short_box"]
    assert "sequence 'car', line 2: NaN" in out["errors"]["nan"]


def test_metric_module_imports_the_package_absolutely():
    # evaluate imports the copied file on its own: a relative import or a second copy of the maths would break
    # or drift. The module may only import odtrack_hf absolutely and define no functions of its own.
    tree = ast.parse(MODULE_FILE.read_text())
    imports = [node for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert all(node.level == 0 for node in imports)
    assert "odtrack_hf.evaluation.metrics" in {node.module for node in imports}
    assert not [node for node in tree.body if isinstance(node, ast.FunctionDef)]
