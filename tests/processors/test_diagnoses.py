"""ICD-10-CM in the envelope: which mentions are coded, provisional Conditions with evidence (valid R4),
and the message's own Conditions: ICD-10 kept, text-only or other systems given a mapped coding."""

from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from clinstream.envelope import CodeMatch, Entity, Envelope, ModelRef, Narrative, SourceRecord
from processors.diagnoses import (
    MATCH_EXTENSION,
    SPAN_EXTENSION,
    SYSTEM,
    coded_text,
    mentions_to_code,
    stated_diabetes_type,
    with_diagnoses,
)

AT = "2026-01-01T10:00:00+00:00"
CODER = ModelRef(task="icd10cm", name="icd10cm-minilm", version="test")
NOTE = "Assessment: community acquired pneumonia. Possible sepsis. No stroke. Mother had breast cancer."
NID = "DocumentReference/d1#content[0].attachment"
CODES = {
    "community acquired pneumonia": [CodeMatch(code="J18.9", display="Pneumonia, unspecified organism", score=0.83)],
    "sepsis": [CodeMatch(code="A41.9", display="Sepsis, unspecified organism", score=1.0)],
    "Type 2 diabetes": [CodeMatch(code="E11.9", display="Type 2 diabetes mellitus without complications", score=0.91)],
    "stroke": [CodeMatch(code="I63.9", display="Cerebral infarction, unspecified", score=1.0)],
}


def entity(text: str, assertion: str, label: str = "PROBLEM") -> Entity:
    start = NOTE.index(text)
    return Entity(narrative_id=NID, label=label, source_label="Disease", start=start, end=start + len(text), text=text,
                  score=0.9, assertion=assertion)


def envelope(conditions=(), entities=None) -> Envelope:
    entries = [
        {"fullUrl": "urn:uuid:p1", "resource": {"resourceType": "Patient", "id": "p1"}},
        {"fullUrl": "urn:uuid:e1", "resource": {"resourceType": "Encounter", "id": "e1", "status": "in-progress",
                                                 "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}},
        {"fullUrl": "urn:uuid:d1", "resource": {"resourceType": "DocumentReference", "id": "d1", "status": "current",
                                                 "content": [{"attachment": {"contentType": "text/plain"}}]}},
    ]
    for i, code in enumerate(conditions):
        entries.append({"fullUrl": f"urn:uuid:c{i}", "resource": {"resourceType": "Condition", "id": f"c{i}", "code": code,
                                                                 "subject": {"reference": "urn:uuid:p1"}}})
    if entities is None:
        entities = [entity("community acquired pneumonia", "present"), entity("sepsis", "possible"),
                    entity("stroke", "negated"), entity("breast cancer", "family")]
    return Envelope(message_id="m1", source_format="hl7v2", message_type="MDM^T02", patient_key="H|1", patient_ref="urn:uuid:p1",
                    encounter_ref="urn:uuid:e1", observed_at=AT, received_at=AT, normalized_at=AT,
                    source=SourceRecord(topic="t", partition=0, offset=0),
                    bundle={"resourceType": "Bundle", "type": "message", "entry": entries},
                    narratives=[Narrative(id=NID, resource="DocumentReference/d1", element="content[0].attachment", text=NOTE)],
                    entities=entities)


def test_only_present_or_possible_problems_are_coded():
    """Present and possible PROBLEM mentions get candidates; negated, family and medications do not."""
    env = envelope(entities=[*envelope().entities, entity("pneumonia", "present", label="MEDICATION")])
    assert mentions_to_code([env]) == ["community acquired pneumonia", "sepsis"]
    coded = with_diagnoses(env, CODES, CODER)
    assert {e.text: [c.code for c in e.icd10cm] for e in coded.entities} == {
        "community acquired pneumonia": ["J18.9"], "sepsis": ["A41.9"], "stroke": [], "breast cancer": [], "pneumonia": []}


def test_conditions_are_provisional_with_evidence_and_validate():
    """One provisional Condition per coded problem: ICD-10-CM coding, patient, encounter, evidence span; R4 valid."""
    env = with_diagnoses(envelope(), CODES, CODER)
    added = [e for e in env.bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert len(added) == 2
    pneumonia = next(e["resource"] for e in added if e["resource"]["code"]["coding"][0]["code"] == "J18.9")
    assert pneumonia["verificationStatus"]["coding"][0]["code"] == "provisional"
    assert pneumonia["clinicalStatus"]["coding"][0]["code"] == "active"
    assert pneumonia["code"]["coding"][0]["system"] == SYSTEM and pneumonia["subject"] == {"reference": "urn:uuid:p1"}
    assert pneumonia["encounter"] == {"reference": "urn:uuid:e1"}
    evidence = pneumonia["evidence"][0]
    assert evidence["detail"][0]["reference"] == "urn:uuid:d1"
    span = {x["url"]: next(v for k, v in x.items() if k.startswith("value")) for x in evidence["extension"][0]["extension"]}
    assert evidence["extension"][0]["url"] == SPAN_EXTENSION
    assert NOTE[span["start"]:span["end"]] == span["text"] == "community acquired pneumonia"
    sepsis = next(e["resource"] for e in added if e["resource"]["code"]["coding"][0]["code"] == "A41.9")
    assert "clinicalStatus" not in sepsis  # only possible: no claim that it is active
    Bundle.model_validate(env.bundle)


def test_condition_ids_are_stable_and_one_per_code():
    """Two mentions of one code make one Condition with two evidence items; replay gives the same ids."""
    note_entities = [entity("community acquired pneumonia", "present"), entity("sepsis", "present")]
    codes = {**CODES, "sepsis": CODES["community acquired pneumonia"]}
    first, again = ([e["resource"] for e in with_diagnoses(envelope(entities=note_entities), codes, CODER).bundle["entry"]
                     if e["resource"]["resourceType"] == "Condition"] for _ in range(2))
    assert len(first) == 1 and len(first[0]["evidence"]) == 2
    assert first == again


def test_sent_icd10_conditions_keep_their_code():
    """A DG1/PRB Condition coded in ICD-10-CM (or WHO ICD-10) is left exactly as sent and not duplicated."""
    sent = {"coding": [{"system": SYSTEM, "code": "J18.9", "display": "Pneumonia"}], "text": "community acquired pneumonia"}
    env = envelope(conditions=[sent])
    assert mentions_to_code([env]) == ["community acquired pneumonia", "sepsis"]
    out = with_diagnoses(env, CODES, CODER)
    conditions = [e["resource"] for e in out.bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert conditions[0]["code"] == sent
    assert [c["code"]["coding"][0]["code"] for c in conditions[1:]] == ["A41.9"]  # J18.9 is stated already


def test_text_only_and_other_system_conditions_get_a_mapped_coding():
    """A Condition with only text, or coded in another system, gains the best ICD-10-CM coding beside what was sent."""
    local = {"coding": [{"system": "urn:local:dx", "code": "DM2", "display": "Type 2 diabetes"}]}
    text_only = {"text": "stroke"}
    env = envelope(conditions=[local, text_only], entities=[])
    assert mentions_to_code([env]) == ["Type 2 diabetes", "stroke"]
    out = with_diagnoses(env, CODES, CODER)
    c0, c1 = [e["resource"] for e in out.bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
    assert c0["code"]["coding"][0] == local["coding"][0]
    assert c0["code"]["coding"][1]["code"] == "E11.9" and c0["code"]["coding"][1]["system"] == SYSTEM
    assert c0["code"]["coding"][1]["extension"][0]["url"] == MATCH_EXTENSION
    assert c1["code"]["coding"][0]["code"] == "I63.9" and c1["code"]["text"] == "stroke"
    Bundle.model_validate(out.bundle)


def test_the_coder_is_named_only_where_it_coded():
    """A message with nothing to code (no entities, no uncoded Conditions) comes back as it came; one with something
    lists the coder in `models`."""
    env = envelope(entities=[])
    assert mentions_to_code([env]) == []
    assert with_diagnoses(env, CODES, CODER) == env
    coded = with_diagnoses(envelope(), CODES, CODER)
    assert CODER in coded.models
    assert [c.code for e in coded.entities for c in e.icd10cm] == ["J18.9", "A41.9"]


def test_a_short_form_the_note_defines_is_coded_by_its_long_form():
    """"CAP" after "community acquired pneumonia (CAP)" is coded as the long form, not guessed from three letters."""
    cap = Entity(narrative_id=NID, label="PROBLEM", source_label="Disease", start=0, end=3, text="CAP", score=0.9, assertion="present",
                 expands="community acquired pneumonia")
    env = envelope(entities=[cap, entity("sepsis", "present")])
    assert mentions_to_code([env]) == ["community acquired pneumonia", "sepsis"]
    coded = with_diagnoses(env, CODES, CODER)
    assert [(e.text, [c.code for c in e.icd10cm]) for e in coded.entities] == [("CAP", ["J18.9"]), ("sepsis", ["A41.9"])]


def problem(text: str, assertion: str = "present") -> Entity:
    return Entity(narrative_id=NID, label="PROBLEM", source_label="Disease", start=0, end=len(text), text=text, score=0.9,
                  assertion=assertion)


def test_the_stated_diabetes_type_is_read_through_the_shorthand():
    """'T1DM', 'IDDM', 'type I diabetes', 'DM type 1' state type 1; both types or none state nothing."""
    for texts, expected in [(["T1DM"], "1"), (["IDDM"], "1"), (["type I diabetes"], "1"), (["DM type 1"], "1"),
                            (["sepsis", "DM2"], "2"), (["diabetes mellitus, type 2"], "2"), (["DKA"], None),
                            (["T1DM", "T2DM"], None), (["diabetes"], None)]:
        assert stated_diabetes_type(texts) == expected, texts


def test_an_untyped_diabetic_complication_takes_the_stated_type():
    """ICD-10-CM codes a diabetic complication by type and takes an undocumented type as type 2 (E11.10 for "DKA");
    a note that says "T1DM" and then "DKA" means E10.10. Other kinds of diabetes keep their words."""
    assert coded_text(problem("DKA"), "1") == "type 1 diabetic ketoacidosis"
    assert coded_text(problem("uncontrolled diabetes"), "1") == "uncontrolled type 1 diabetes"
    assert coded_text(problem("diabetic neuropathy"), "1") == "type 1 diabetic neuropathy"
    assert coded_text(problem("DM"), "1") == "type 1 diabetes mellitus"
    for text in ("diabetes insipidus", "gestational diabetes", "steroid-induced diabetes", "prediabetes", "T2DM", "sepsis"):
        assert coded_text(problem(text), "1") == text
    assert coded_text(problem("DKA")) == "DKA"


def test_the_type_comes_from_the_patients_own_problems_and_conditions():
    """A present or historical "T1DM" types the note's "DKA"; a relative's does not, nor a doubt; a sent Condition does."""
    for stated, assertion, expected in [("T1DM", "present", "type 1 diabetic ketoacidosis"),
                                        ("hx of T1DM", "historical", "type 1 diabetic ketoacidosis"),
                                        ("T1DM", "family", "DKA"), ("T1DM", "possible", "DKA")]:
        env = envelope(entities=[problem(stated, assertion), problem("DKA")])
        assert mentions_to_code([env])[-1] == expected, (stated, assertion)
    env = envelope(conditions=[{"text": "Type 1 diabetes mellitus"}], entities=[problem("DKA")])
    assert "type 1 diabetic ketoacidosis" in mentions_to_code([env])
    e10 = {"coding": [{"system": SYSTEM, "code": "E10.9"}]}  # a DG1's code with no display
    assert mentions_to_code([envelope(conditions=[e10], entities=[problem("DKA")])]) == ["type 1 diabetic ketoacidosis"]
    coded = with_diagnoses(envelope(entities=[problem("T1DM"), problem("DKA")]), {
        "T1DM": [CodeMatch(code="E10.9", display="Type 1 diabetes mellitus without complications", score=1.0)],
        "type 1 diabetic ketoacidosis": [CodeMatch(code="E10.10", display="Type 1 diabetes mellitus with ketoacidosis without coma", score=0.9)],
        "DKA": [CodeMatch(code="E11.10", display="Type 2 diabetes mellitus with ketoacidosis without coma", score=0.9)]}, CODER)
    assert [e.icd10cm[0].code for e in coded.entities] == ["E10.9", "E10.10"]


def test_a_sent_condition_coded_as_text_takes_the_stated_type():
    """A DG1 "Diabetic ketoacidosis" with no code, in a message whose note says T1DM, is coded as type 1's (E10.10, where
    ICD-10-CM's default type would give E11.10); the sent text stays as sent."""
    dka = {"text": "Diabetic ketoacidosis"}
    env = envelope(conditions=[dka], entities=[problem("T1DM")])
    assert mentions_to_code([env]) == ["T1DM", "type 1 diabetic ketoacidosis"]
    out = with_diagnoses(env, {"type 1 diabetic ketoacidosis": [
        CodeMatch(code="E10.10", display="Type 1 diabetes mellitus with ketoacidosis without coma", score=0.9)]}, CODER)
    sent = next(e["resource"] for e in out.bundle["entry"] if e["resource"].get("id") == "c0")
    assert [c["code"] for c in sent["code"]["coding"]] == ["E10.10"] and sent["code"]["text"] == "Diabetic ketoacidosis"
