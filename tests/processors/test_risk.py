"""Risk over messages: state merges by time, window, scores, critical labs, NLP flags, alert episodes, FHIR resources."""

from clinstream.envelope import CodeMatch, Entity, Envelope, Narrative, SourceRecord
from clinstream.settings import DEFAULT_HIGH_RISK_ICD10
from processors.risk import PatientState, RiskConfig, assess, publishable, risk_resources

LOINC = {"respiratory_rate": "9279-1", "spo2": "59408-5", "systolic_bp": "8480-6", "heart_rate": "8867-4", "temperature_c": "8310-5", "o2": "3151-8",
         "potassium": "2823-3"}
HIGH = {"respiratory_rate": 26, "spo2": 90, "systolic_bp": 95, "heart_rate": 125, "temperature_c": 39.3, "o2": 4}
MEDIUM = {"respiratory_rate": 22, "spo2": 93, "systolic_bp": 125, "heart_rate": 100, "temperature_c": 37.0, "o2": 0}  # 2+2+1 = 5
NORMAL = {"respiratory_rate": 16, "spo2": 97, "systolic_bp": 125, "heart_rate": 72, "temperature_c": 36.8, "o2": 0}
CONFIG = RiskConfig(high_risk_icd10=DEFAULT_HIGH_RISK_ICD10, window_hours=24, repeat_hours=6, shadow_flags=("sirs",))
NID = "DocumentReference/d#content[0].attachment"


def envelope(mid: str, at: str, vitals: dict | None = None, note: str | None = None, entities=()) -> Envelope:
    entries = []
    for i, (name, value) in enumerate((vitals or {}).items()):
        entries.append({"fullUrl": f"urn:uuid:{mid}-{i}", "resource": {
            "resourceType": "Observation", "id": f"{mid}-{i}", "status": "final", "effectiveDateTime": at,
            "code": {"coding": [{"system": "http://loinc.org", "code": LOINC[name]}]},
            "valueQuantity": {"value": value, "unit": "mmol/L" if name == "potassium" else "x"}}})
    narratives = [Narrative(id=NID, resource="DocumentReference/d", element="content[0].attachment", text=note)] if note else []
    return Envelope(message_id=mid, source_format="hl7v2", message_type="ORU^R01", patient_key="H|1", patient_ref="urn:uuid:p",
                    encounter_ref=None, observed_at=at, received_at=at, normalized_at=at,
                    source=SourceRecord(topic="t", partition=0, offset=0), bundle={"resourceType": "Bundle", "type": "message", "entry": entries},
                    narratives=narratives, entities=list(entities))


def mention(note: str, text: str, assertion: str = "present", code: str | None = None) -> Entity:
    start = note.index(text)
    return Entity(narrative_id=NID, label="PROBLEM", source_label="Disease", start=start, end=start + len(text), text=text, score=0.9,
                  assertion=assertion, icd10cm=[CodeMatch(code=code, display=text, score=1.0)] if code else [])


def run(env, state=None, config=CONFIG):
    return assess(env, state or PatientState(), config, now="2030-01-01T00:00:00+00:00")


def events(risk) -> list[tuple[str, str, int]]:
    return [(a.kind, a.flag, a.episode) for a in risk.alerts if not a.shadow]


def test_high_vitals_raise_news2_high_and_qsofa():
    """A full set of deranged vitals scores NEWS2 high and qSOFA 2: both alert with their evidence, and the
    alert names the input that was never received."""
    risk, state = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    assert risk.news2.band == "high" and [f.name for f in risk.raised] == ["news2_high", "qsofa", "sirs"]
    assert events(risk) == [("raised", "news2_high", 1), ("raised", "qsofa", 1)]
    news2_alert = risk.alerts[0]
    assert news2_alert.evidence[0].startswith("NEWS2 ") and news2_alert.score == risk.news2.total
    assert "consciousness" in news2_alert.missing and news2_alert.components["respiratory_rate"] == 3
    assert risk.sirs.positive and [a.shadow for a in risk.alerts if a.flag == "sirs"] == [True]
    assert {"news2_high", "qsofa"} <= set(risk.active) and "sirs" not in risk.active


def test_older_message_never_overwrites_newer_values():
    """An out-of-order older observation does not replace a newer one; replay gives the same state."""
    _, s1 = run(envelope("m2", "2026-01-01T12:00:00+00:00", NORMAL))
    risk, s2 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH), s1)
    assert risk.news2.band == "low" and s2.vitals == s1.vitals
    _, s3 = run(envelope("m2", "2026-01-01T12:00:00+00:00", NORMAL), s2)
    assert s3.to_json() == s2.to_json()


def test_stale_values_leave_the_window_and_are_named():
    """Values older than the window are not scored and are reported stale, apart from those never received."""
    _, s1 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    risk, _ = run(envelope("m2", "2026-01-02T12:00:00+00:00", {"heart_rate": 80}), s1)
    assert risk.news2.inputs == {"heart_rate": 80.0}
    assert "respiratory_rate" in risk.news2.stale and "respiratory_rate" not in risk.news2.missing
    assert risk.news2.missing == ["consciousness"]


def test_nlp_flag_from_a_present_mention_coded_in_a_high_risk_category():
    """A present PROBLEM mention coded A41.9 flags sepsis with the quoted span and code; a negated stroke does not;
    an uncoded mention flags nothing (the flag follows the ICD-10-CM category, not the words)."""
    note = "Assessment: sepsis. No evidence of stroke. Possible pneumonia."
    env = envelope("n1", "2026-01-01T10:00:00+00:00", note=note, entities=[
        mention(note, "sepsis", code="A41.9"), mention(note, "stroke", "negated", "I63.9"), mention(note, "pneumonia", "present")])
    risk, state = run(env)
    assert [f.name for f in risk.raised] == ["sepsis"] and risk.active == ["sepsis"] and risk.news2 is None
    assert risk.raised[0].evidence[0].startswith('"sepsis" (present)') and "A41.9" in risk.raised[0].evidence[0]
    assert events(risk) == [("raised", "sepsis", 1)]
    again, _ = run(env)
    assert again.alerts[0].alert_id == risk.alerts[0].alert_id, "the same patient, flag and episode give the same id"


def test_no_flag_no_alert_but_risk_assessments():
    """A normal set raises nothing: no alert, but a RiskAssessment per score is still produced."""
    env = envelope("m1", "2026-01-01T10:00:00+00:00", NORMAL)
    risk, _ = run(env)
    assert risk.raised == [] and risk.alerts == []
    kinds = [e["resource"]["resourceType"] for e in risk_resources(env, risk)]
    assert kinds == ["RiskAssessment"] * 3


def test_only_present_mentions_flag_unless_possible_is_asked_for():
    """Possible, historical, family and hypothetical mentions raise nothing; possible ones do with risk_on_possible."""
    note = "Rule out sepsis. History of stroke. Mother had a myocardial infarction. Return if pulmonary embolism."
    ents = [mention(note, t, a, c) for t, a, c in [("sepsis", "possible", "A41.9"), ("stroke", "historical", "I63.9"),
                                                   ("myocardial infarction", "family", "I21.9"), ("pulmonary embolism", "hypothetical", "I26.99")]]
    env = envelope("p1", "2026-01-01T10:00:00+00:00", note=note, entities=ents)
    risk, state = run(env)
    assert risk.raised == [] and risk.active == [] and state.nlp_flags == {}
    risk, _ = run(env, config=RiskConfig(high_risk_icd10=DEFAULT_HIGH_RISK_ICD10, risk_on_possible=True))
    assert [f.name for f in risk.raised] == ["sepsis"] and risk.active == ["sepsis"]


def test_risk_on_possible_setting(monkeypatch):
    """CLINSTREAM_RISK_ON_POSSIBLE reaches the settings object; off by default."""
    from clinstream.settings import Settings

    assert Settings().risk_on_possible is False
    monkeypatch.setenv("CLINSTREAM_RISK_ON_POSSIBLE", "true")
    assert Settings().risk_on_possible is True
    assert RiskConfig.from_settings(Settings()).risk_on_possible is True


def _with_condition(env: Envelope, icd10: str) -> Envelope:
    condition = {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": icd10}]},
                 "clinicalStatus": {"coding": [{"code": "active"}]}, "verificationStatus": {"coding": [{"code": "confirmed"}]}}
    bundle = {**env.bundle, "entry": [*env.bundle["entry"], {"fullUrl": "urn:uuid:c1", "resource": condition}]}
    return env.model_copy(update={"bundle": bundle})


def test_coded_hypercapnic_failure_puts_the_patient_on_spo2_scale_2():
    """A J96.12 Condition moves NEWS2 to SpO2 scale 2 for this and later messages: 90 % on air scores 0, not 3."""
    scale2 = RiskConfig(scale2_icd10=("J96.02", "J96.12", "J96.22", "J96.92"))
    vitals = {**NORMAL, "spo2": 90}
    risk, state = run(_with_condition(envelope("s1", "2026-01-01T10:00:00+00:00", vitals), "J96.12"), config=scale2)
    assert (risk.news2.scale, risk.news2.components["spo2"]) == (2, 0) and state.spo2_scale2["code"] == "J96.12"
    later, _ = run(envelope("s2", "2026-01-01T11:00:00+00:00", vitals), state, config=scale2)
    assert later.news2.scale == 2 and "scale 2" in risk_resources(envelope("s2", "2026-01-01T11:00:00+00:00"), later)[0]["resource"]["method"]["text"]
    scale1, _ = run(_with_condition(envelope("s1", "2026-01-01T10:00:00+00:00", vitals), "J96.12"))  # no prefixes: scale 1
    assert (scale1.news2.scale, scale1.news2.components["spo2"]) == (1, 3)


def test_laboratory_inputs_are_kept_but_do_not_raise_news2():
    """A WBC-only message is kept in the state for SIRS, never re-raises NEWS2, and is no NEWS2 input."""
    _, s1 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    lab = envelope("m2", "2026-01-01T10:30:00+00:00")
    lab = lab.model_copy(update={"bundle": {**lab.bundle, "entry": [{"fullUrl": "urn:uuid:w", "resource": {
        "resourceType": "Observation", "id": "w", "status": "final", "effectiveDateTime": "2026-01-01T10:30:00+00:00",
        "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]}, "valueQuantity": {"value": 15.2, "unit": "10*3/uL"}}}]}})
    risk, s2 = run(lab, s1)
    assert [f.name for f in risk.raised] == ["sirs"] and risk.news2.band == "high" and "news2_high" in risk.active
    assert s2.vitals["wbc"]["value"] == 15.2 and "wbc" not in risk.news2.inputs and risk.sirs.components["wbc"] == 1


def _chain(*messages, state=None):
    """Run messages in order; the risks and the last state."""
    risks = []
    for env in messages:
        risk, state = run(env, state)
        risks.append(risk)
    return risks, state


def test_repeats_inside_the_period_are_suppressed_and_a_later_one_is_a_reminder():
    """news2_high at 10:00 alerts; again at 11:00 and 15:59 it is suppressed; at 16:00 (6 h) it alerts as episode 2."""
    risks, state = _chain(*(envelope(f"m{i}", f"2026-01-01T{h}+00:00", HIGH) for i, h in enumerate(["10:00:00", "11:00:00", "15:59:00", "16:00:00"])))
    assert [events(r) for r in risks] == [
        [("raised", "news2_high", 1), ("raised", "qsofa", 1)], [], [], [("raised", "news2_high", 2), ("raised", "qsofa", 2)]]
    assert risks[1].suppressed == ["news2_high", "qsofa", "sirs"]


def test_bands_alert_only_when_higher_and_the_low_band_resolves_the_episode():
    """medium alerts; high alerts (higher band); medium again is suppressed (not higher) while qSOFA, now 1,
    resolves; a note's sepsis alerts; the low band resolves every open flag of the episode; the next
    deterioration is episode 2."""
    note = "Assessment: sepsis."
    risks, state = _chain(
        envelope("a", "2026-01-01T10:00:00+00:00", MEDIUM), envelope("b", "2026-01-01T11:00:00+00:00", HIGH),
        envelope("c", "2026-01-01T12:00:00+00:00", MEDIUM), envelope("d", "2026-01-01T12:30:00+00:00", note=note, entities=[mention(note, "sepsis", code="A41.9")]),
        envelope("e", "2026-01-01T13:00:00+00:00", NORMAL), envelope("f", "2026-01-01T14:00:00+00:00", MEDIUM))
    assert [events(r) for r in risks] == [
        [("raised", "news2_medium", 1)], [("raised", "news2_high", 1), ("raised", "qsofa", 1)], [("resolved", "qsofa", 1)],
        [("raised", "sepsis", 1)], [("resolved", "news2_high", 1), ("resolved", "news2_medium", 1), ("resolved", "sepsis", 1)],
        [("raised", "news2_medium", 2)]]
    assert risks[2].suppressed == ["news2_medium", "sirs"] and risks[4].active == [] and risks[5].active == ["news2_medium"]
    resolved = risks[4].alerts[0]
    assert resolved.evidence == ["NEWS2 0 (low)"] and [r["status"] for r in resolved.resources] == ["inactive"]
    raised_flag = risks[1].alerts[0].resources[0]
    assert resolved.resources[0]["id"] == raised_flag["id"], "the resolve updates the same FHIR Flag"


def test_replay_gives_the_same_events_and_state_and_late_evidence_changes_nothing():
    """Replaying the message that alerted (or resolved) gives the same alert again, same id, same state; an older
    low-band message arriving after the alert does not resolve it."""
    r1, s1 = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH))
    r1b, s1b = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH), s1)
    assert [a.alert_id for a in r1b.alerts] == [a.alert_id for a in r1.alerts] and s1b.to_json() == s1.to_json()
    late, s2 = run(envelope("m0", "2026-01-01T09:00:00+00:00", NORMAL), s1)
    assert late.alerts == [] and s2.alerts == s1.alerts
    r3, s3 = run(envelope("m3", "2026-01-01T11:00:00+00:00", NORMAL), s1)
    r3b, s3b = run(envelope("m3", "2026-01-01T11:00:00+00:00", NORMAL), s3)
    assert [a.alert_id for a in r3b.alerts] == [a.alert_id for a in r3.alerts] and len(r3.alerts) == 3 and s3b.alerts == s3.alerts


def test_critical_lab_alerts_outlives_the_low_band_and_clears_with_a_normal_value():
    """K 6.9 mmol/L alerts critical_potassium; normal vitals do not resolve it; K 4.4 does."""
    risks, _ = _chain(envelope("k1", "2026-01-01T10:00:00+00:00", {"potassium": 6.9}), envelope("v1", "2026-01-01T10:30:00+00:00", NORMAL),
                      envelope("k2", "2026-01-01T14:00:00+00:00", {"potassium": 4.4}))
    assert [events(r) for r in risks] == [[("raised", "critical_potassium", 1)], [], [("resolved", "critical_potassium", 1)]]
    assert "potassium 6.9 mmol/L (> 6.2 mmol/L)" in risks[0].alerts[0].evidence[0]
    assert risks[1].active == ["critical_potassium"] and risks[2].active == []


def test_shadow_flags_are_computed_but_never_published():
    """A flag in shadow mode appears on the enriched risk with its events marked shadow; publishable drops them."""
    shadow = RiskConfig(shadow_flags=("news2_*", "qsofa"))
    risk, _ = run(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH), config=shadow)
    assert {a.flag for a in risk.alerts} == {"news2_high", "qsofa", "sirs"} and all(not a.shadow for a in risk.alerts if a.flag == "sirs")
    assert [a.flag for a in publishable(risk.alerts)] == ["sirs"] and risk.active == ["sirs"]


def test_alert_resources_are_valid_fhir():
    """Each alert's Flag, DetectedIssue and RiskAssessment validate with fhir.resources (R4B); so does the resolve's Flag."""
    from fhir.resources.R4B import get_fhir_model_class

    risks, _ = _chain(envelope("m1", "2026-01-01T10:00:00+00:00", HIGH), envelope("m2", "2026-01-01T11:00:00+00:00", NORMAL))
    kinds = []
    for alert in risks[0].alerts + risks[1].alerts:
        for resource in alert.resources:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            kinds.append(resource["resourceType"])
    assert {"Flag", "DetectedIssue", "RiskAssessment"} <= set(kinds)
    for entry in risk_resources(envelope("m1", "2026-01-01T10:00:00+00:00"), risks[0]):
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])


def test_a_note_read_after_the_vitals_that_settled_the_patient_opens_and_resolves_at_once():
    """Topics do not order each other: a note (10:30) raising sepsis read after the low-band vitals of 11:00
    gives the alerts time order gives: raised, then resolved by the 11:00 message; the state has nothing open.
    A replay of the note gives the same two events; a note after 11:00 opens an episode that stays open."""
    note = "Assessment: sepsis."
    sepsis = [mention(note, "sepsis", code="A41.9")]
    in_order, s_in = _chain(envelope("h", "2026-01-01T10:00:00+00:00", HIGH), envelope("n", "2026-01-01T10:30:00+00:00", note=note, entities=sepsis),
                            envelope("v", "2026-01-01T11:00:00+00:00", NORMAL))
    late, s_late = _chain(envelope("h", "2026-01-01T10:00:00+00:00", HIGH), envelope("v", "2026-01-01T11:00:00+00:00", NORMAL),
                          envelope("n", "2026-01-01T10:30:00+00:00", note=note, entities=sepsis))
    assert events(late[2]) == [("raised", "sepsis", 1), ("resolved", "sepsis", 1)]
    resolved = late[2].alerts[1]
    assert (resolved.message_id, resolved.observed_at, resolved.evidence) == ("v", "2026-01-01T11:00:00+00:00", ["NEWS2 0 (low)"])
    by_id = lambda risks: sorted((a.alert_id, a.kind, a.message_id, a.observed_at) for r in risks for a in r.alerts)  # noqa: E731
    assert by_id(late) == by_id(in_order), "the same alerts, ids and attributions whatever the order"
    assert late[2].active == [] and s_late.alerts["sepsis"]["open"] is False
    replay, _ = run(envelope("n", "2026-01-01T10:30:00+00:00", note=note, entities=sepsis), s_late)
    assert [a.alert_id for a in replay.alerts] == [a.alert_id for a in late[2].alerts]
    after, s_after = run(envelope("n2", "2026-01-01T11:30:00+00:00", note=note, entities=sepsis), s_late)
    assert events(after) == [("raised", "sepsis", 2)] and after.active == ["sepsis"] and s_after.alerts["sepsis"]["open"]
