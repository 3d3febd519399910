"""The synthetic feed: reproducible, the standard mix, parseable messages, ground truth consistent."""

from collections import Counter

import hl7
from fhir.resources.R4B.bundle import Bundle

from clinstream.synthetic import VITAL_SETS, generate
from processors.news2 import news2


def test_reproducible():
    """The same arguments give byte-identical feeds; another seed gives another feed."""
    a, b = generate(300, seed=3, malformed_share=0.05), generate(300, seed=3, malformed_share=0.05)
    assert a == b and generate(300, seed=4).messages != a.messages


def test_standard_mix():
    """30% ADT, 45% vitals (HL7 or FHIR), 15% lab, 10% notes of 50-300 words; ids unique."""
    feed = generate(2000, seed=1)
    kinds = Counter("vitals" if m.kind == "fhir_vitals" else m.kind for m in feed.messages)
    assert kinds == {"adt": 600, "vitals": 900, "lab": 300, "note": 200}
    assert len({m.message_id for m in feed.messages}) == len(feed.messages)
    assert any(m.kind == "fhir_vitals" for m in feed.messages)


def test_messages_parse_and_keys_match():
    """Every valid HL7 message parses with python-hl7 and its PID-3 is the key; FHIR Bundles validate as R4."""
    for m in generate(300, seed=2).messages:
        if m.topic == "hl7v2":
            msg = hl7.parse(m.value.decode())
            pid3 = msg.segment("PID")[3][0]
            assert f"{pid3[3]}|{pid3[0]}" == m.key
        else:
            Bundle.model_validate_json(m.value)


def test_hand_scored_vital_sets_agree_with_news2():
    """The generator's hand-worked NEWS2 totals and bands match the scoring function."""
    names = ["respiratory_rate", "spo2", "on_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature_c"]
    for sets in VITAL_SETS.values():
        for values, total, band in sets:
            inputs = dict(zip(names, values))
            inputs["on_oxygen"] = values[2] > 0
            score = news2(inputs)
            assert (score.total, score.band) == (total, band), values


def test_ground_truth():
    """Deteriorating patients reach news2_high; malformed messages are marked invalid with no flags."""
    feed = generate(1000, seed=5, malformed_share=0.05)
    assert any("news2_high" in m.expected_flags for m in feed.messages)
    bad = [m for m in feed.messages if not m.valid]
    assert len(bad) == 50 and all(m.kind == "malformed" and not m.expected_flags for m in bad)
    assert any(s["band"] == "high" for s in feed.expected_state.values())
