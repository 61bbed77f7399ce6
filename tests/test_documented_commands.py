"""Every ``odtrack`` command in the README and the quick start is accepted by the command line as written
(options and sub-commands exist), and the files they name from the repository exist; every documented
``pipeline`` call with a model folder names that folder when it is missing, offline."""

import json
import os
import re
import shlex
import subprocess
import sys
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


def documented_pipeline_calls() -> list[str]:
    """The ``tracker = pipeline(..., model=...)`` lines of the README, the docs and the model cards, except
    those with a Hub id (``<namespace>/...``), which cannot be checked offline."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "model_cards").glob("*.md"))]
    return [
        line.strip()
        for page in pages
        for line in page.read_text().splitlines()
        if re.match(r"\s*tracker = pipeline\(.*\bmodel=", line) and "<namespace>" not in line
    ]


def test_documented_pipeline_calls_name_a_missing_folder_offline(tmp_path):
    calls = documented_pipeline_calls()
    assert len(calls) >= 4  # README, quick start, tracking.md, the model cards
    script = (
        "import json, sys\nimport odtrack_hf\nfrom transformers import pipeline\n"
        "for line in json.loads(sys.argv[1]):\n"
        "    try:\n        exec(line)\n        print(json.dumps('loaded'))\n"
        "    except Exception as error:\n        print(json.dumps(f'{type(error).__name__}: {error}'))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join([str(REPO / "src"), *sys.path])}
    result = subprocess.run(  # in an empty folder, offline: none of the documented folders exists
        [sys.executable, "-c", script, json.dumps(calls)], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(messages) == len(calls)
    for call, message in zip(calls, messages):
        folder = re.search(r'model=(?:odtrack_hf\.model_folder\()?"([^"]+)"', call).group(1)
        assert message.startswith(f"FileNotFoundError: no model folder {folder!r} here"), (call, message)
        assert f"odtrack convert ODTrack_ep0300.pth.tar {folder}" in message, (call, message)
