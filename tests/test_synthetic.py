"""The synthetic feed: reproducible, the standard mix, parseable messages, hand-checked NEWS2, ground truth consistent."""

import json
import re
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import hl7
import pytest
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from clinstream.synthetic import NEGATED, POSITIVE, VITAL_PROFILES, Vitals, generate, news2_score
from clinstream import synthetic

FLAG_PHRASES = {  # the brief's phrases, plus the pipeline's synonyms: filler sentences must contain none
    "sepsis": ["sepsis", "septic shock", "septicemia", "urosepsis"],
    "myocardial_infarction": ["myocardial infarction", "stemi", "heart attack"],
    "stroke": ["stroke", "cerebrovascular", "cerebral infarction"],
    "pulmonary_embolism": ["pulmonary embolism", "pulmonary embolus"],
    "acute_kidney_injury": ["acute kidney injury", "renal failure"],
    "respiratory_failure": ["respiratory failure"],
    "diabetic_ketoacidosis": ["ketoacidosis"],
}
NEGATION = re.compile(r"\b(no|not|denies|without|negative for|ruled out|absence of|free of)\b", re.I)
RANK = {"low": 0, "low-medium": 1, "medium": 2, "high": 3}
CODES = {"9279-1": "rr", "59408-5": "spo2", "3151-8": "o2_flow", "8480-6": "sbp", "8867-4": "hr", "67775-7": "acvpu", "8310-5": "temp"}


@pytest.fixture(scope="module")
def feed():
    return generate(2000, seed=1, malformed_share=0.05)


def _unescape(text: str) -> str:
    return (text.replace("\\F\\", "|").replace("\\S\\", "^").replace("\\T\\", "&").replace("\\R\\", "~").replace("\\E\\", "\\"))


def _segments(m, sid: str) -> list[list[str]]:
    """Fields of every `sid` segment, split by hand (python-hl7 is slow; parsing is tested on its own)."""
    return [seg.split("|") for seg in m.value.decode().split("\r") if seg.startswith(sid + "|")]


def _note_lines(m) -> list[str]:
    return [_unescape(obx[5]) for obx in _segments(m, "OBX")]


def _vitals(m) -> Vitals:
    """The vital set carried by an HL7 ORU or a FHIR Bundle, read back from the raw message."""
    values = {}
    if m.topic == "fhir":
        for entry in json.loads(m.value)["entry"]:
            r = entry["resource"]
            if r["resourceType"] == "Observation":
                name = CODES[r["code"]["coding"][0]["code"]]
                values[name] = r["valueCodeableConcept"]["coding"][0]["code"] if name == "acvpu" else r["valueQuantity"]["value"]
    else:
        for obx in _segments(m, "OBX"):
            name = CODES[obx[3].split("^")[0]]
            values[name] = obx[5].split("^")[0] if name == "acvpu" else float(obx[5])
    return Vitals(**values)


def test_reproducible():
    """The same arguments give byte-identical feeds; another seed gives another feed."""
    a = generate(400, seed=3, malformed_share=0.05, fhir_share=0.3)
    b = generate(400, seed=3, malformed_share=0.05, fhir_share=0.3)
    assert a == b and [m.value for m in a.messages] == [m.value for m in b.messages]
    assert generate(400, seed=4).messages != a.messages


def test_standard_mix(feed):
    """Valid messages are 30% ADT, 45% vitals (HL7 or FHIR), 15% lab, 10% notes (+-3%); malformed ones come on top; ids are unique."""
    valid = [m for m in feed.messages if m.valid]
    assert len(valid) == 2000 and len(feed.messages) - len(valid) == 100
    kinds = Counter("vitals" if m.kind == "fhir_vitals" else m.kind for m in valid)
    for kind, share in {"adt": 0.30, "vitals": 0.45, "lab": 0.15, "note": 0.10}.items():
        assert abs(kinds[kind] / len(valid) - share) <= 0.03, (kind, kinds)
    assert len({m.message_id for m in feed.messages}) == len(feed.messages)
    fhir = [m for m in valid if m.kind == "fhir_vitals"]
    assert fhir and all(m.topic == "fhir" for m in fhir) and all(m.topic == "hl7v2" for m in valid if m.kind != "fhir_vitals")
    # fhir_share is a share of patients: a patient sends all vitals one way
    ways = defaultdict(set)
    for m in valid:
        if m.kind in ("vitals", "fhir_vitals"):
            ways[m.key].add(m.kind)
    assert all(len(w) == 1 for w in ways.values())
    assert 0.04 <= sum(w == {"fhir_vitals"} for w in ways.values()) / len(ways) <= 0.2


def test_notes_have_50_to_300_words_and_clean_filler(feed):
    """Notes have 50-300 words, one sentence per OBX line; only the asserted or negated sentences mention a flag phrase."""
    notes = [m for m in feed.messages if m.kind == "note"]
    assert notes
    special = {s for ss in POSITIVE.values() for s in ss} | {s for s, _ in NEGATED}
    negated_seen = 0
    for m in notes:
        lines = _note_lines(m)
        assert 50 <= sum(len(line.split()) for line in lines) <= 300
        for line in lines:
            assert line.endswith(".") and line.count(". ") == 0, line
            if line in special:
                negated_seen += line not in {s for ss in POSITIVE.values() for s in ss}
                continue
            low = line.lower()
            assert not any(p in low for ps in FLAG_PHRASES.values() for p in ps), line
        asserted = sorted(f for f, sentences in POSITIVE.items() if any(s in lines for s in sentences))
        assert tuple(asserted) == m.expected_flags
    assert negated_seen and any(m.expected_flags for m in notes)


def test_positive_and_negated_sentences_are_well_formed():
    """A positive sentence has no negation word before its phrase; a negated one starts with its negation."""
    for flag, sentences in POSITIVE.items():
        for s in sentences:
            hit = next(p for p in FLAG_PHRASES[flag] if p in s.lower())
            assert not NEGATION.search(s[: s.lower().index(hit)]), s
    for s, flag in NEGATED:
        assert NEGATION.match(s), s


def test_hl7_messages_parse_and_keys_match():
    """Every valid HL7 message decodes as UTF-8 and parses with python-hl7; PID-3 gives the key, MSH-10 the id."""
    first_adt = {}
    for m in generate(600, seed=2, malformed_share=0.05).messages:
        if not m.valid or m.topic != "hl7v2":
            continue
        msg = hl7.parse(m.value.decode("utf-8"))
        assert str(msg.segment("MSH")[10]) == m.message_id
        assert str(msg.segment("MSH")[12]) == "2.5.1"
        pid3 = msg.segment("PID")[3][0]
        assert str(pid3[4]) == "MR" and f"{pid3[3]}|{pid3[0]}" == m.key
        assert str(msg.segment("PV1")[19][0][0]).startswith("V")
        first_adt.setdefault(m.key, (m.kind, str(msg.segment("MSH")[9][0][1])))
        if m.kind == "note":
            txa = msg.segment("TXA")
            assert str(txa[12][0][0]) == f"DOC-{m.message_id}" and str(txa[17]) == "AU"
            assert all(str(obx[2]) == "TX" for obx in msg.segments("OBX"))
        if m.kind == "lab":
            for obx in msg.segments("OBX"):
                low, high = map(float, str(obx[7]).split("-"))
                value, flag = float(str(obx[5])), str(obx[8])
                assert flag == ("H" if value > high else "L" if value < low else "N")
    assert all(kind == "adt" and event in ("A01", "A04") for kind, event in first_adt.values())


def test_fhir_bundles_validate(feed):
    """Every valid FHIR message is an R4 collection Bundle that validates; its Patient identifier gives the key."""
    bundles = [m for m in feed.messages if m.valid and m.topic == "fhir"]
    assert bundles
    for m in bundles:
        data = json.loads(m.value)
        bundle = Bundle.model_validate(data)
        assert bundle.id == m.message_id and bundle.type == "collection"
        patient = data["entry"][0]["resource"]
        ident = patient["identifier"][0]
        assert f"{ident['system'].removeprefix('urn:clinstream:id:')}|{ident['value']}" == m.key
        observations = [e["resource"] for e in data["entry"][1:]]
        assert len(observations) == 7 and all(o["subject"]["reference"] == data["entry"][0]["fullUrl"] for o in observations)


def test_malformed_messages_are_broken(feed):
    """Malformed messages are invalid, flag nothing and fail: HL7 ones break the envelope, FHIR ones fail JSON or R4 validation."""
    bad = [m for m in feed.messages if not m.valid]
    assert bad and all(m.kind == "malformed" and m.expected_flags == () for m in bad)
    seen = set()
    for m in bad:
        if m.topic == "fhir":
            try:
                data = json.loads(m.value)
            except json.JSONDecodeError:
                seen.add("fhir-json")
                continue
            with pytest.raises(ValidationError):
                Bundle.model_validate(data)
            seen.add("fhir-invalid")
            continue
        if not m.value:
            seen.add("empty")
            continue
        try:
            text = m.value.decode("utf-8")
        except UnicodeDecodeError:
            assert b"|8859" not in m.value.split(b"\r")[0]  # no MSH-18 naming another character set
            seen.add("bytes")
            continue
        if not text.startswith("MSH"):
            seen.add("no-msh")
            continue
        fields = text.split("\r")[0].split("|")
        assert len(fields) < 10 or not fields[9], text  # MSH-10 missing
        seen.add("truncated")
    assert seen == {"fhir-json", "fhir-invalid", "empty", "bytes", "no-msh", "truncated"}


HAND_SCORED = [
    # (RR, SpO2, O2 L/min, systolic, pulse, ACVPU, temp) -> total, band: points written out
    (Vitals(16, 97, 0, 124, 74, "A", 36.8), 0, "low"),  # 0+0+0+0+0+0+0
    (Vitals(12, 96, 0, 111, 51, "A", 36.1), 0, "low"),  # every value on the 0-point side of an edge
    (Vitals(20, 95, 0, 110, 91, "A", 38.0), 3, "low"),  # 0+1+0+1+1+0+0
    (Vitals(11, 94, 0, 220, 50, "A", 38.1), 7, "high"),  # 1+1+0+3+1+0+1
    (Vitals(26, 97, 0, 122, 84, "A", 37.0), 3, "low-medium"),  # RR +3 only: a single red score
    (Vitals(16, 97, 0, 124, 74, "C", 36.8), 3, "low-medium"),  # new confusion +3
    (Vitals(18, 97, 0, 120, 80, "A", 35.0), 3, "low-medium"),  # temperature 35.0 +3
    (Vitals(22, 95, 0, 104, 96, "A", 38.4), 6, "medium"),  # 2+1+0+1+1+0+1
    (Vitals(23, 93, 0, 130, 100, "A", 37.0), 5, "medium"),  # 2+2+0+0+1+0+0
    (Vitals(21, 94, 2, 125, 95, "A", 36.5), 6, "medium"),  # 2+1+2+0+1+0+0
    (Vitals(24, 93, 4, 99, 124, "A", 38.6), 11, "high"),  # 2+2+2+2+2+0+1
    (Vitals(26, 91, 2, 90, 131, "V", 39.1), 19, "high"),  # 3+3+2+3+3+3+2
    (Vitals(8, 92, 0, 100, 40, "U", 35.1), 14, "high"),  # 3+2+0+2+3+3+1
    (Vitals(9, 96, 1, 219, 110, "A", 39.0), 5, "medium"),  # 1+0+2+0+1+0+1
]


@pytest.mark.parametrize("vitals,total,band", HAND_SCORED)
def test_news2_table_on_hand_scored_sets(vitals, total, band):
    """The generator's NEWS2 table gives the hand-computed total and band."""
    assert news2_score(vitals)[:2] == (total, band)


def test_every_profile_stays_in_its_band():
    """Each hand-written profile scores in its band at every corner of its ranges (each range lies in one chart row)."""
    import itertools

    for band, profiles in VITAL_PROFILES.items():
        for name, overrides in profiles:
            p = {**synthetic._WELL, **overrides}
            ranges = [p["rr"], p["spo2"], p["o2_flow"], p["sbp"], p["hr"], tuple(p["acvpu"]), tuple(t / 10 for t in p["temp"])]
            for corner in itertools.product(*ranges):
                assert news2_score(Vitals(*corner))[1] == band, (name, corner)


def test_deteriorating_patients_climb_to_high(feed):
    """Deteriorating patients exist: their bands never fall and end high; stable patients stay low; high-risk notes belong to them."""
    bands = defaultdict(list)
    for m in feed.messages:
        if m.kind in ("vitals", "fhir_vitals"):
            total, band, _ = news2_score(_vitals(m))
            v = _vitals(m)
            flag = {"low": (), "low-medium": ("news2_low_medium",), "medium": ("news2_medium",), "high": ("news2_high",)}[band]
            qsofa = int(v.rr >= 22) + int(v.sbp <= 100) + int(v.acvpu != "A")  # Sepsis-3
            assert m.expected_flags == flag + (("qsofa",) if qsofa >= 2 else ())
            bands[m.key].append(band)
    rising = {k for k, b in bands.items() if set(b) != {"low"}}
    assert rising and sum(1 for m in feed.messages if "news2_high" in m.expected_flags) >= len(rising)
    assert 0.05 <= len(rising) / len(bands) <= 0.3
    for key in rising:
        ranks = [RANK[b] for b in bands[key]]
        assert ranks == sorted(ranks) and bands[key][-1] == "high", bands[key]
    nlp_patients = {m.key for m in feed.messages if m.kind == "note" and m.expected_flags}
    assert nlp_patients and all(k in rising or k not in bands for k in nlp_patients)


def test_expected_state_matches_the_messages(feed):
    """expected_state is the last vitals' band and score; its flags are that band's, qSOFA when the last vitals are
    positive, and flags some message of the patient raised; times are ordered and within 12 h per patient."""
    by_patient = defaultdict(list)
    for m in feed.messages:
        by_patient[m.key].append(m)
    for key, messages in by_patient.items():
        times = [datetime.fromisoformat(m.observed_at) for m in messages]
        assert times == sorted(times) and times[-1] - times[0] <= timedelta(hours=12)
        assert all(t.utcoffset() is not None for t in times)
        valid = [m for m in messages if m.valid]
        assert valid[0].kind == "adt"
        vitals = [m for m in valid if m.kind in ("vitals", "fhir_vitals")]
        if key not in feed.expected_state:
            assert not vitals and not any(m.kind == "note" for m in valid)
            continue
        state = feed.expected_state[key]
        if vitals:
            total, band, _ = news2_score(_vitals(vitals[-1]))
            assert (state["band"], state["score"]) == (band, total)
            assert set(vitals[-1].expected_flags) <= set(state["flags"])
        assert set(state["flags"]) <= {f for m in valid for f in m.expected_flags}
    assert any(s["band"] == "high" for s in feed.expected_state.values())


def test_alert_ground_truth_follows_the_rules(feed):
    """Per patient: an episode's resolve follows its raise; episodes count up from 1; nothing alerts that was not raised;
    the first message raising a flag alerts it; the repeat period is the worker's default."""
    from clinstream.settings import Settings

    assert synthetic.ALERT_REPEAT == timedelta(hours=Settings().alert_repeat_hours)
    by_patient = defaultdict(list)
    for m in feed.messages:
        by_patient[m.key].append(m)
    fired = 0
    for messages in by_patient.values():
        open_episodes, last_episode, ever = {}, defaultdict(int), set()
        for m in messages:
            for kind, flag, episode in m.expected_alerts:
                fired += 1
                if kind == "raised":
                    assert flag in m.expected_flags and episode == last_episode[flag] + 1
                    last_episode[flag] = episode
                    open_episodes[flag] = episode
                else:
                    assert open_episodes.pop(flag) == episode
            for flag in m.expected_flags:
                if flag not in ever and not flag.startswith("news2_"):
                    assert ("raised", flag, 1) in m.expected_alerts
                ever.add(flag)
    assert fired and fired < sum(len(m.expected_flags) for m in feed.messages), "repeats are suppressed"


def test_start_and_patients_arguments():
    """`start` shifts every time; `patients` sets the patient count; HL7 timestamps match observed_at."""
    start = datetime.fromisoformat("2025-06-01T22:00:00+02:00")
    f = generate(300, seed=9, patients=20, start=start)
    assert len({m.key for m in f.messages}) == 20
    assert min(datetime.fromisoformat(m.observed_at) for m in f.messages) >= start
    m = next(m for m in f.messages if m.kind == "adt")
    ts = str(hl7.parse(m.value.decode()).segment("MSH")[7])
    assert datetime.strptime(ts, "%Y%m%d%H%M%S%z") == datetime.fromisoformat(m.observed_at)


def test_pipeline_normalizer_agrees():
    """The pipeline's normalizer accepts every valid message with the same key and id and rejects every malformed one;
    its NEWS2, qSOFA, critical-lab and assertion rules (the last applied to the flag phrases) give exactly the expected
    flags. (The NLP flags themselves come from ICD-10-CM codes the model assigns: the end-to-end tests cover those.)"""
    from clinstream.envelope import SourceRecord
    from clinstream.exceptions import RejectedMessage
    from processors.assertion import assertion_of
    from processors.critical_labs import critical_findings
    from processors.qsofa import qsofa
    from processors.news2 import news2
    from processors.normalize import normalize
    from processors.vitals import vital_readings

    now = "2026-01-01T00:00:00+00:00"
    for m in generate(400, seed=11, malformed_share=0.1, fhir_share=0.3).messages:
        try:
            env = normalize(m.value, m.topic, source=SourceRecord(topic="in", partition=0, offset=0),
                            received_at=now, normalized_at=now, max_bytes=10**6)
        except RejectedMessage:
            assert not m.valid, m.value[:200]
            continue
        assert m.valid and (env.patient_key, env.message_id) == (m.key, m.message_id)
        flags = set()
        readings = vital_readings(env.bundle)
        if readings:
            band = news2({r.name: r.value for r in readings}).band
            flags |= {"news2_" + band.replace("-", "_")} - {"news2_low"}
            flags |= {"qsofa"} if qsofa({r.name: r.value for r in readings}).positive else set()
        flags |= {"critical_" + f.name for f in critical_findings(env.bundle)}
        for n in env.narratives:
            for flag, phrases in FLAG_PHRASES.items():
                for p in phrases:
                    for hit in re.finditer(re.escape(p), n.text.lower()):
                        if assertion_of(n.text, hit.start(), hit.end()) == "present":
                            flags.add(flag)
        assert tuple(sorted(flags)) == m.expected_flags, (m.kind, [n.text for n in env.narratives])
