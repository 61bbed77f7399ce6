"""Every ``odtrack`` command in the README and the quick start is accepted by the command line as written
(options and sub-commands exist), and the files they name from the repository exist."""

import re
import shlex
from pathlib import Path

import pytest

from odtrack_hf.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", REPO / "docs" / "quickstart.md"]


def documented_commands():
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    words = shlex.split(part, comments=True)
                    if words and words[0].endswith("odtrack"):
                        yield pytest.param(words[1:], id=f"{page.name}: {' '.join(words[1:3])}")


@pytest.mark.parametrize("argv", list(documented_commands()))
def test_documented_command_parses(argv):
    args = build_parser().parse_args(argv)
    assert callable(args.func)
    for word in argv:
        if word.startswith(("examples/", "src/")):
            assert (REPO / word).exists(), f"{word} is named in the docs but missing"


def test_the_tiny_config_reads_the_folder_the_docs_generate():
    import yaml

    config = yaml.safe_load((REPO / "examples" / "configs" / "tiny_cpu.yaml").read_text())
    generated = [argv for argv in (p.values[0] for p in documented_commands()) if argv[0] == "generate-data"]
    roots = {f"{argv[argv.index('--out') + 1]}/{argv[argv.index('--split') + 1]}" for argv in generated}
    assert config["datasets"][0]["root"] in roots
