"""Write the web demo as a Hugging Face Space folder that runs as it is once uploaded.

A Gradio Space installs ``requirements.txt`` before the rest of its files are copied into the image (the
builder mounts that one file), so a requirement cannot name a wheel or folder of the Space: the folder
carries odtrack-hf itself, and ``requirements.txt`` names only what the package index serves. The folder
holds:

- ``app.py`` and ``README.md`` (the Space's front matter: ``sdk``, ``sdk_version``, ``app_file``,
  ``python_version``) from ``demo/``;
- ``odtrack_hf/`` and its ``.dist-info``: the wheel built from this checkout, unpacked as an installer
  would (a pure-Python wheel's root is a ``sys.path`` entry). The Space runs ``python app.py``, whose
  folder is first on ``sys.path``, so the page imports this copy, shipped model included;
- ``requirements.txt``: odtrack-hf's dependencies and those of its ``demo`` and ``data`` extras, with gradio
  pinned to the front matter's ``sdk_version`` (the version the Space's builder installs besides).

Run from the repository root; then upload the folder (``docs/demo.md``)::

    python scripts/export_space.py ../odtrack-space
    hf upload USER/odtrack ../odtrack-space . --repo-type space --delete "*"

The folder is written in a temporary folder beside it and renamed into place; an existing folder that is
not empty is replaced only with ``--force``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[1]
SPACE_FILES = ("app.py", "README.md")  # copied from demo/
EXTRAS = ("demo", "data")  # the page, and the clips it offers
BUILD_INPUTS = ("pyproject.toml", "README.md", "LICENSE", "src")


def front_matter(readme: Path) -> dict:
    """The YAML block between the ``---`` lines that open a Space's ``README.md``."""
    text = readme.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{readme} does not open with a '---' front matter block.")
    return yaml.safe_load(text[4 : text.index("\n---", 4)])


def space_requirements(requires: list[str], extras: tuple[str, ...], gradio_version: str) -> list[str]:
    """``requirements.txt`` lines from a distribution's ``Requires-Dist`` entries: those without a marker
    and those of ``extras`` (marker dropped), gradio pinned to ``gradio_version``.

    Raises ``ValueError`` when ``gradio_version`` is outside the range the package asks for.
    """
    lines = []
    for entry in requires:
        requirement = Requirement(entry)
        if requirement.marker is not None:
            if not any(requirement.marker.evaluate({"extra": extra}) for extra in extras):
                continue
            requirement.marker = None
        if requirement.name == "gradio":
            if gradio_version not in requirement.specifier:
                raise ValueError(f"sdk_version {gradio_version} is outside odtrack-hf's gradio{requirement.specifier}.")
            requirement.specifier = SpecifierSet(f"=={gradio_version}")
        lines.append(str(requirement))
    return lines


def build_wheel(scratch: Path) -> Path:
    """Build odtrack-hf's wheel from a copy of the checkout in ``scratch``; the wheel's path.

    A copy, because setuptools builds in the source tree and puts whatever its ``build/`` folder still
    holds from an earlier build into the wheel. The installed setuptools builds it (no isolated build
    environment to download).
    """
    source = scratch / "source"
    source.mkdir()
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = scratch / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, source],
        check=True,
    )
    (wheel,) = wheels.glob("*.whl")
    return wheel


def export_space(target: Path, force: bool = False) -> Path:
    """Write the Space folder at ``target`` (see the module docstring); its path.

    Raises ``FileExistsError`` when ``target`` is a folder that is not empty and ``force`` is false, or
    is not a folder.
    """
    target = target.resolve()
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"{target} exists and is not a folder.")
    if target.exists() and any(target.iterdir()) and not force:
        raise FileExistsError(f"{target} is not empty; pass --force to replace it.")
    demo = REPO / "demo"
    sdk_version = str(front_matter(demo / "README.md")["sdk_version"])
    target.parent.mkdir(parents=True, exist_ok=True)
    # the same file system as target, so the final rename is atomic
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}-") as scratch:
        scratch = Path(scratch)
        space = scratch / "space"
        with zipfile.ZipFile(build_wheel(scratch)) as wheel:
            wheel.extractall(space)
        (dist_info,) = space.glob("*.dist-info")
        requires = metadata.PathDistribution(dist_info).requires or []
        lines = space_requirements(requires, EXTRAS, sdk_version)
        (space / "requirements.txt").write_text(
            "# Written by scripts/export_space.py: odtrack-hf's dependencies and those of its "
            f"{' and '.join(EXTRAS)} extras.\n# odtrack-hf itself is the odtrack_hf folder beside app.py.\n"
            + "".join(f"{line}\n" for line in lines),
            encoding="utf-8",
        )
        for name in SPACE_FILES:
            shutil.copy2(demo / name, space / name)
        if target.exists():
            target.rename(scratch / "replaced")  # removed with scratch
        space.rename(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", type=Path, help="folder to write the Space into (new or empty)")
    parser.add_argument("--force", action="store_true", help="replace the folder if it is not empty")
    args = parser.parse_args(argv)
    try:
        print(f"wrote the Space to {export_space(args.target, args.force)}")
    except (FileExistsError, ValueError) as error:
        print(f"export_space: {error}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
