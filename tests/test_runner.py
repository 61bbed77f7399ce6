"""``odtrack eval``: result files, metrics, attribute table, plots, resume, submissions, bad input, 2 processes."""

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from eval_helpers import make_benchmark, save_tiny_tracker
from PIL import Image

from odtrack_hf import ODTrackInferenceSession, ODTrackModel, ODTrackProcessor
from odtrack_hf.cli import main
from odtrack_hf.data.sources import FolderSource
from odtrack_hf.evaluation import evaluate_tracking, read_results
from odtrack_hf.evaluation.benchmarks import open_dataset

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tracker_dir(tmp_path_factory):
    return save_tiny_tracker(tmp_path_factory.mktemp("tracker"))


@pytest.fixture(scope="module")
def benchmark(tmp_path_factory):
    return make_benchmark(tmp_path_factory.mktemp("benchmark"))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, benchmark, tracker_dir):
    """One evaluation of the folder benchmark, shared by the tests that only read its files."""
    output = tmp_path_factory.mktemp("run") / "out"
    code = main(["eval", "--dataset", "folder", "--root", str(benchmark), "--split", "heldout", "--model",
                 str(tracker_dir), "--device", "cpu", "--output-dir", str(output)])  # fmt: skip
    assert code == 0
    return output


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_eval_folder_writes_official_results_metrics_table_and_plots(first_run, benchmark, tracker_dir):
    source = FolderSource(benchmark / "heldout")
    model = ODTrackModel.from_pretrained(tracker_dir).eval()
    processor = ODTrackProcessor.from_pretrained(tracker_dir)
    predictions = {}
    for index, name in enumerate(source.names):
        sequence = source[index]
        lines = (first_run / "results" / f"{name}.txt").read_text().splitlines()
        assert len(lines) == 10 and all(len(line.split("\t")) == 4 for line in lines)
        predictions[name] = read_results(first_run / "results" / f"{name}.txt")
        # the tracker's own boxes from a fresh session, truncated like the official files
        session = ODTrackInferenceSession(model, processor)
        frames = (sequence.load_frame(i) for i in range(len(sequence)))
        expected = [o.boxes[0].tolist() for o in session.propagate(frames, boxes=[sequence.boxes[0].tolist()])]
        np.testing.assert_array_equal(predictions[name], np.trunc(expected))
        times = np.loadtxt(first_run / "results" / f"{name}_time.txt")
        assert times.shape == (10,) and (times > 0).all()

    metrics = json.loads((first_run / "metrics.json").read_text())
    assert {"auc", "precision", "norm_precision", "ao", "sr50", "sr75", "fps", "fps_end_to_end"} <= set(metrics)
    expected = evaluate_tracking(
        predictions,
        {source[i].name: source[i].boxes for i in range(3)},
        {source[i].name: source[i].visible for i in range(3)},
    )
    for key in ("auc", "precision", "norm_precision", "ao", "sr50", "sr75"):
        assert metrics[key] == pytest.approx(expected[key])
        first = source.names[0]
        assert metrics["per_sequence"][first][key] == pytest.approx(expected["per_sequence"][first][key])
    all_times = np.concatenate([np.loadtxt(first_run / "results" / f"{name}_time.txt") for name in source.names])
    assert metrics["fps"] == pytest.approx(30 / all_times.sum(), rel=1e-3)  # times are written with 6 decimals
    assert 0 < metrics["fps_end_to_end"] < metrics["fps"]
    assert metrics["num_frames"] == 30 and metrics["notes"] == [] and metrics["dtype"] == "float32"

    # one row per attribute some sequence has (attributes.json), with its sequence count
    tags = {}
    for name in source.names:
        flags = json.loads((benchmark / "heldout" / name / "attributes.json").read_text())["attributes"]
        for tag in (tag for tag, present in flags.items() if present):
            tags[tag] = tags.get(tag, 0) + 1
    assert {tag: row["num_sequences"] for tag, row in metrics["per_attribute"].items()} == tags
    table = (first_run / "attributes.md").read_text().splitlines()
    assert len(table) == 2 + len(tags) and table[0].startswith("| attribute | sequences | ODTrack (tracker")
    for kind in ("success", "precision", "norm_precision"):
        path = first_run / "plots" / f"{kind}.png"
        assert path.read_bytes()[:8] == PNG_SIGNATURE and Image.open(path).size == (900, 675)
    assert not list(first_run.rglob(".*partial"))


def test_dtype_runs_the_sessions_under_that_autocast(capsys, tmp_path, benchmark, tracker_dir):
    output = tmp_path / "bf16"
    code, _, err = run(
        capsys, "eval", "--dataset", "folder", "--root", benchmark, "--split", "heldout", "--model", tracker_dir,
        "--device", "cpu", "--output-dir", output, "--dtype", "bfloat16",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads((output / "metrics.json").read_text())["dtype"] == "bfloat16"
    model, processor = ODTrackModel.from_pretrained(tracker_dir).eval(), ODTrackProcessor.from_pretrained(tracker_dir)
    for sequence in FolderSource(benchmark / "heldout"):  # the last one's boxes differ from float32 ones
        session = ODTrackInferenceSession(model, processor, dtype=torch.bfloat16)
        frames = (sequence.load_frame(i) for i in range(len(sequence)))
        expected = [o.boxes[0].tolist() for o in session.propagate(frames, boxes=[sequence.boxes[0].tolist()])]
        np.testing.assert_array_equal(read_results(output / "results" / f"{sequence.name}.txt"), np.trunc(expected))


def test_resume_skips_finished_sequences_and_compare_scores_another_tracker(
    capsys, tmp_path, first_run, benchmark, tracker_dir
):
    output = tmp_path / "out"
    shutil.copytree(first_run, output)
    names = FolderSource(benchmark / "heldout").names
    (output / "results" / f"{names[1]}.txt").unlink()  # as if the run had stopped before this sequence
    kept = {name: (output / "results" / f"{name}.txt").stat().st_mtime_ns for name in (names[0], names[2])}
    other = tmp_path / "other"
    other.mkdir()
    shifted = {}
    for name in names:
        shifted[name] = read_results(first_run / "results" / f"{name}.txt") + [3, 2, 0, 0]
        np.savetxt(other / f"{name}.txt", shifted[name], fmt="%d", delimiter=",")

    code, out, err = run(capsys, "eval", "--dataset", "folder", "--root", benchmark / "heldout", "--model", tracker_dir,
                         "--device", "cpu", "--output-dir", output, "--compare", f"shifted={other}")  # fmt: skip
    assert code == 0, err
    assert out.startswith("1 sequences tracked, 2 already finished")
    assert {name: (output / "results" / f"{name}.txt").stat().st_mtime_ns for name in kept} == kept
    assert (output / "results" / f"{names[1]}.txt").is_file()

    metrics = json.loads((output / "metrics.json").read_text())
    source = FolderSource(benchmark / "heldout")
    expected = evaluate_tracking(
        shifted, {n: source[i].boxes for i, n in enumerate(names)}, {n: source[i].visible for i, n in enumerate(names)}
    )
    assert metrics["compare"]["shifted"]["auc"] == pytest.approx(expected["auc"])
    assert all("shifted" in row for row in metrics["per_attribute"].values())
    assert "shifted AUC" in (output / "attributes.md").read_text()


def _copy_as_first_box_only(source_root: Path, target, frame_name) -> Iterator[tuple[str, np.ndarray]]:
    """Copy the frames of the generated sequences to ``target(name)`` as ``frame_name(k)``; yields each name and
    its first box (benchmark test sets ship only that one)."""
    source = FolderSource(source_root / "heldout")
    for index, name in enumerate(source.names):
        sequence = source[index]
        folder = target(name)
        folder.mkdir(parents=True)
        for k, frame in enumerate(sequence.frames):
            shutil.copy(frame, folder / frame_name(k))
        yield name, sequence.boxes[0]


def test_got10k_test_set_gives_a_submission_folder_and_zip_but_no_scores(capsys, tmp_path, benchmark, tracker_dir):
    root = tmp_path / "GOT-10k"
    names = []
    for name, box in _copy_as_first_box_only(benchmark, lambda n: root / "test" / n, lambda k: f"{k + 1:08d}.jpg"):
        (root / "test" / name / "groundtruth.txt").write_text(",".join(f"{v:.4f}" for v in box) + "\n")
        names.append(name)
    (root / "test" / "list.txt").write_text("\n".join(names) + "\n")
    output = tmp_path / "out"
    code, out, err = run(capsys, "eval", "--dataset", "got10k", "--root", root, "--model", tracker_dir,
                         "--device", "cpu", "--output-dir", output)  # fmt: skip
    assert code == 0, err
    assert "have only a first-frame box" in out and "AUC" not in out
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["auc"] is None and metrics["fps"] > 0 and metrics["notes"]
    assert not (output / "plots").exists()
    submission = output / "got10k_submission"
    for name in names:
        results = read_results(output / "results" / f"{name}.txt")  # the result folder is kept
        lines = (submission / name / f"{name}_001.txt").read_text().splitlines()
        assert [list(map(int, line.split(","))) for line in lines] == results.astype(int).tolist()
        times = (output / "results" / f"{name}_time.txt").read_bytes()
        assert (submission / name / f"{name}_time.txt").read_bytes() == times
    with zipfile.ZipFile(output / "got10k_submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{n}/{n}_{s}.txt" for n in names for s in ("001", "time"))


def test_trackingnet_test_set_gives_a_zip_of_comma_separated_results(capsys, tmp_path, benchmark, tracker_dir):
    root = tmp_path / "TrackingNet"
    (root / "TEST" / "anno").mkdir(parents=True)
    names = []
    for name, box in _copy_as_first_box_only(benchmark, lambda n: root / "TEST" / "frames" / n, lambda k: f"{k}.jpg"):
        (root / "TEST" / "anno" / f"{name}.txt").write_text(",".join(f"{v:.4f}" for v in box) + "\n")
        names.append(name)
    output = tmp_path / "out"
    code, _, err = run(capsys, "eval", "--dataset", "trackingnet", "--root", root, "--model", tracker_dir,
                         "--device", "cpu", "--output-dir", output)  # fmt: skip
    assert code == 0, err
    with zipfile.ZipFile(output / "trackingnet_submission.zip") as archive:
        assert sorted(archive.namelist()) == sorted(f"{name}.txt" for name in names)
        for name in names:
            rows = [list(map(int, line.split(","))) for line in archive.read(f"{name}.txt").decode().splitlines()]
            assert rows == read_results(output / "results" / f"{name}.txt").astype(int).tolist()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("nan", "line 4: NaN in box"),
        ("negative", "line 4: a negative width or height"),
        ("short", "9 boxes for 10 frames (line 10 is missing)"),
    ],
)
def test_bad_result_file_is_one_line_naming_the_sequence_and_line(
    capsys, tmp_path, first_run, benchmark, content, message
):
    output = tmp_path / "out"
    shutil.copytree(first_run, output)
    name = FolderSource(benchmark / "heldout").names[1]
    path = output / "results" / f"{name}.txt"
    lines = path.read_text().splitlines()
    if content == "nan":
        lines[3] = "1\t2\tnan\t4"
    elif content == "negative":
        lines[3] = "1\t2\t-3\t4"
    else:
        lines = lines[:9]
    path.write_text("\n".join(lines) + "\n")
    code, out, err = run(capsys, "eval", "--dataset", "folder", "--root", benchmark / "heldout", "--device", "cpu",
                         "--output-dir", output)  # fmt: skip
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"odtrack eval: error: sequence {name!r}") and message in err


def test_dataset_options_are_checked(capsys, tmp_path, benchmark):
    with pytest.raises(ValueError, match="--split is not used by otb"):
        open_dataset("otb", benchmark, "test")
    with pytest.raises(ValueError, match="GOT-10k split must be"):
        open_dataset("got10k", benchmark, "train")
    code, _, err = run(capsys, "eval", "--dataset", "folder", "--root", benchmark, "--split", "heldout",
                       "--output-dir", tmp_path, "--compare", tmp_path / "missing")  # fmt: skip
    assert code == 2 and "is not a folder" in err


def test_two_processes_write_the_same_results_as_one(capsys, tmp_path, first_run, benchmark, tracker_dir):
    output = tmp_path / "out"
    code, out, err = run(capsys, "eval", "--dataset", "folder", "--root", benchmark / "heldout", "--model", tracker_dir,
                         "--device", "cpu", "--output-dir", output, "--num-processes", 2)  # fmt: skip
    assert code == 0, err
    assert out.startswith("3 sequences tracked, 0 already finished")
    for path in (first_run / "results").glob("*.txt"):
        if not path.name.endswith("_time.txt"):
            assert (output / "results" / path.name).read_text() == path.read_text()
    one, two = (json.loads((folder / "metrics.json").read_text()) for folder in (first_run, output))
    assert two["auc"] == one["auc"] and two["per_attribute"] == one["per_attribute"]
