"""Model cards: the files in model_cards/, the generator, the ``odtrack card`` command and the validation."""

import argparse
import os
import re
from pathlib import Path

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.repocard import metadata_load

from odtrack_hf import odtrack_preset
from odtrack_hf.model_card import (
    BENCHMARKS,
    PAPER_RESULTS,
    UPSTREAM_URL,
    add_card_parser,
    build_model_card,
    validate_model_card,
    write_model_card,
)
from conftest import tiny_config

CARDS = Path(__file__).resolve().parents[1] / "model_cards"
# the paper's result rows (provenance in the file); ODTRACK_PAPER may point at the whole paper's text instead
PAPER_ROWS = Path(__file__).resolve().parent / "fixtures" / "odtrack-paper-results.md"
PAPER = Path(os.environ.get("ODTRACK_PAPER", PAPER_ROWS))
FULL_DATA_RESULTS = {"LaSOT", "TrackingNet", "LaSOT_ext", "TNL2K", "OTB100"}


@pytest.mark.parametrize("preset", ["odtrack-base", "odtrack-large"])
def test_card_files_are_the_generator_output(preset, tmp_path):
    written = write_model_card(tmp_path / f"{preset}.md", preset)
    assert (CARDS / f"{preset}.md").read_text() == written.read_text(), (
        f"model_cards/{preset}.md is stale: regenerate it with `odtrack card model_cards/{preset}.md "
        f"--preset {preset} --overwrite`"
    )


@pytest.mark.parametrize("preset, model_name", [("odtrack-base", "ODTrack-B"), ("odtrack-large", "ODTrack-L")])
def test_card_files_carry_valid_metadata(preset, model_name):
    path = CARDS / f"{preset}.md"
    card = validate_model_card(path)
    data = card.data
    assert data.library_name == "transformers" and {"object-tracking", "video", "odtrack"} <= set(data.tags)
    assert (data.license, data.license_link) == ("other", UPSTREAM_URL)
    assert data.model_name == model_name and data.pipeline_tag is None
    # the raw YAML, independently of ModelCardData: one model-index entry per benchmark
    (index,) = metadata_load(path)["model-index"]
    assert index["name"] == model_name
    by_dataset = {entry["dataset"]["name"]: entry for entry in index["results"]}
    assert set(by_dataset) == FULL_DATA_RESULTS
    for name, entry in by_dataset.items():
        assert entry["task"]["type"] == "object-tracking" and entry["dataset"]["split"] == "test"
        assert [metric["value"] for metric in entry["metrics"]] == list(PAPER_RESULTS[model_name][name])
    assert "## Licence" in card.text and "Check the licence and terms in the upstream repository" in card.text


def test_results_are_the_papers_numbers():
    """PAPER_RESULTS against the paper's Tables 2, 3 and 5 (tests/fixtures/odtrack-paper-results.md)."""
    text = PAPER.read_text()
    for name, ours in PAPER_RESULTS.items():
        (table2,) = re.findall(rf"^<b>{name}</b>\t([\d.\t]+)$", text, re.MULTILINE)
        (table3,) = re.findall(rf"^<b>{name}</b>\t(<b>.*)$", text, re.MULTILINE)
        table2_columns = ("GOT-10k", "LaSOT", "TrackingNet", "LaSOT_ext")
        assert [v for b in table2_columns for v in ours[b]] == [float(v) for v in table2.split("\t")], name
        assert list(ours["VOT2020"]) == [float(v) for v in re.findall(r"[\d.]+", table3)], name
    table5 = re.search(r"^\tATOM.*?\n(TNL2K\t.*)\n(OTB100\t.*)$", text, re.MULTILINE)
    for row in table5.groups():
        benchmark, *values = row.split("\t")
        assert (PAPER_RESULTS["ODTrack-B"][benchmark], PAPER_RESULTS["ODTrack-L"][benchmark]) == (
            (float(values[-2]),),
            (float(values[-1]),),
        )
    assert {b.name for b in BENCHMARKS} == set(PAPER_RESULTS["ODTrack-B"]) == set(PAPER_RESULTS["ODTrack-L"])


def test_write_card_into_a_save_pretrained_folder_round_trips(tmp_path):
    odtrack_preset("odtrack-large").save_pretrained(tmp_path)  # the config.json of a converted ODTrack-L
    path = write_model_card(tmp_path, repo_id="acme/odtrack-large")  # preset read from config.json
    assert path == tmp_path / "README.md"
    card = ModelCard.load(path)
    assert card.data.model_name == "ODTrack-L" and card.data.datasets == ["LaSOT", "GOT-10k", "COCO", "TrackingNet"]
    scores = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert scores[("LaSOT", "auc")] == 74.0 and scores[("TrackingNet", "precision")] == 86.7
    assert not any(name in ("GOT-10k", "VOT2020") for name, _ in scores)  # other checkpoint / post-processed
    assert 'pipeline(model="acme/odtrack-large", trust_remote_code=True)' in card.text
    assert ModelCard(str(card)).content == card.content  # stable under re-serialisation


def test_got10k_card_claims_only_the_got10k_results():
    card = build_model_card("odtrack-base-got10k")
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {("GOT-10k", "ao"): 77.0, ("GOT-10k", "sr50"): 87.9, ("GOT-10k", "sr75"): 75.1}
    assert card.data.datasets == ["GOT-10k"] and card.data.model_name == "ODTrack-B (GOT-10k)"
    assert "ODTrack_ep0100.pth.tar" in card.text and "frame 0 plus 4 segment midpoints" in card.text


def test_write_card_refuses_wrong_or_unknown_models_and_overwrites(tmp_path):
    tiny = tmp_path / "tiny"
    tiny_config().save_pretrained(tiny)
    with pytest.raises(ValueError, match="give the preset"):
        write_model_card(tiny)
    bert_like = tmp_path / "bert"
    bert_like.mkdir()
    (bert_like / "config.json").write_text('{"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12}')
    with pytest.raises(ValueError, match="does not match preset 'odtrack-base' \\(it matches no preset\\)"):
        write_model_card(bert_like, "odtrack-base")
    base = tmp_path / "base"
    odtrack_preset("odtrack-base").save_pretrained(base)
    with pytest.raises(ValueError, match="does not match preset 'odtrack-large' \\(it matches odtrack-base\\)"):
        write_model_card(base, "odtrack-large")
    with pytest.raises(ValueError, match="No model card for preset 'odtrack-base-separate'"):
        write_model_card(base, "odtrack-base-separate")
    write_model_card(base)
    with pytest.raises(ValueError, match="exists"):
        write_model_card(base)
    assert write_model_card(base, overwrite=True).is_file()


def test_validate_reports_every_problem(tmp_path):
    path = tmp_path / "README.md"
    path.write_text(
        "---\nlibrary_name: timm\ntags: [odtrack]\nlicense: other\nmodel-index:\n- name: x\n  results:\n"
        "  - task: {type: object-tracking}\n    dataset: {name: LaSOT, type: lasot}\n"
        "    metrics: [{type: auc, value: high}]\n---\n# card\n"
    )
    with pytest.raises(ValueError) as error:
        validate_model_card(path)
    message = str(error.value)
    for problem in ("library_name is 'timm'", "tags lack ['object-tracking']", "needs license_name", "not a number"):
        assert problem in message
    path.write_text("---\nmodel-index: [{name: x, results: [{metrics: []}]}]\n---\n")
    with pytest.raises(ValueError, match="Invalid `model_index`"):
        validate_model_card(path)


def test_card_command_writes_into_the_folder(tmp_path, capsys):
    odtrack_preset("odtrack-base").save_pretrained(tmp_path)
    parser = argparse.ArgumentParser(prog="odtrack")
    add_card_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["card", str(tmp_path), "--repo-id", "acme/odtrack-base"])
    args.func(args)
    assert f"Wrote the model card {tmp_path / 'README.md'}" in capsys.readouterr().out
    assert validate_model_card(tmp_path / "README.md").data.model_name == "ODTrack-B"
