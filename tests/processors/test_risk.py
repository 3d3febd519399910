"""Risk over messages: state merges by time, window, NLP flags, alert ids, FHIR resources."""

from clinstream.envelope import Entity, Envelope, Narrative, SourceRecord
from clinstream.settings import DEFAULT_HIGH_RISK_CONDITIONS
from processors.risk import PatientState, alert_for, assess, risk_resources

LOINC = {"respiratory_rate": "9279-1", "spo2": "59408-5", "systolic_bp": "8480-6", "heart_rate": "8867-4", "temperature_c": "8310-5", "o2": "3151-8"}
HIGH = {"respiratory_rate": 26, "spo2": 90, "systolic_bp": 95, "heart_rate": 125, "temperature_c": 39.3, "o2": 4}
NORMAL = {"respiratory_rate": 16, "spo2": 97, "systolic_bp": 125, "heart_rate": 72, "temperature_c": 36.8, "o2": 0}


def envelope(mid: str, at: str, vitals: dict | None = None, note: str | None = None, entities=()) -> Envelope:
    entries = []
    for i, (name, value) in enumerate((vitals or {}).items()):
        entries.append({"fullUrl": f"urn:uuid:{mid}-{i}", "resource": {
            "resourceType": "Observation", "id": f"{mid}-{i}", "status": "final", "effectiveDateTime": at,
            "code": {"coding": [{"system": "http://loinc.org", "code": LOINC[name]}]},
            "valueQuantity": {"value": value, "unit": "x"}}})
    narratives = [Narrative(id="DocumentReference/d#content[0].attachment", resource="DocumentReference/d", element="content[0].attachment", text=note)] if note else []
    return Envelope(message_id=mid, source_format="hl7v2", message_type="ORU^R01", patient_key="H|1", patient_ref="urn:uuid:p",
                    encounter_ref=None, observed_at=at, received_at=at, normalized_at=at,
                    source=SourceRecord(topic="t", partition=0, offset=0), bundle={"resourceType": "Bundle", "type": "message", "entry": entries},
                    narratives=narratives, entities=list(entities))


def run(env, state=None):
    return assess(env, state or PatientState(), conditions=DEFAULT_HIGH_RISK_CONDITIONS, window_hours=24)


def test_high_vitals_raise_news2_high():
    """A full set of deranged vitals scores NEWS2 high and raises news2_high with evidence."""
    risk, state = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    assert risk.news2.band == "high" and [f.name for f in risk.raised] == ["news2_high"]
    assert "news2_high" in risk.active and risk.raised[0].evidence[0].startswith("NEWS2 ")
    assert "consciousness" in risk.news2.missing


def test_older_message_never_overwrites_newer_values():
    """An out-of-order older observation does not replace a newer one; replay gives the same state."""
    _, s1 = run(envelope("m2", "2026-01-01T12:00:00+00:00", NORMAL))
    risk, s2 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH), s1)
    assert risk.news2.band == "low" and s2.vitals == s1.vitals
    _, s3 = run(envelope("m2", "2026-01-01T12:00:00+00:00", NORMAL), s2)
    assert s3.to_json() == s2.to_json()


def test_stale_values_leave_the_window():
    """Values older than the window are reported missing."""
    _, s1 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    risk, _ = run(envelope("m2", "2026-01-02T12:00:00+00:00", {"heart_rate": 80}), s1)
    assert risk.news2.inputs == {"heart_rate": 80.0} and "respiratory_rate" in risk.news2.missing


def test_nlp_flag_only_when_present():
    """A present PROBLEM mention of sepsis flags; a negated one does not."""
    note = "Assessment: sepsis. No evidence of stroke."
    ents = [Entity(narrative_id="DocumentReference/d#content[0].attachment", label="PROBLEM", source_label="Disease", start=12, end=18, text="sepsis", score=0.9, assertion="present"),
            Entity(narrative_id="DocumentReference/d#content[0].attachment", label="PROBLEM", source_label="Disease", start=36, end=42, text="stroke", score=0.9, assertion="negated")]
    env = envelope("n1", "2026-01-01T10:00:00+00:00", note=note, entities=ents)
    risk, state = run(env)
    assert [f.name for f in risk.raised] == ["sepsis"] and risk.active == ["sepsis"] and risk.news2 is None
    assert '"sepsis"' in risk.raised[0].evidence[0]
    alert = alert_for(env, risk, "2026-01-01T10:00:01+00:00")
    assert alert.flags == ["sepsis"] and alert.alert_id == alert_for(env, risk, "later").alert_id


def test_no_flag_no_alert_and_resources():
    """A normal set raises nothing: no alert, but a RiskAssessment is still produced."""
    env = envelope("m1", "2026-01-01T10:00:00+00:00", NORMAL)
    risk, _ = run(env)
    assert risk.raised == [] and alert_for(env, risk, "x") is None
    kinds = [e["resource"]["resourceType"] for e in risk_resources(env, risk)]
    assert kinds == ["RiskAssessment"]


def test_only_present_mentions_flag_unless_possible_is_asked_for():
    """Possible, historical, family and hypothetical mentions raise nothing; possible ones do with risk_on_possible."""
    note = "Rule out sepsis. History of stroke. Mother had a myocardial infarction. Return if pulmonary embolism."
    nid = "DocumentReference/d#content[0].attachment"
    ents = [Entity(narrative_id=nid, label="PROBLEM", source_label="Disease", start=note.index(t), end=note.index(t) + len(t),
                   text=t, score=0.9, assertion=a)
            for t, a in [("sepsis", "possible"), ("stroke", "historical"), ("myocardial infarction", "family"),
                         ("pulmonary embolism", "hypothetical")]]
    env = envelope("p1", "2026-01-01T10:00:00+00:00", note=note, entities=ents)
    risk, state = run(env)
    assert risk.raised == [] and risk.active == [] and state.nlp_flags == {}
    risk, _ = assess(env, PatientState(), conditions=DEFAULT_HIGH_RISK_CONDITIONS, window_hours=24, risk_on_possible=True)
    assert [f.name for f in risk.raised] == ["sepsis"] and risk.active == ["sepsis"]


def test_risk_on_possible_setting(monkeypatch):
    """CLINSTREAM_RISK_ON_POSSIBLE reaches the settings object; off by default."""
    from clinstream.settings import Settings

    assert Settings().risk_on_possible is False
    monkeypatch.setenv("CLINSTREAM_RISK_ON_POSSIBLE", "true")
    assert Settings().risk_on_possible is True


def _with_condition(env: Envelope, icd10: str) -> Envelope:
    condition = {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10}]},
                 "clinicalStatus": {"coding": [{"code": "active"}]}, "verificationStatus": {"coding": [{"code": "confirmed"}]}}
    bundle = {**env.bundle, "entry": [*env.bundle["entry"], {"fullUrl": "urn:uuid:c1", "resource": condition}]}
    return env.model_copy(update={"bundle": bundle})


def test_coded_hypercapnic_failure_puts_the_patient_on_spo2_scale_2():
    """A J96.12 Condition moves NEWS2 to SpO2 scale 2 for this and later messages: 90 % on air scores 0, not 3."""
    scale2 = ["J96.02", "J96.12", "J96.22", "J96.92"]
    vitals = {**NORMAL, "spo2": 90}
    risk, state = assess(_with_condition(envelope("s1", "2026-01-01T10:00:00+00:00", vitals), "J96.12"), PatientState(),
                         conditions=DEFAULT_HIGH_RISK_CONDITIONS, window_hours=24, scale2_icd10=scale2)
    assert (risk.news2.scale, risk.news2.components["spo2"]) == (2, 0) and state.spo2_scale2["code"] == "J96.12"
    later, _ = assess(envelope("s2", "2026-01-01T11:00:00+00:00", vitals), state, conditions=DEFAULT_HIGH_RISK_CONDITIONS,
                      window_hours=24, scale2_icd10=scale2)
    assert later.news2.scale == 2 and "scale 2" in risk_resources(envelope("s2", "2026-01-01T11:00:00+00:00"), later)[0]["resource"]["method"]["text"]
    scale1, _ = run(_with_condition(envelope("s1", "2026-01-01T10:00:00+00:00", vitals), "J96.12"))  # no prefixes: scale 1
    assert (scale1.news2.scale, scale1.news2.components["spo2"]) == (1, 3)


def test_laboratory_inputs_are_kept_but_do_not_raise_news2():
    """A WBC-only message is kept in the state for the other scores, never re-raises NEWS2, and is no NEWS2 input."""
    _, s1 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    lab = envelope("m2", "2026-01-01T10:30:00+00:00")
    lab = lab.model_copy(update={"bundle": {**lab.bundle, "entry": [{"fullUrl": "urn:uuid:w", "resource": {
        "resourceType": "Observation", "id": "w", "status": "final", "effectiveDateTime": "2026-01-01T10:30:00+00:00",
        "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]}, "valueQuantity": {"value": 15.2, "unit": "10*3/uL"}}}]}})
    risk, s2 = run(lab, s1)
    assert risk.raised == [] and risk.news2.band == "high" and "news2_high" in risk.active
    assert s2.vitals["wbc"]["value"] == 15.2 and "wbc" not in risk.news2.inputs
