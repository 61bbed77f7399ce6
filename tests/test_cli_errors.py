"""Bad models and bad output paths end ``odtrack track`` before any frame is tracked, with one line and exit 2."""

import json
import shutil

import pytest
from tracking_helpers import fixture_clip, save_fixture_tracker, write_video
from transformers import ViTConfig, ViTImageProcessor, ViTModel

from odtrack_hf.cli import main
from odtrack_hf.model_loading import load_pretrained, model_folder


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    frames, _, _ = fixture_clip()
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames[:3])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A good ODTrack folder and three broken ones: another model type, cut weights, a config that lies."""
    root = tmp_path_factory.mktemp("models")
    good = save_fixture_tracker(root / "good")
    vit = ViTConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16, image_size=32)
    ViTModel(vit).save_pretrained(root / "vit")
    ViTImageProcessor().save_pretrained(root / "vit")
    shutil.copytree(good, root / "truncated")
    weights = (root / "truncated" / "model.safetensors").read_bytes()
    (root / "truncated" / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    shutil.copytree(good, root / "mismatch")
    config = json.loads((root / "mismatch" / "config.json").read_text())
    config["hidden_size"] *= 2
    (root / "mismatch" / "config.json").write_text(json.dumps(config))
    return root


def track(capsys, *argv):
    code = main(["track", *(str(a) for a in argv)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("vit", "holds a 'vit' model, not an ODTrack model; pass an ODTrack folder"),
        ("truncated", "are truncated or corrupt"),
        ("mismatch", "do not match its config.json"),
        ("odtrack-base-hf", "no model folder 'odtrack-base-hf' here"),
    ],
)
def test_a_bad_model_folder_is_one_line(capsys, tmp_path, monkeypatch, video, models, model, message):
    monkeypatch.chdir(models)  # "odtrack-base-hf": a folder name that does not exist (and the Hub is offline)
    code, out, err = track(capsys, video, "--box", "30,44,24,20", "--model", model, "--results", tmp_path / "b.txt")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("odtrack track: error: ") and message in err, err
    if model == "odtrack-base-hf":
        assert "odtrack convert ODTrack_ep0300.pth.tar odtrack-base-hf" in err  # says how to make it
    assert not any(tmp_path.iterdir())


def test_the_python_api_raises_the_same_errors(models):
    from transformers import AutoModel

    with pytest.raises(ValueError, match="not an ODTrack model"):
        load_pretrained(AutoModel.from_pretrained, models / "vit")
    with pytest.raises(FileNotFoundError, match="no model folder"):
        load_pretrained(AutoModel.from_pretrained, models / "missing")
    assert load_pretrained(AutoModel.from_pretrained, models / "good").config.model_type == "odtrack"


def test_model_folder_names_what_is_wrong_with_the_path(models):
    assert model_folder(models / "good") == str(models / "good")  # ready for pipeline(model=...)
    with pytest.raises(FileNotFoundError, match=r"^no model folder '.*missing' here; make it with 'odtrack convert"):
        model_folder(models / "missing")
    with pytest.raises(FileNotFoundError, match=r"'.*models\d*' is not a model folder \(it has no config.json\)"):
        model_folder(models)
    with pytest.raises(FileNotFoundError, match=r"'.*config.json' is a file, not a model folder"):
        model_folder(models / "good" / "config.json")


@pytest.mark.parametrize(
    ("option", "target", "message"),
    [
        ("--results", "blocker/boxes.txt", "cannot be written"),  # the parent is a regular file
        ("--results", "folder", "is a folder; give the path of a file"),
        ("--output", "blocker/out.mp4", "cannot be written"),
        ("--output", "folder", "is a folder; give the path of a file"),
        ("--output", "out.txt", "FFmpeg writes no video format with the suffix '.txt'"),
    ],
)
def test_an_unwritable_output_fails_before_tracking(capsys, tmp_path, monkeypatch, video, option, target, message):
    def never(*args):
        raise AssertionError("the model was loaded before the outputs were checked")

    monkeypatch.setattr("odtrack_hf.cli.load_tracker", never)
    (tmp_path / "blocker").write_text("a file, so nothing can be created under it")
    (tmp_path / "folder").mkdir()
    outputs = {"--results": tmp_path / "b.txt", option: tmp_path / target}
    code, out, err = track(capsys, video, "--box", "30,44,24,20", *(str(v) for kv in outputs.items() for v in kv))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "folder"]
