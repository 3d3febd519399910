"""CLI commands that need no services: schema export, NER training and scoring on a small slice, annotate."""

import json
import os

import pytest
from typer.testing import CliRunner

from clinstream.cli import app
from clinstream.envelope import export_schemas
from clinstream.settings import REPO_ROOT
from tests.conftest import corpus

runner = CliRunner()


def test_committed_schemas_match_the_code():
    """docs/*.schema.json are what `clinstream schema` exports from the envelope models today."""
    for name, schema in export_schemas().items():
        committed = json.loads((REPO_ROOT / "docs" / f"{name}.schema.json").read_text())
        assert committed == schema, f"run `clinstream schema`: docs/{name}.schema.json is stale"


def test_train_and_eval_ner_on_a_slice(tmp_path):
    """`train ner` writes only the delta, metadata, report and card; `eval ner` scores an IOB file to JSON."""
    from unittest import mock

    from clinstream.settings import Settings

    bc5cdr = corpus("bc5cdr")
    # the slice model's int8 twin in a folder of its own: in the settings' cache it would replace the shipped
    # model's twin (same model name, another version), and the next test would build that again
    settings = Settings(int8_cache_dir=tmp_path / "int8")
    train = tmp_path / "train.tsv"
    devel = tmp_path / "devel.tsv"
    train.write_text("\n".join((bc5cdr / "train.tsv").read_text().splitlines()[:1500]) + "\n")
    devel.write_text("\n".join((bc5cdr / "devel.tsv").read_text().splitlines()[:800]) + "\n")
    out = tmp_path / "model"
    with mock.patch("clinstream.cli.get_settings", return_value=settings):
        result = runner.invoke(app, ["train", "ner", "--train", str(train), "--devel", str(devel), "--out", str(out), "--epochs", "1"])
        assert result.exit_code == 0, result.output
        assert sorted(p.name for p in out.iterdir()) == ["MODEL_CARD.md", "clinstream-model.json", "delta.safetensors", "report.json"]
        twins = sorted((tmp_path / "int8").iterdir())  # training built the twin that eval (and a worker) will load
        report_path = tmp_path / "report.json"
        with mock.patch("processors.openvino_int8.export_int8", side_effect=AssertionError("built again")):
            result = runner.invoke(app, ["eval", "ner", str(devel), "--model", str(out), "--json", str(report_path)])
        assert result.exit_code == 0, result.output
        assert sorted((tmp_path / "int8").iterdir()) == twins
    report = json.loads(report_path.read_text())
    assert set(report) >= {"micro", "per_label"} and set(report["micro"]) == {"precision", "recall", "f1"}
    # eval runs the precision the worker runs (int8 on CPU): the training scored both
    meta = json.loads((out / "clinstream-model.json").read_text())
    assert report["micro"] == (meta["devel_int8"] if report["precision"] == "int8" else meta["devel"]["micro"])
    # the entity scores' temperature is fitted on devel (this slice's model tags too little to fit on: 1.0)
    from processors.ner_training import TEMPERATURES

    assert meta["score_temperature"] == meta["score_calibration"]["temperature"] in TEMPERATURES


def test_settings_reach_a_child_process_unchanged(monkeypatch):
    """The environment built for a stage process reads back as the same settings, unset ones included."""
    from clinstream.run import settings_env
    from clinstream.settings import Settings

    original = Settings(sender_overrides=None, partitions=3)
    for name, value in settings_env(original).items():
        monkeypatch.setenv(name, value)
    child, services = Settings(), {"kafka_bootstrap", "redis_url"}  # the child gets the resolved addresses
    assert child.model_dump(exclude=services) == original.model_dump(exclude=services)
    assert (child.bootstrap, child.redis) == (original.bootstrap, original.redis)


@pytest.mark.icd10cm_index
def test_annotate_runs_the_worker_functions():
    """`clinstream annotate` prints one JSON line per text with entities, assertions and ICD-10-CM codes."""
    from clinstream.settings import get_settings
    from processors.icd10cm import Coder, IndexMissing

    try:
        Coder.load(get_settings().icd10cm_index_dir)
    except IndexMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}: CI runs make setup, which builds it")
        pytest.skip(f"{exc} (make setup builds it)")
    texts = ["Patient denies chest pain. Acute kidney injury noted.", "Started on vancomycin.", "Hx of HTN. Tachycardic, r/o PE."]
    result = runner.invoke(app, ["annotate", *texts])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [line["text"] for line in lines] == texts
    first = {e["text"].lower(): e for e in lines[0]["entities"]}
    assert first["chest pain"]["assertion"] == "negated" and first["chest pain"]["icd10cm"] == []
    assert first["acute kidney injury"]["assertion"] == "present"
    assert first["acute kidney injury"]["icd10cm"][0]["code"].startswith("N17")
    assert {e["label"] for e in lines[1]["entities"]} == {"MEDICATION"}
    # shorthand the model calls a chemical: problems from the lexicon, with their assertions, "PE" coded
    third = {e["text"]: e for e in lines[2]["entities"]}
    assert {k: (third[k]["label"], third[k]["source_label"], third[k]["assertion"]) for k in ("HTN", "PE")} == {
        "HTN": ("PROBLEM", "shorthand", "historical"), "PE": ("PROBLEM", "shorthand", "possible")}
    assert third["PE"]["icd10cm"][0]["code"].startswith("I26")
