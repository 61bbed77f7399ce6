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
