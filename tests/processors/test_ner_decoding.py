"""Pure parts of NER: BIO-constrained Viterbi and token-budget grouping."""

from dataclasses import replace
from unittest import mock

import pytest

import torch

from processors.ner import (LABELS, Entity, allowed_transitions, entity_probabilities, padded_width, shorthand_uses,
                           token_budget_groups, viterbi, with_elided_heads, with_modifiers, with_senses, with_shorthand)


def test_viterbi_forbids_o_to_i():
    """An I- tag never follows O: the best valid path is chosen instead."""
    allowed = allowed_transitions(LABELS)
    start = torch.tensor([not lab.startswith("I-") for lab in LABELS])
    # word 0 clearly O, word 1 prefers I-Disease (invalid after O), then B-Disease
    lp = torch.log(torch.tensor([[0.9, 0.025, 0.025, 0.025, 0.025], [0.05, 0.05, 0.05, 0.35, 0.5]]))
    path = [LABELS[i] for i in viterbi([lp], allowed, start)[0]]
    assert path == ["O", "B-Disease"]


def test_viterbi_of_a_batch_is_the_best_valid_path_of_each_sequence():
    """Sequences of different lengths decoded together each get the highest-scoring BIO-valid path, found here
    by trying every path (5 labels, up to 5 words); empty sequences give empty paths."""
    import itertools

    import numpy as np

    allowed = allowed_transitions(LABELS).numpy()
    start = np.array([not lab.startswith("I-") for lab in LABELS])
    rng = np.random.default_rng(7)
    batch = [np.log(rng.dirichlet(np.ones(5) * 0.5, size=n)) for n in (3, 1, 5, 0, 2, 5, 4, 1)]

    def best(lp: np.ndarray) -> list[int]:
        valid = [p for p in itertools.product(range(5), repeat=len(lp))
                 if start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:]))] if len(lp) else [()]
        return list(max(valid, key=lambda p: sum(lp[i, t] for i, t in enumerate(p))))

    assert viterbi(batch, allowed, start) == [best(lp) for lp in batch]
    assert viterbi([], allowed, start) == []


@pytest.mark.parametrize("temperature", [1.0, 2.25])
def test_an_entity_score_is_the_probability_of_exactly_that_entity_over_every_valid_path(temperature):
    """entity_probabilities, checked by trying every BIO-valid path (5 labels, up to 5 words) of a batch of
    sequences: each path weighs the product of its words' label probabilities (log-probs divided by the temperature,
    renormalised); an entity word's score is the share of weight on paths holding exactly its entity (same words, same
    label, nothing continuing it), an O word's the share on paths where it is O."""
    import itertools

    import numpy as np

    allowed = allowed_transitions(LABELS).numpy()
    start = np.array([not lab.startswith("I-") for lab in LABELS])
    rng = np.random.default_rng(11)
    batch = [np.log(rng.dirichlet(np.ones(5) * 0.5, size=n)) for n in (3, 1, 5, 0, 2, 5, 4)]
    paths = viterbi(batch, allowed, start)

    def spans(path):
        out = []
        for k, tag in enumerate(path):
            name = LABELS[tag]
            if name.startswith("B-"):
                out.append((k, k + 1, name[2:]))
            elif name.startswith("I-"):
                out[-1] = (out[-1][0], k + 1, out[-1][2])
        return out

    def expected(lp, path):
        soft = np.exp(lp / temperature)
        soft /= soft.sum(axis=1, keepdims=True)
        valid = [p for p in itertools.product(range(5), repeat=len(lp))
                 if start[p[0]] and all(allowed[a, b] for a, b in zip(p, p[1:]))] if len(lp) else []
        weight = {p: float(np.prod([soft[i, t] for i, t in enumerate(p)])) for p in valid}
        total = sum(weight.values())
        out = [sum(w for p, w in weight.items() if p[k] == 0) / total for k in range(len(path))]
        for entity in spans(path):
            share = sum(w for p, w in weight.items() if entity in spans(p)) / total
            out[entity[0] : entity[1]] = [share] * (entity[1] - entity[0])
        return out

    got = entity_probabilities(batch, paths, LABELS, allowed, start, temperature)
    assert [len(g) for g in got] == [len(lp) for lp in batch]
    for lp, path, probs in zip(batch, paths, got):
        assert probs == pytest.approx(expected(lp, path), abs=1e-9)
    assert any(LABELS[t] != "O" for path in paths for t in path)  # the batch holds entities to check


def test_crf_loss_is_the_negative_log_likelihood_over_every_valid_path():
    """The training loss (ner_training.BioCrf): for each sentence, log of the summed scores of every BIO-valid tag path
    of its words (found here by trying them all) less the gold path's score, averaged; positions labelled -100
    (special tokens, continuation sub-words) are no word."""
    import itertools

    from processors.ner_training import BioCrf

    torch.manual_seed(3)
    crf = BioCrf(LABELS)
    with torch.no_grad():
        for param in (crf.transitions, crf.start, crf.end):
            param.normal_()
    logits = torch.randn(2, 7, 5)
    labels = torch.tensor([[-100, 1, 2, -100, 0, 3, -100], [-100, 0, 3, 4, -100, -100, -100]])
    allowed = allowed_transitions(LABELS)

    def score(words: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
        total = crf.start[path[0]] + crf.end[path[-1]] + sum(words[i, t] for i, t in enumerate(path))
        return total + sum(crf.transitions[a, b] for a, b in zip(path, path[1:]))

    expected = []
    for row in range(2):
        at = (labels[row] != -100).nonzero(as_tuple=True)[0]
        words, gold = logits[row, at], tuple(labels[row, at].tolist())
        valid = [p for p in itertools.product(range(5), repeat=len(at))
                 if not LABELS[p[0]].startswith("I-") and all(allowed[a, b] for a, b in zip(p, p[1:]))]
        expected.append(torch.logsumexp(torch.stack([score(words, p) for p in valid]), 0) - score(words, gold))
    assert torch.allclose(crf.nll(logits, labels), torch.stack(expected).mean(), atol=1e-4)


def test_an_entity_ends_before_a_slashed_shorthand():
    """The tokenizer splits "s/p" in three; the model's "CAD s" of "CAD s/p CABG" ends at CAD (one word alone stays)."""
    from types import SimpleNamespace

    from processors.ner import NerModel

    text = "CAD s/p CABG"
    decoded = [(0, 3, LABELS.index("B-Disease"), 0.9), (4, 5, LABELS.index("I-Disease"), 0.9), (5, 6, 0, 0.9), (6, 7, 0, 0.9),
               (8, 12, 0, 0.9)]
    assert [e.text for e in NerModel._entities(SimpleNamespace(labels=LABELS), text, decoded)] == ["CAD"]


def test_token_budget_groups():
    """Groups respect both the batch size and the padded-token budget, and keep every window once."""
    lengths = [10, 200, 30, 200, 15, 60, 250]
    groups = token_budget_groups(lengths, max_batch=3, token_budget=420)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for g in groups:
        assert len(g) <= 3 and padded_width(max(lengths[i] for i in g)) * len(g) <= 420 or len(g) == 1


def test_precision_defaults_and_limits():
    """auto is int8 on CPU where openvino and nncf are installed (its entities do not depend on the batch), else
    fp32; int8 is CPU-only and needs them; typos are refused."""
    import pytest

    from processors.ner import resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == "int8"
    with mock.patch("processors.openvino_int8.available", return_value=False):
        assert resolve_precision("auto", cpu) == "fp32"
    with mock.patch("processors.openvino_int8.available", return_value=False), pytest.raises(ValueError):
        resolve_precision("int8", cpu)
    assert resolve_precision("int8", cpu) == "int8"
    with pytest.raises(ValueError):
        resolve_precision("int8", torch.device("cuda"))
    with pytest.raises(ValueError):
        resolve_precision("fp8", cpu)


def test_padded_width_is_a_multiple_of_eight():
    """Forward passes are padded up to the next multiple of 8 tokens, never down."""
    assert [padded_width(n) for n in (1, 8, 9, 73, 256)] == [8, 8, 16, 80, 256]


def _entity(text: str, phrase: str, label: str, score: float = 0.9, at: int = 0) -> Entity:
    start = text.index(phrase, at)
    return Entity(label, {"PROBLEM": "Disease", "MEDICATION": "Chemical"}[label], start, start + len(phrase), phrase, score)


def _problems(found: list[Entity]) -> list[tuple[str, str | None]]:
    return [(e.text, e.expands) for e in found if e.label == "PROBLEM"]


@pytest.mark.parametrize(("text", "model", "expected"), [
    # a modifier before the entity, in no entity: a problem of its own, coded as the modifier and the entity's head
    ("Concern for septic vs cardiogenic shock.", ["cardiogenic shock"], [("septic", "septic shock"), ("cardiogenic shock", None)]),
    ("obstructive/central sleep apnea", ["central sleep apnea"], [("obstructive", "obstructive sleep apnea"), ("central sleep apnea", None)]),
    # the model's own entity of just the modifier gains the head ("Ischemic" alone was coded I25.9)
    ("Ischemic vs hemorrhagic stroke", ["Ischemic", "hemorrhagic stroke"], [("Ischemic", "Ischemic stroke"), ("hemorrhagic stroke", None)]),
    # one entity of the model over both is split
    ("Viral or bacterial pneumonia on CXR", ["Viral or bacterial pneumonia"], [("Viral", "Viral pneumonia"), ("bacterial pneumonia", None)]),
    # no modifier of a kind: lists of problems, verbs, nouns with an adjective's ending, a one-word entity
    ("Chest pain and shortness of breath", ["Chest pain", "shortness of breath"], [("Chest pain", None), ("shortness of breath", None)]),
    ("Denies nausea or abdominal pain", ["nausea", "abdominal pain"], [("nausea", None), ("abdominal pain", None)]),
    ("Patient improved and acute pain resolved", ["acute pain"], [("acute pain", None)]),
    ("Back to hospital and acute rehab", ["acute rehab"], [("acute rehab", None)]),
    ("viral or bacterial infection", ["infection"], [("infection", None)]),
    ("viral or bacterial", [], []),
])
def test_a_modifier_sharing_the_next_problems_head_is_a_problem_of_its_own(text, model, expected):
    """with_elided_heads: "septic vs cardiogenic shock" is septic shock and cardiogenic shock."""
    found = with_elided_heads(text, [_entity(text, p, "PROBLEM") for p in model])
    assert _problems(found) == expected
    assert all(text[e.start : e.end] == e.text for e in found)


def test_the_models_problems_take_in_the_modifiers_after_them():
    """with_modifiers: an artery's territory, an exacerbation or a stage after the model's problem joins it; a
    severity before it does not (it coded worse), nor a modifier over another entity or after a lexicon term's use."""
    text = "MRI: small acute infarct in the R PCA territory. Severe aortic stenosis. Asthma exacerbation, CKD stage 3b."
    model = [_entity(text, "acute infarct", "PROBLEM"), _entity(text, "aortic stenosis", "PROBLEM"),
             _entity(text, "Asthma", "PROBLEM"), Entity("PROBLEM", "shorthand", text.index("CKD"), text.index("CKD") + 3, "CKD", 1.0)]
    assert [e.text for e in with_modifiers(text, model)] == [
        "acute infarct in the R PCA territory", "aortic stenosis", "Asthma exacerbation", "CKD"]
    text = "COPD exacerbation"
    assert with_modifiers(text, [_entity(text, "COPD", "PROBLEM"), _entity(text, "exacerbation", "PROBLEM")])[0].text == "COPD"
    # "acute on" before a chronic problem, the one modifier before that joins it (I50.23, where the model's span gave I50.22)
    text = "Acute on chronic systolic heart failure; acute on the chronic pain"
    assert [e.text for e in with_modifiers(text, [_entity(text, "chronic systolic heart failure", "PROBLEM"),
                                                  _entity(text, "chronic pain", "PROBLEM")])] == [
        "Acute on chronic systolic heart failure", "chronic pain"]


def test_an_elided_head_is_only_a_problem_s():
    """"oral or intravenous vancomycin" names one drug and two routes: medications are left as they are."""
    text = "oral or intravenous vancomycin"
    vanc = _entity(text, "intravenous vancomycin", "MEDICATION")
    assert with_elided_heads(text, [vanc]) == [vanc]


def test_shorthand_adds_problems_the_model_missed_or_called_chemicals():
    """A problem abbreviation the model missed becomes a PROBLEM, one it called a MEDICATION is replaced; shorthand
    entities score 1.0 and carry the source label 'shorthand'; the rest stand, in text order."""
    text = "HTN, CKD and acute kidney injury, on lisinopril."
    model = [_entity(text, "HTN", "MEDICATION", 0.8), _entity(text, "acute kidney injury", "PROBLEM"), _entity(text, "lisinopril", "MEDICATION")]
    uses = [(0, 3, "PROBLEM"), (5, 8, "PROBLEM")]
    found = with_shorthand(text, model, uses)
    assert [(e.text, e.label, e.source_label, e.score) for e in found] == [
        ("HTN", "PROBLEM", "shorthand", 1.0), ("CKD", "PROBLEM", "shorthand", 1.0),
        ("acute kidney injury", "PROBLEM", "Disease", 0.9), ("lisinopril", "MEDICATION", "Chemical", 0.9)]
    assert with_shorthand(text, model, []) == model


def test_shorthand_leaves_the_models_longer_entities_and_its_own_problems():
    """The model's entities reaching beyond a use stand ("CHF exacerbation", "HIV protease inhibitors"), as does its
    problem of exactly the use ("DVT"); a problem inside the use gives way ("stroke" in "mini-stroke", a TIA); a use that
    names no problem there drops a chemical inside it ("PE:" the examination)."""
    text = "CHF exacerbation on HIV protease inhibitors. DVT, had a mini-stroke. PE: clear."
    model = [_entity(text, "CHF exacerbation", "PROBLEM"), _entity(text, "HIV protease inhibitors", "MEDICATION"), _entity(text, "DVT", "PROBLEM"),
             _entity(text, "stroke", "PROBLEM"), _entity(text, "PE", "MEDICATION")]
    dvt, mini, pe = text.index("DVT"), text.index("mini-stroke"), text.index("PE:")
    found = with_shorthand(text, model, [(0, 3, "PROBLEM"), (20, 23, "PROBLEM"), (dvt, dvt + 3, "PROBLEM"), (mini, mini + 11, "PROBLEM"),
                                         (pe, pe + 2, None)])
    assert found == [*model[:3], Entity("PROBLEM", "shorthand", mini, mini + 11, "mini-stroke", 1.0)]


def test_shorthand_uses_of_a_note():
    """Problems, medications and no-entity words of the notes' lexicons, in text order; routes and PE the examination
    are uses of no label; a line of prose written all in capitals is passed over, the next line is not, nor a list of
    terms in capitals."""
    text = ("PE: clear. r/o PE, on vanc and zosyn, NTG SL prn; HTN.\nPATIENT LOST HIS CAP AND KNEE PAD\nHx of CAP.\n"
            "PMH: HTN, HLD, T2DM, NSTEMI 2019")
    uses = [(text[a:b], label) for a, b, label in shorthand_uses(text)]
    assert uses == [("PE", None), ("PE", "PROBLEM"), ("vanc", "MEDICATION"), ("zosyn", "MEDICATION"), ("NTG", "MEDICATION"),
                    ("SL", None), ("prn", None), ("HTN", "PROBLEM"), ("Hx", None), ("CAP", "PROBLEM"),
                    ("HTN", "PROBLEM"), ("HLD", "PROBLEM"), ("T2DM", "PROBLEM"), ("NSTEMI", "PROBLEM")]
    problems = [a for a, _, label in shorthand_uses(text) if label == "PROBLEM"]
    assert text.rindex("CAP") in problems and text.index("CAP AND") not in problems


def test_no_entity_words_and_medication_shorthand():
    """A route the model called a chemical is dropped; a drug it missed is added; its own drug of the use stands."""
    text = "NTG SL prn and vanc, lasix 40 mg."
    model = [_entity(text, "SL", "MEDICATION", 0.65), _entity(text, "lasix", "MEDICATION")]
    found = with_shorthand(text, model, shorthand_uses(text))
    assert [(e.text, e.label, e.source_label) for e in found] == [
        ("NTG", "MEDICATION", "shorthand"), ("vanc", "MEDICATION", "shorthand"), ("lasix", "MEDICATION", "Chemical")]


def test_an_entity_a_no_entity_word_begins_loses_it():
    """"prn hydroxyzine" and "No - lisinopril" as the model drew them are the drugs, and "Code stroke" a stroke (a route, a
    frequency, "no", "code" or an order such as "hold" is never part of a name); a laboratory word and its result are no entity ("BG 320"); a name
    joined by a hyphen is one ("K-Dur"), and other no-entity words leave an entity that reaches beyond them ("Ringer's
    lactate", "RLL pneumonia")."""
    text = ("prn hydroxyzine; No - lisinopril; K-Dur 20 mEq; Ringer's lactate; on no statin; RLL pneumonia; Code stroke;"
            " BG 320, lactate 4.1; Hold metformin.")
    model = [_entity(text, "prn hydroxyzine", "MEDICATION"), _entity(text, "No - lisinopril", "MEDICATION"),
             _entity(text, "K-Dur", "MEDICATION"), _entity(text, "Ringer's lactate", "MEDICATION"),
             _entity(text, "no", "MEDICATION", at=text.index("on no")), _entity(text, "RLL pneumonia", "PROBLEM"),
             _entity(text, "Code stroke", "PROBLEM"), _entity(text, "BG 320", "MEDICATION"),
             _entity(text, "lactate 4.1", "MEDICATION"), _entity(text, "Hold metformin", "MEDICATION")]
    found = with_shorthand(text, model, shorthand_uses(text))
    assert [(e.text, e.start) for e in found] == [
        ("hydroxyzine", 4), ("lisinopril", text.index("lisinopril")), ("K-Dur", text.index("K-Dur")),
        ("Ringer's lactate", text.index("Ringer's")), ("RLL pneumonia", text.index("RLL")), ("stroke", text.index("stroke")),
        ("metformin", text.index("metformin"))]


def test_an_entity_a_route_or_frequency_ends_loses_it():
    """"heparin SQ" and "vancomycin IV q12h" as the model drew them are the drugs; a qualifier inside a name stays."""
    text = "DVT ppx: heparin SQ. Started vancomycin IV q12h. Tylenol PRN, insulin glargine qhs."
    model = [_entity(text, "heparin SQ", "MEDICATION"), _entity(text, "vancomycin IV q12h", "MEDICATION"),
             _entity(text, "Tylenol PRN", "MEDICATION"), _entity(text, "insulin glargine qhs", "MEDICATION")]
    found = with_shorthand(text, model, shorthand_uses(text))
    assert [(e.text, e.start, e.end) for e in found if e.source_label != "shorthand"] == [
        (name, text.index(name), text.index(name) + len(name))
        for name in ("heparin", "vancomycin", "Tylenol", "insulin glargine")]


@pytest.mark.parametrize(("text", "uses"), [
    ("Potassium 4.6, sodium 131, magnesium 1.8. Glucose of 320; calcium: 8.1 mg/dL; Mg level 1.6",
     [("Potassium 4.6", None), ("sodium 131", None), ("magnesium 1.8", None), ("Glucose of 320", None),
      ("calcium: 8.1", None), ("Mg level 1.6", None)]),
    # insulin the drug, not the hormone measured or resisted
    ("Started on insulin; insulin resistance, insulin-dependent, fasting insulin 12, insulin level; insulin glargine",
     [("insulin", "MEDICATION"), ("insulin", None), ("insulin", None), ("insulin", None), ("insulin", None),
      ("insulin glargine", "MEDICATION")]),
    ("bicarb 8, AG 24; given bicarb 50 mEq IV", [("bicarb 8", None), ("AG", None), ("bicarb", "MEDICATION"), ("IV", None)]),
    # a dose, a salt, a route or nothing after the name: left to the model
    ("potassium chloride 40 mEq PO; Mg 2 g IV; calcium 1 amp; potassium 20 mEq x2; iron supplements; glucose tabs",
     [("PO", None), ("IV", None)]),
    ("Presents with altered mental status, likely hepatic encephalopathy.",
     [("altered mental status", "PROBLEM"), ("hepatic encephalopathy", "PROBLEM")]),
    ("Type 2 MI from demand ischemia; concern for variceal bleed.",
     [("Type 2 MI", "PROBLEM"), ("demand ischemia", "PROBLEM"), ("variceal bleed", "PROBLEM")]),
    # COVID-19 is a problem; its vaccines and tests are none; prophylaxis is no drug
    ("Negative for COVID-19; covid vaccine x2, COVID PCR negative; DVT ppx.",
     [("COVID-19", "PROBLEM"), ("covid", None), ("COVID", None), ("DVT", "PROBLEM"), ("ppx", None)]),
    # a section label is no entity; allergies elsewhere are left to the model
    ("Allergies: penicillin.\nALLERGIES : none. Has seasonal allergies.", [("Allergies", None), ("ALLERGIES", None)]),
    ("72M with HTN, DM2 and CKD presents with SOB.", [("HTN", "PROBLEM"), ("DM2", "PROBLEM"), ("CKD", "PROBLEM"), ("SOB", "PROBLEM")]),
    ("AKI on CKD; a-fib, a fib and Afib; htn.", [("AKI", "PROBLEM"), ("CKD", "PROBLEM"), ("a-fib", "PROBLEM"), ("a fib", "PROBLEM"),
                                               ("Afib", "PROBLEM"), ("htn", "PROBLEM")]),
    ("N/V/D x2 days, cdiff pending, T2DM w/ hypoK.", [("N/V/D", "PROBLEM"), ("cdiff", "PROBLEM"), ("T2DM", "PROBLEM"), ("hypoK", "PROBLEM")]),
    ("Tachycardic, r/o PE. Hx of PEs. CTA: bilateral segmental PEs.",
     [("PE", "PROBLEM"), ("Hx", None), ("PEs", "PROBLEM"), ("CTA", None), ("bilateral segmental PEs", "PROBLEM")]),
    # PE the physical examination and the ear tube: no entity
    ("PE: lungs clear. On PE abdomen soft. PE unremarkable. s/p PE tubes. PE negative for JVD. PE is notable for rales.",
     [("PE", None)] * 6),
    # ambiguous ones left out of the lists, and capitalised terms only as written
    ("Tmax 37.2, AF, VSS. 98% on RA. CA 19-9 normal. Seen by CM. mi casa, dm me, pe class.", [("AF", None)]),
    # AF, afebrile, among vital signs or kept a while is no entity (not_entity_patterns); AF elsewhere is atrial fibrillation
    ("SpO2 98% on RA, AF, VSS.\nT 36.8, HR 88, AF\nAF, HDS, NAD. HR 140, AF with RVR. History of AF on apixaban.",
     [("SpO2", None), ("AF", None), ("HR", None), ("AF", None), ("AF", None), ("HR", None), ("AF", "PROBLEM"), ("RVR", None),
      ("AF", "PROBLEM")]),
    ("Remains AF overnight; has been AF x 48h. Went into AF overnight; AF and VSS. Still in AF.",
     [("AF", None), ("AF", None), ("AF", "PROBLEM"), ("AF", None), ("AF", "PROBLEM")]),
    # breathing machines and their settings, a differential and a treatment are no entity; a CT's small vessel disease and
    # "resp failure" are problems, read with their modifiers
    ("Requiring HFNC 40L/60%, then BiPAP. Ddx includes PE. Diuresis with lasix. Chronic small vessel ischemic changes. "
     "Acute hypercapnic resp failure.",
     [("HFNC 40L/60%", None), ("BiPAP", None), ("Ddx", None), ("PE", "PROBLEM"), ("Diuresis", None), ("lasix", "MEDICATION"),
      ("Chronic small vessel ischemic changes", "PROBLEM"), ("Acute hypercapnic resp failure", "PROBLEM")]),
    ("CXR without consolidation. EKG: NSR. TTE, KUB. Positive for palpitations.",
     [("CXR", None), ("EKG", None), ("TTE", None), ("KUB", None), ("palpitations", "PROBLEM")]),
    ("Allergic to PCN; allergy to sulfa. NKDA. 3yo with otitis media. Pressure injury stage 2; stage 4 CKD.",
     [("Allergic", None), ("PCN", "MEDICATION"), ("allergy", None), ("NKDA", None), ("otitis media", "PROBLEM"), ("Pressure injury stage 2", "PROBLEM"),
      ("stage 4 CKD", "PROBLEM")]),
    ("Trauma: MVC. PEA arrest, ROSC after CPR. Hypertensive emergency with BP 230/130, MAP 160. Acetaminophen toxicity.",
     [("Trauma", None), ("PEA arrest", "PROBLEM"), ("ROSC", None), ("CPR", None), ("Hypertensive emergency", "PROBLEM"), ("BP", None),
      ("MAP", None), ("Acetaminophen toxicity", "PROBLEM")]),
    ("Bacteremia with GNR; GPCs in clusters. ROSC after 10 minutes. Rhabdo with AKI.",
     [("GNR", None), ("GPCs", None), ("ROSC", None), ("Rhabdo", "PROBLEM"), ("AKI", "PROBLEM")]),
    ("A/P: Inferior STEMI.", [("Inferior STEMI", "PROBLEM")]),  # the wall: I21.19
    ("Ext: trace BLE edema. Continue ceftriaxone/azithro; metro and clinda.",
     [("BLE edema", "PROBLEM"), ("Continue", None), ("azithro", "MEDICATION"), ("metro", "MEDICATION"), ("clinda", "MEDICATION")]),
    # a limb's side, before or after the problem, for the code names it
    ("DVT of the left lower extremity. Acute RLE DVT. Left leg DVT; edema in bilateral lower extremities.",
     [("DVT of the left lower extremity", "PROBLEM"), ("Acute RLE DVT", "PROBLEM"), ("Left leg DVT", "PROBLEM"),
      ("edema in bilateral lower extremities", "PROBLEM")]),
    ("Post-op ileus; wound dehiscence; anastomotic leak. Suicide attempt by overdose. EtOH intoxication. Opioid overdose.",
     [("Post-op ileus", "PROBLEM"), ("wound dehiscence", "PROBLEM"), ("anastomotic leak", "PROBLEM"), ("Suicide attempt", "PROBLEM"),
      ("overdose", "PROBLEM"), ("EtOH intoxication", "PROBLEM"), ("Opioid overdose", "PROBLEM")]),
    # symptoms and a withdrawal the model missed or made a drug ("benzo")
    ("Chills, rigors, diaphoretic; diaphoresis. Benzo withdrawal.",
     [("Chills", "PROBLEM"), ("rigors", "PROBLEM"), ("diaphoretic", "PROBLEM"), ("diaphoresis", "PROBLEM"),
      ("Benzo withdrawal", "PROBLEM")]),
    ("WordsHTN and HTNs and DM2x are not uses", []),
    # ASA the aspirin, not the anaesthetists' class
    ("Continue ASA, statin. ASA 81 mg daily. ASA class III, Mallampati 2. ASA 2E. ASA II.",
     [("Continue", None), ("ASA", "MEDICATION"), ("ASA", "MEDICATION"), ("ASA", None), ("Mallampati", None), ("ASA", None),
      ("ASA", None)]),
    # flag terms and the symptoms of every note, whatever the model reads in a long note; stroke volume is no stroke
    ("New stroke on CT; sepsis; stroke volume 60 mL; heat stroke. Productive cough, cough syrup; fatigue, shortness of breath, "
     "decreased appetite.",
     [("stroke", "PROBLEM"), ("sepsis", "PROBLEM"), ("stroke", None), ("heat stroke", "PROBLEM"), ("Productive cough", "PROBLEM"),
      ("cough", None), ("fatigue", "PROBLEM"), ("shortness of breath", "PROBLEM"), ("decreased appetite", "PROBLEM")]),
    # the NIH stroke scale of a neurological examination is no stroke
    ("NIH stroke scale 0. Acute stroke. Stroke mimics considered.", [("stroke", None), ("Acute stroke", "PROBLEM"), ("Stroke", None)]),
    # a chest film's findings, with the side and kind their code depends on
    ("Small right pleural effusion. Tension pneumothorax. No pneumothorax.",
     [("right pleural effusion", "PROBLEM"), ("Tension pneumothorax", "PROBLEM"), ("No", None), ("pneumothorax", "PROBLEM")]),
    # diabetes read with what codes it; a psychiatric note's hallucinations
    ("Uncontrolled diabetes; DM type 1; diabetes insipidus. +AH, +VH.",
     [("Uncontrolled diabetes", "PROBLEM"), ("DM type 1", "PROBLEM"), ("diabetes insipidus", "PROBLEM"), ("AH", "PROBLEM"),
      ("VH", "PROBLEM")]),
    ("Has high blood pressure, had a mini-stroke; heart attack in 2015.", [("high blood pressure", "PROBLEM"), ("mini-stroke", "PROBLEM"),
                                                                         ("heart attack", "PROBLEM")]),
    # an ECG's depressions and elevations are no depression; a fever is a problem, as is cannabis use
    ("2 mm ST elevations in II, III with reciprocal depressions in I; lateral ST depression. Febrile to 39.1. Cannabis use.",
     [("ST elevations", None), ("reciprocal depressions", None), ("lateral ST depression", None), ("Febrile", "PROBLEM"),
      ("Cannabis use", "PROBLEM")]),
    # procedures and radiotherapy are no entity; a cancer's spread to a site is a problem
    ("Brain mets s/p SRS. Thoracentesis and thrombectomy done.", [("Brain mets", "PROBLEM"), ("SRS", None),
                                                                  ("Thoracentesis", None), ("thrombectomy", None)]),
    # a note's title line, an image's body part, a tetanus shot, urine output: no entity
    ("RN note 0300: UOP 200 mL. CT head neg for bleed. Tetanus updated.", [("RN note 0300", None), ("UOP", None),
                                                                           ("head", None), ("neg", None), ("Tetanus", None)]),
    # a fever is a problem however the note writes it; "cont" (continue) is an order, no part of a drug's name
    ("Fever, fevers. Cont amlodipine.", [("Fever", "PROBLEM"), ("fevers", "PROBLEM"), ("Cont", None)]),
    # "septic" is sepsis before a word of course or cause, not before what it qualifies (a joint, a tank)
    ("Remains septic on 2 pressors; septic knee; septic shock. Troponins neg.",
     [("septic", "PROBLEM"), ("septic", None), ("septic shock", "PROBLEM"), ("Troponins", None), ("neg", None)]),
    # tender to palpation is no TTP; DIC is a problem, its laboratory panel none
    ("Suprapubic TTP, RUQ TTP. DIC panel pending; overt DIC.", [("TTP", None), ("TTP", None), ("DIC", None), ("DIC", "PROBLEM")]),
    # one who never smoked is no smoker
    ("Non-smoker; nonsmoker; smoker.", [("Non-smoker", None), ("nonsmoker", None), ("smoker", "PROBLEM")]),
    # the verb "hit" is none, HIT in capitals is left to the model; an allergy list's foods are no drugs
    ("Hit by a car, hit his head; HIT antibody sent.", [("Hit", None), ("hit", None)]),
    ("Allergies: peanuts, shellfish, latex", [("Allergies", None), ("peanuts", None), ("shellfish", None), ("latex", None)]),
    # a hepatitis is a problem, its vaccine and the immunity it gives are none
    ("Hep C, hep B. Hep B vaccine series complete; hep B sAb positive.", [("Hep C", "PROBLEM"), ("hep B", "PROBLEM"),
                                                                         ("Hep B", None), ("hep B", None)]),
])
def test_problem_terms_of_a_note(text, uses):
    """The problem lexicon's terms, found as whole words with their case rules; a use an exception matches (PE the
    examination) has no label."""
    assert [(text[a:b], label) for a, b, label in shorthand_uses(text)] == uses


@pytest.mark.parametrize(("text", "problem", "expands"), [
    ("Admitted with ARF requiring intubation, on vent.", "ARF", "acute respiratory failure"),
    ("ARF, Cr 3.1 from baseline 1.0; renal consulted.", "ARF", None),  # its abbreviations entry: acute renal failure
    ("Hx of ARF.", "ARF", None),  # no word of either: the entry
    # the words of its own sentence only
    ("On BiPAP overnight. ARF, Cr 3.1 from 1.0.", "ARF", None),
    ("12 yo with spastic quadriplegic CP. G-tube fed.", "spastic quadriplegic CP", "spastic quadriplegic cerebral palsy"),
    ("CP radiating to the left arm, troponin pending.", "CP", None),
    ("Chronic cough likely from PND due to allergic rhinitis.", "PND", "postnasal drip"),
    ("Reports orthopnea and PND.", "PND", None),  # paroxysmal nocturnal dyspnea
    # a brain bleed of an injury is no stroke (S06, where I62.00 raised the stroke flag)
    ("MVC with TBI and small SDH, neurosurgery consulted.", "SDH", "traumatic subdural hemorrhage"),
    ("Fell at home, CT with acute subdural hematoma.", "acute subdural hematoma", "acute traumatic subdural hemorrhage"),
    ("Spontaneous SDH in setting of anticoagulation.", "SDH", None),
])
def test_a_term_of_two_meanings_takes_the_one_its_sentence_gives(text, problem, expands):
    """with_senses: "ARF requiring intubation" is acute respiratory failure (its own flag), "ARF, Cr 3.1" acute renal
    failure, as the coder's abbreviations entry says; a short form the text defines keeps its long form."""
    found = with_senses(text, [_entity(text, problem, "PROBLEM")])
    assert [(e.text, e.expands) for e in found] == [(problem, expands)]
    defined = replace(_entity(text, problem, "PROBLEM"), expands="acute renal failure")
    assert with_senses(text, [defined]) == [defined]


def test_a_sense_is_one_of_the_terms_meanings():
    """The senses file names meanings of a problem term, its abbreviations entry one of them."""
    from processors.icd10cm import Shorthand

    with pytest.raises(ValueError, match="ARF"):
        Shorthand(abbreviations={"ARF": "acute renal failure"}, drop=[], patterns=[], problems=["ARF"],
                  senses={"ARF": {"acute respiratory failure": ["intubated"], "acute rheumatic fever": ["strep"]}})
    shorthand = Shorthand(abbreviations={"ARF": "acute renal failure"}, drop=[], patterns=[], problems=["ARF"],
                          senses={"ARF": {"acute renal failure": ["creatinine"], "acute respiratory failure": ["intubated", "O2"]}})
    assert shorthand.sense("ARF", "ARF, intubated, creatinine 3") is None  # a tie: the entry
    assert shorthand.sense("ARF", "ARF, intubated, 100% O2, creatinine 3") == "acute respiratory failure"
    assert shorthand.sense("CKD", "intubated") is None


def test_note_lexicons_do_not_overlap():
    """A term is a problem, a medication, no entity or a qualifier, never two of them (one lexicon reads them all)."""
    import yaml

    from processors.icd10cm import default_shorthand
    from processors.ner import MEDICATION_SHORTHAND_FILE

    data = yaml.safe_load(MEDICATION_SHORTHAND_FILE.read_text())
    lists = [set(default_shorthand().problems), *(set(map(str, data[k])) for k in ("medications", "not_entities", "qualifiers"))]
    assert not any(a & b for i, a in enumerate(lists) for b in lists[i + 1 :])
    # a test's name may also be a medication's ("bicarb": a drug unless a result follows), nothing else
    assert not set(map(str, data["results"])) & (lists[0] | lists[2] | lists[3])


def test_the_adversarial_push_follows_the_gradient_by_its_norm_per_token():
    """FGM's push: along each sentence's gradient, zero on padding, norm * sqrt(tokens) per sentence."""
    import torch

    from processors.ner_training import adversarial_perturbation

    torch.manual_seed(0)
    grad = torch.randn(3, 6, 4)
    mask = torch.tensor([[1] * 6, [1] * 4 + [0] * 2, [1] * 1 + [0] * 5])
    push = adversarial_perturbation(grad, mask, 0.5)
    assert torch.all(push[mask == 0] == 0)
    for row, n in enumerate(mask.sum(1).tolist()):
        kept = push[row, :n].flatten()
        assert abs(kept.norm().item() - 0.5 * n ** 0.5) < 1e-5
        assert torch.nn.functional.cosine_similarity(kept, grad[row, :n].flatten(), dim=0).item() > 0.9999
