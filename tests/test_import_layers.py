"""The import contracts of pyproject.toml ([tool.importlinter]) hold, and they catch an upward import."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from script_helpers import REPO

LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def lint_imports(cwd: Path, source_root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` with the repository's contracts on the package under ``source_root``."""
    env = dict(os.environ, PYTHONPATH=str(source_root))
    return subprocess.run(
        [sys.executable, "-c", LINT_IMPORTS, "--no-cache", str(REPO / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_package_keeps_its_import_contracts(tmp_path):
    result = lint_imports(tmp_path, REPO / "src")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " kept, 0 broken." in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    # a copy of the package's sources (not its model files) where the processor imports the session
    package = tmp_path / "src" / "odtrack_hf"
    ignore = shutil.ignore_patterns("default_model", "__pycache__")
    shutil.copytree(REPO / "src" / "odtrack_hf", package, ignore=ignore)
    processing = package / "processing_odtrack.py"
    processing.write_text(processing.read_text() + "\nfrom .session_odtrack import ODTrackInferenceSession  # noqa\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode == 1
    assert " kept, 1 broken." in result.stdout
    assert "- odtrack_hf.processing_odtrack -> odtrack_hf.session_odtrack" in result.stdout
