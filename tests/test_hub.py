"""Sharing on the Hub, end to end against a fake Hub on loopback (``fake_hub.FakeHub``).

A tiny tracker is pushed with ``push_to_hub`` (model, processor, and the pipeline to a second repo),
downloaded by hub id into a fresh cache as remote code, then loaded again offline from that cache,
first as remote code and then with ``odtrack_hf`` installed; every load reproduces the original
model's outputs and the pipeline's boxes bit for bit.

``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` are read when huggingface_hub is imported, so everything that
talks to the fake Hub runs in subprocesses; this process stays offline like the rest of the suite.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from fake_hub import FakeHub, card_metadata
from safetensors.torch import save_file
from transformers import pipeline

from odtrack_hf import ODTrackModel, ODTrackProcessor

REPO_ID = "acme/odtrack-tiny"
PIPELINE_REPO_ID = "acme/odtrack-tiny-pipeline"
MODEL_FILES = {"config.json", "model.safetensors", "configuration_odtrack.py", "modeling_odtrack.py", "box_decoding.py"}
PROCESSOR_FILES = {"processor_config.json", "processing_odtrack.py", "image_processing_odtrack.py"}
# the session comes with the pipeline, which imports it (the processor does not know sessions)
PIPELINE_FILES = {"pipeline_odtrack.py", "session_odtrack.py", "video_io.py"}

PUSH = """
import sys
from transformers import AutoModel, AutoProcessor, pipeline
import odtrack_hf  # noqa: F401  (registers the classes whose code push_to_hub uploads)

source, repo_id, pipeline_repo_id = sys.argv[1:4]
model = AutoModel.from_pretrained(source)
processor = AutoProcessor.from_pretrained(source)
model.push_to_hub(repo_id, tags=["odtrack"])
processor.push_to_hub(repo_id)
pipeline("object-tracking", model=model, processor=processor, device="cpu").push_to_hub(pipeline_repo_id)
"""

# argv: repo id, pipeline repo id, reference tensors, reference pipeline results, then "installed" to
# load a second time after importing odtrack_hf
LOAD = """
import json, sys
import torch
from safetensors.torch import load_file
from transformers import AutoModel, AutoProcessor, pipeline

repo_id, pipeline_repo_id, io_path, expected_path = sys.argv[1:5]
io = load_file(io_path)
with open(expected_path) as file:
    expected = json.load(file)


def check(module_prefix):
    model = AutoModel.from_pretrained(repo_id, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True)
    for obj in (model, processor):
        assert type(obj).__module__.startswith(module_prefix), type(obj).__module__
    assert (processor.template_size, processor.search_size) == tuple(expected["crop_sizes"])
    with torch.no_grad():
        out = model(io["search"], io["templates"])
    assert torch.equal(out.pred_boxes, io["pred_boxes"]) and torch.equal(out.last_hidden_state, io["hidden"])
    tracker = pipeline(model=pipeline_repo_id, trust_remote_code=True, device="cpu")
    # float32 as the reference was made: the remote-code session picks bf16 by itself on a CPU with native bf16
    results = tracker(list(io["frames"].numpy()), boxes=expected["boxes"], dtype=torch.float32)
    assert json.loads(json.dumps(results)) == expected["results"], results


check("transformers_modules.")
assert "odtrack_hf" not in sys.modules, "the remote-code path must not import the installed package"
if sys.argv[5:] == ["installed"]:
    import odtrack_hf  # noqa: F401  (local code beats remote code from here on)

    check("odtrack_hf.")
print("loads OK")
"""

PROTOCOL = """
import os, sys
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

folder = sys.argv[1]
api = HfApi()
assert api.create_repo("acme/files").repo_id == "acme/files"
assert api.create_repo("acme/files", exist_ok=True).repo_id == "acme/files"
api.upload_folder(repo_id="acme/files", folder_path=folder, commit_message="add files")
assert api.list_repo_files("acme/files") == [".gitattributes", "a.txt", "sub/b.bin"]
info = api.model_info("acme/files")
assert sorted(s.rfilename for s in info.siblings) == [".gitattributes", "a.txt", "sub/b.bin"]
path = hf_hub_download("acme/files", "sub/b.bin")
assert open(path, "rb").read() == open(os.path.join(folder, "sub", "b.bin"), "rb").read()
snapshot = snapshot_download("acme/files")
assert os.path.basename(snapshot) == info.sha and open(os.path.join(snapshot, "a.txt")).read() == "hello"
bad_card = b"---\\n- a list, not a mapping\\n---\\n"
for call, error in (
    (lambda: hf_hub_download("acme/files", "missing.txt"), EntryNotFoundError),
    (lambda: hf_hub_download("acme/nothing", "a.txt"), RepositoryNotFoundError),
    (lambda: hf_hub_download("acme/files", "a.txt", revision="dev"), RevisionNotFoundError),
    (lambda: api.upload_file(path_or_fileobj=bad_card, path_in_repo="README.md", repo_id="acme/files"), ValueError),
):
    try:
        call()
    except error:
        pass
    else:
        raise AssertionError(f"expected {error.__name__}")
api.delete_file("sub/b.bin", repo_id="acme/files")
print("protocol OK", info.sha)
"""


@pytest.fixture
def hub(tmp_path):
    with FakeHub(tmp_path / "hub-storage") as server:
        yield server


def run_client(script: str, args: list[str], hub: FakeHub, hf_home: Path, cwd: Path, offline: bool = False) -> str:
    """Run ``script`` in a fresh interpreter whose huggingface_hub talks to ``hub`` (or is offline)."""
    env = {key: value for key, value in os.environ.items() if key not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(hf_home),
        HF_TOKEN="hf_fake_token",
        NO_PROXY="127.0.0.1,localhost",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
    )
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    result = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=cwd,  # not the checkout: the src/ tree must not be importable by accident
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def test_fake_hub_speaks_the_hub_protocol(hub, tmp_path):
    folder = tmp_path / "upload"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("hello")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 40)
    out = run_client(PROTOCOL, [str(folder)], hub, tmp_path / "home", tmp_path)
    history = hub.history("acme/files")
    messages = [commit.message for commit in history]
    assert messages == ["Delete sub/b.bin with huggingface_hub", "add files", "initial commit"]
    assert out.split()[-1] == history[1].oid  # model_info and snapshot_download saw the "add files" commit
    assert "POST /api/validate-yaml" in hub.requests  # the README with a list as metadata was refused there
    assert set(hub.files("acme/files")) == {".gitattributes", "a.txt"}
    assert hub.files("acme/files", revision=history[1].oid)["sub/b.bin"] == bytes(range(256)) * 40
    assert hub.unhandled == []


def test_push_download_offline_and_remote_code_round_trip(hub, tmp_path):
    config = tiny_config()
    torch.manual_seed(0)
    model = ODTrackModel(config).eval()
    processor = ODTrackProcessor(template_size=config.template_size, search_size=config.search_size)
    model.save_pretrained(tmp_path / "original")
    processor.save_pretrained(tmp_path / "original")

    # reference outputs of the original objects: raw forward and the pipeline on a small noise clip
    generator = torch.Generator().manual_seed(0)
    search = torch.randn(2, 3, 64, 64, generator=generator)
    templates = torch.randn(2, 3, 3, 32, 32, generator=generator)
    with torch.no_grad():
        out = model(search, templates)
    frames = np.random.default_rng(0).integers(0, 256, size=(4, 72, 96, 3), dtype=np.uint8)
    boxes = [[30.0, 20.0, 54.0, 44.0]]
    tracker = pipeline("object-tracking", model=model, processor=processor, device="cpu")
    expected = {
        "boxes": boxes,
        "crop_sizes": [config.template_size, config.search_size],
        "results": json.loads(json.dumps(tracker(list(frames), boxes=boxes, dtype=torch.float32))),
    }
    save_file(
        {
            "search": search,
            "templates": templates,
            "pred_boxes": out.pred_boxes,
            "hidden": out.last_hidden_state,
            "frames": torch.from_numpy(frames),
        },
        tmp_path / "io.safetensors",
    )
    (tmp_path / "expected.json").write_text(json.dumps(expected))
    load_args = [REPO_ID, PIPELINE_REPO_ID, str(tmp_path / "io.safetensors"), str(tmp_path / "expected.json")]

    # pushed from the original's save_pretrained folder: this process stays offline
    run_client(PUSH, [str(tmp_path / "original"), REPO_ID, PIPELINE_REPO_ID], hub, tmp_path / "pusher", tmp_path)
    upload_processor, upload_model, _ = hub.history(REPO_ID)
    assert [upload_model.message, upload_processor.message] == ["Upload model", "Upload processor"]
    assert MODEL_FILES | {"README.md"} <= set(upload_model.files) and not PROCESSOR_FILES & set(upload_model.files)
    assert PROCESSOR_FILES <= set(upload_processor.files) - set(upload_model.files)
    files = hub.files(REPO_ID)
    assert json.loads(files["config.json"])["auto_map"]["AutoModel"] == "modeling_odtrack.ODTrackModel"
    processor_map = json.loads(files["processor_config.json"])["auto_map"]
    assert processor_map["AutoProcessor"] == "processing_odtrack.ODTrackProcessor"
    metadata = card_metadata(files["README.md"].decode())
    assert metadata["library_name"] == "transformers" and "odtrack" in metadata["tags"]
    # the pipeline's save_pretrained (used by its push_to_hub) brings the processor along
    (pipeline_commit, _) = hub.history(PIPELINE_REPO_ID)
    assert MODEL_FILES | PROCESSOR_FILES | PIPELINE_FILES <= set(pipeline_commit.files)
    custom = json.loads(hub.files(PIPELINE_REPO_ID)["config.json"])["custom_pipelines"]["object-tracking"]
    assert custom["impl"] == "pipeline_odtrack.ObjectTrackingPipeline"

    # download by hub id into an empty cache, as remote code (the process never imports odtrack_hf)
    cache = tmp_path / "downloader"
    assert run_client(LOAD, load_args, hub, cache, tmp_path).endswith("loads OK\n")
    snapshot = cache / "hub" / "models--acme--odtrack-tiny" / "snapshots" / upload_processor.oid
    assert MODEL_FILES | PROCESSOR_FILES <= {path.name for path in snapshot.iterdir()}
    assert f"GET /{REPO_ID}/resolve/{upload_processor.oid}/model.safetensors" in hub.requests

    # offline from the same cache by hub id: remote code first, then with odtrack_hf installed
    requests_before = len(hub.requests)
    assert run_client(LOAD, [*load_args, "installed"], hub, cache, tmp_path, offline=True).endswith("loads OK\n")
    assert hub.requests[requests_before:] == []
    assert hub.unhandled == []
