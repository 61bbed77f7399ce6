"""scripts/train_for_minutes.py: generate missing data, train for a time limit, split and join checkpoints."""

import json
from pathlib import Path

import pytest
import yaml
from script_helpers import REPO, load_script

from odtrack_hf.training import list_checkpoints, read_log

recipe = load_script("scripts/train_for_minutes.py")


def tiny_config(path: Path, output_dir: Path, root: Path) -> Path:
    values = yaml.safe_load((REPO / "examples/configs/tiny_cpu.yaml").read_text())
    values.update(output_dir=str(output_dir), datasets=[{"type": "folder", "root": str(root)}], save_steps=2)
    path.write_text(yaml.safe_dump(values))
    return path


def test_trains_splits_and_resumes_from_the_parts(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    root, parts = tmp_path / "data" / "train", tmp_path / "parts"
    first = tiny_config(tmp_path / "a.yaml", tmp_path / "run_a", root)
    generate = "--num-sequences 2 --min-frames 12 --max-frames 12 --width 64 --seed 0"
    recipe.main([str(first), "--minutes", "0.001", "--first-chunk", "2", "--generate", str(root), generate,
                 "--parts-out", str(parts), "--part-mb", "0.05"])  # fmt: skip
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["SYN_Train_000001", "SYN_Train_000002"]
    (checkpoint,) = list_checkpoints(tmp_path / "run_a")
    assert checkpoint.name == "step_00000002"
    manifest = json.loads((parts / "manifest.json").read_text())
    files = [parts / entry["file"] for entry in manifest["parts"]]
    assert len(files) > 1 and all(f.stat().st_size <= 0.05 * 1024 * 1024 for f in files)
    assert sum(f.stat().st_size for f in files) == manifest["size"]

    # another machine: join the parts into a fresh run and go on training from them
    second = tiny_config(tmp_path / "b.yaml", tmp_path / "run_b", root)
    recipe.main([str(second), "--from-parts", str(parts), "--minutes", "0.001", "--first-chunk", "1"])
    joined = tmp_path / "run_b" / "checkpoints" / checkpoint.name
    for original in checkpoint.iterdir():
        assert (joined / original.name).read_bytes() == original.read_bytes()
    assert list_checkpoints(tmp_path / "run_b")[-1].name == "step_00000003"
    assert [r["step"] for r in read_log(tmp_path / "run_b" / "logs" / "train.jsonl")][-1] == 3
    assert "trained to step 3" in capsys.readouterr().out

    # a damaged part is refused before anything is trained
    files[0].write_bytes(b"x" + files[0].read_bytes()[1:])
    third = tiny_config(tmp_path / "c.yaml", tmp_path / "run_c", root)
    with pytest.raises(SystemExit) as stop:
        recipe.main([str(third), "--from-parts", str(parts), "--minutes", "1"])
    assert stop.value.code == 2 and "damaged" in capsys.readouterr().err
    assert list_checkpoints(tmp_path / "run_c") == []


def test_a_missing_dataset_without_generate_arguments_stops_before_training(tmp_path, capsys):
    config = tiny_config(tmp_path / "a.yaml", tmp_path / "run", tmp_path / "nowhere" / "train")
    with pytest.raises(SystemExit) as stop:
        recipe.main([str(config), "--minutes", "1"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "nowhere/train is missing" in err and "--generate" in err
    assert not (tmp_path / "run").exists()
