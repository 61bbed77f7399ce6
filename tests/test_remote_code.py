"""A saved folder is self-contained: it loads with trust_remote_code in a process without odtrack_hf."""

import json
import os
import subprocess
import sys

import torch
from safetensors.torch import save_file

from odtrack_hf import ODTrackModel
from conftest import tiny_config

LOADER = """
import sys, torch
from safetensors.torch import load_file
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
assert "odtrack_hf" not in sys.modules, "the installed package must not be imported"
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
io = load_file(sys.argv[2])
with torch.no_grad():
    out = model(io["search"], io["templates"])
torch.testing.assert_close(out.pred_boxes, io["pred_boxes"], atol=0, rtol=0)
torch.testing.assert_close(out.last_hidden_state, io["hidden"], atol=0, rtol=0)
print("remote code OK", type(model).__name__)
"""


def test_trust_remote_code_in_a_fresh_process(tmp_path, tiny_inputs):
    search, templates = tiny_inputs
    torch.manual_seed(0)
    model = ODTrackModel(tiny_config()).eval()
    model.save_pretrained(tmp_path / "model")
    files = {p.name for p in (tmp_path / "model").iterdir()}
    assert {"configuration_odtrack.py", "modeling_odtrack.py", "box_decoding.py", "config.json", "model.safetensors"} <= files
    auto_map = json.loads((tmp_path / "model" / "config.json").read_text())["auto_map"]
    assert auto_map == {
        "AutoConfig": "configuration_odtrack.ODTrackConfig",
        "AutoModel": "modeling_odtrack.ODTrackModel",
    }
    with torch.no_grad():
        out = model(search, templates)
    save_file(
        {"search": search, "templates": templates, "pred_boxes": out.pred_boxes, "hidden": out.last_hidden_state},
        tmp_path / "io.safetensors",
    )
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf_home"), HF_HUB_OFFLINE="1")
    script = tmp_path / "load.py"
    script.write_text(LOADER)
    # run from tmp_path so that the src/ checkout is not importable by accident
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "model"), str(tmp_path / "io.safetensors")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "remote code OK ODTrackModel" in result.stdout
