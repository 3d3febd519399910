"""The normalizer's input limits: bytes and HL7 segments dead-letter the message with a reason naming the
limit and the value; an over-long narrative goes on, cut for the models, and the envelope says so."""

import base64
import json

import pytest

from clinstream.envelope import Envelope, SourceRecord
from clinstream.exceptions import RejectedMessage
from clinstream.settings import Settings
from processors.normalize import MAX_SEGMENTS, MAX_TEXT_CHARS, normalize, peek_message_id, segment_count

AT = "2026-01-01T10:00:00+00:00"
SOURCE = SourceRecord(topic="t", partition=0, offset=1)


def run(raw: bytes, source_format: str = "hl7v2", **limits) -> Envelope:
    return normalize(raw, source_format, source=SOURCE, received_at=AT, normalized_at=AT, **{"max_bytes": 1 << 24, **limits})


def oru(n_obx: int, text: str = "Heart sounds regular.", sep: str = "\r") -> bytes:
    return sep.join([
        "MSH|^~\\&|EHR|GENHOSP|CLINSTREAM|CLINSTREAM|20260101100000+0000||ORU^R01^ORU_R01|LIM-1|P|2.5.1",
        "PID|1||1234567^^^GENHOSP^MR||Doe^Jane||19700101|F",
        "OBR|1|LIM-1^LAB|LIM-1^LAB|11506-3^Progress note^LN|||20260101095500+0000",
        *[f"OBX|{i}|TX|11506-3^Progress note^LN|1|{text}||||||F" for i in range(1, n_obx + 1)],
    ]).encode()


def test_defaults_are_the_settings_defaults():
    s = Settings()
    assert (s.max_segments, s.max_text_chars) == (MAX_SEGMENTS, MAX_TEXT_CHARS) == (5_000, 100_000)


def test_message_over_max_bytes_names_the_limit_and_the_size():
    raw = oru(3)
    with pytest.raises(RejectedMessage) as exc:
        run(raw, max_bytes=100)
    assert exc.value.kind == "too_large"
    assert exc.value.reason == f"message is {len(raw)} bytes, over the limit of 100 (max_message_bytes)"


@pytest.mark.parametrize("sep", ["\r", "\n", "\r\n"])
def test_message_over_max_segments_names_the_limit_and_the_count(sep):
    raw = oru(50, sep=sep)  # MSH, PID, OBR + 50 OBX
    assert segment_count(raw) == 53
    with pytest.raises(RejectedMessage) as exc:
        run(raw, max_segments=52)
    assert exc.value.kind == "too_many_segments"
    assert exc.value.reason == "message has 53 segments, over the limit of 52 (max_segments)"
    assert run(raw, max_segments=53).message_id == "LIM-1"  # at the limit: through


def test_blank_lines_and_framing_are_not_segments():
    raw = b"\x0b" + oru(2, sep="\r\n").replace(b"\r\n", b"\r\n\r\n") + b"\x1c\r"
    assert segment_count(raw) == 5
    assert run(raw, max_segments=5).message_id == "LIM-1"


def test_segment_limit_is_hl7_only():
    bundle = {"resourceType": "Bundle", "id": "b1", "type": "collection", "entry": []}
    with pytest.raises(RejectedMessage) as exc:  # rejected for being empty, not for its (many) lines
        run(json.dumps(bundle, indent=1).encode(), "fhir", max_segments=2)
    assert exc.value.kind == "fhir_invalid"


def test_long_narrative_is_cut_for_the_models_and_says_so():
    sentence = "Patient resting comfortably. "
    note = sentence * 40  # 1160 characters
    env = run(oru(1, text=note.strip()), max_text_chars=500)
    (narrative,) = env.narratives
    assert narrative.truncated_from == len(note.strip()) and narrative.text == note.strip()[:500]
    # the Bundle keeps the whole text; only what the models read is cut
    obs = next(e["resource"] for e in env.bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert obs["valueString"] == note.strip()
    short = run(oru(1), max_text_chars=500).narratives[0]
    assert short.truncated_from is None and short.text == "Heart sounds regular."


def test_long_fhir_note_is_cut_too():
    text = "x" * 150
    doc = {"resourceType": "DocumentReference", "id": "d1", "status": "current",
           "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(text.encode()).decode()}}]}
    (narrative,) = run(json.dumps(doc).encode(), "fhir", max_text_chars=100).narratives
    assert (narrative.truncated_from, len(narrative.text)) == (150, 100)


def test_truncation_travels_in_the_envelope_json():
    env = run(oru(1, text="y" * 50), max_text_chars=10)
    back = Envelope.model_validate_json(env.model_dump_json())
    assert back.narratives[0].truncated_from == 50 and json.loads(env.model_dump_json())["narratives"][0]["truncated_from"] == 50


@pytest.mark.parametrize("raw,source_format,expected", [
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|MID-7|P|2.5\rPID|1", "hl7v2", "MID-7"),
    (b"\x0bMSH|^~\\&|A|B|C|D|20260101||ORU^R0", "hl7v2", None),  # cut before MSH-10
    (b"PID|1||123^^^X^MR", "hl7v2", None),  # no MSH
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|Smith John 1970|P", "hl7v2", None),  # not a control id: never put on a header
    (b'{"resourceType": "Observation", "id": "obs-1"}', "fhir", "obs-1"),
    (b"{not json", "fhir", None),
    (b"", "hl7v2", None),
])
def test_message_id_of_a_rejected_message(raw, source_format, expected):
    assert peek_message_id(raw, source_format) == expected
