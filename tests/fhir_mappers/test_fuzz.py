"""Fuzzing the normalizer: real-shaped HL7 v2 messages, mutated the ways hospital feeds break them
(truncation, wrong delimiters, bad encodings, huge fields, missing MSH, duplicated or shuffled segments,
binary noise, broken escapes). Every case must end converted (to a Bundle that validates as FHIR R4) or
rejected with a reason: never an exception out of the stage, never a mapper bug, never a hang (the
pytest timeout would catch one)."""

from __future__ import annotations

import copy
import os
import random
import re
from functools import cache
from typing import Any

from hypothesis import HealthCheck, event, given, settings, strategies as st

from clinstream.envelope import SourceRecord
from clinstream.exceptions import RejectedMessage
from clinstream.synthetic import generate
from fhir_mappers import HL7MappingError, MapperBug, hl7v2_to_fhir
from fhir_mappers import ids
from fhir_mappers.ids import fhir_safe
from fhir_mappers.validation import FHIRValidationError, validate_r4_bundle
from processors.normalize import normalize
from tests.conftest import CORPORA

CASES = int(os.environ.get("CLINSTREAM_FUZZ_CASES", "10000"))
SOURCE = SourceRecord(topic="fuzz", partition=0, offset=0)
NOW = "2026-01-01T00:00:00+00:00"
MAX_BYTES = 4 * 1024 * 1024


@cache
def seeds() -> tuple[bytes, ...]:
    """The generator's HL7 messages always; the FHIR-Converter corpus too where ../shared is present."""
    own = [m.value for m in generate(300, seed=21).messages if m.topic == "hl7v2" and m.valid]
    folder = CORPORA / "hl7v2" / "messages"
    theirs = [p.read_bytes() for p in sorted(folder.glob("*.hl7"))] if folder.exists() else []
    return tuple(own[:60] + theirs)


def _segments(raw: bytes) -> list[bytes]:
    return [s for s in raw.replace(b"\r\n", b"\r").replace(b"\n", b"\r").split(b"\r") if s]


def _join(segments: list[bytes]) -> bytes:
    return b"\r".join(segments) + b"\r"


# Each mutation takes the message and a source of random draws and returns the broken message.
def truncate(raw: bytes, draw) -> bytes:
    return raw[: draw(st.integers(0, len(raw)))]


def change_delimiter(raw: bytes, draw) -> bytes:
    old = draw(st.sampled_from([b"|", b"^", b"~", b"&", b"\\"]))
    new = draw(st.sampled_from([b"|", b"^", b"~", b"&", b"\\", b"#", b"", b"||"]))
    if draw(st.booleans()):  # everywhere, or only from some point on
        return raw.replace(old, new)
    cut = draw(st.integers(0, len(raw)))
    return raw[:cut] + raw[cut:].replace(old, new)


def change_encoding_characters(raw: bytes, draw) -> bytes:
    """MSH-1/MSH-2 declaring other (or too few) separators than the message uses."""
    chars = draw(st.sampled_from([b"|^~\\&", b"|^~\\", b"|^~", b"|", b"#^~\\&", b"|!~\\&", b"|^~\\&#", b"^^^^^"]))
    return raw.replace(b"MSH|^~\\&", b"MSH" + chars, 1)


def segment_separators(raw: bytes, draw) -> bytes:
    sep = draw(st.sampled_from([b"\n", b"\r\n", b"\n\r", b"\r\r", b"", b"\x0b", b"\x1c\r"]))
    framed = draw(st.booleans())
    body = sep.join(_segments(raw)) + sep
    return b"\x0b" + body + b"\x1c\r" if framed else body


def bad_encoding(raw: bytes, draw) -> bytes:
    how = draw(st.sampled_from(["latin1", "utf16", "invalid_utf8", "bom", "nul"]))
    if how == "latin1":
        return raw.replace(b"|", "|Müller é ".encode("latin-1"), 3)
    if how == "utf16":
        return raw.decode("utf-8", "replace").encode("utf-16")
    if how == "invalid_utf8":
        at = draw(st.integers(0, len(raw)))
        return raw[:at] + draw(st.sampled_from([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\x80\x80\x80"])) + raw[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" * draw(st.integers(1, 3)) + raw
    return raw.replace(b"|", b"|\x00", draw(st.integers(1, 20)))


def huge_field(raw: bytes, draw) -> bytes:
    segs = _segments(raw)
    i = draw(st.integers(0, len(segs) - 1))
    filler = draw(st.sampled_from([b"A", b"^", b"~", b"\\", b"9", b"&"])) * draw(st.sampled_from([1_000, 50_000, 300_000]))
    segs[i] = segs[i] + b"|" + filler
    return _join(segs)


def drop_msh(raw: bytes, draw) -> bytes:
    return _join([s for s in _segments(raw) if not s.startswith(b"MSH")])


def duplicate_segment(raw: bytes, draw) -> bytes:
    segs = _segments(raw)
    i = draw(st.integers(0, len(segs) - 1))
    return _join(segs[: i + 1] + [segs[i]] * draw(st.integers(1, 30)) + segs[i + 1 :])


def delete_segment(raw: bytes, draw) -> bytes:
    segs = _segments(raw)
    del segs[draw(st.integers(0, len(segs) - 1))]
    return _join(segs)


def shuffle_segments(raw: bytes, draw) -> bytes:
    segs = _segments(raw)
    # a seeded shuffle: drawing a whole permutation would overrun Hypothesis's data budget on long messages
    random.Random(draw(st.integers(0, 2**32))).shuffle(segs)
    return _join(segs)


def binary_noise(raw: bytes, draw) -> bytes:
    at = draw(st.integers(0, len(raw)))
    return raw[:at] + draw(st.binary(min_size=1, max_size=64)) + raw[at:]


def field_garbage(raw: bytes, draw) -> bytes:
    """Junk where a typed value belongs: dates, numbers, escapes, empty components, extra repeats."""
    junk = draw(st.sampled_from([
        b"20261301", b"2026023", b"99999999999999", b"2026-01-01T10:00", b"20260101120000+2500", b"20260101.123456789",
        b"\\X", b"\\XZZ\\", b"\\Zfoo\\", b"\\", b"\\.br", b"\\H\\\\N\\", b"^^^^^^^^", b"~~~~", b"&&&&", b"-", b"1e999",
        b"NaN", b"<>=", b"\xe2\x80\xae", b'"', b"''",
    ]))
    fields = raw.split(b"|")
    i = draw(st.integers(1, len(fields) - 1)) if len(fields) > 1 else 0
    fields[i] = junk if draw(st.booleans()) else fields[i] + junk
    return b"|".join(fields)


MUTATIONS = [truncate, change_delimiter, change_encoding_characters, segment_separators, bad_encoding, huge_field,
             drop_msh, duplicate_segment, delete_segment, shuffle_segments, binary_noise, field_garbage]


@st.composite
def broken_messages(draw) -> bytes:
    raw = draw(st.sampled_from(seeds()))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        if _segments(raw):
            raw = mutation(raw, draw)
    return raw


def assert_bundle_values(value: Any) -> None:
    """A Bundle holds plain dicts and lists, strings, numbers and booleans, and Clean values: the datatypes built
    FHIR-safe, which the last pass (fhir_safe) leaves as they are, so each must be what that pass would have made of
    it, never empty. An object of one key, reference, which the last pass passes over, is one ref() made."""
    if type(value) in (ids.Clean, ids.CleanList):
        plain = copy.deepcopy(value)  # a plain dict or list again
        assert plain and fhir_safe(copy.deepcopy(plain)) == plain, f"a Clean value needs cleaning: {plain!r}"
        return
    assert type(value) in (dict, list, str, int, float, bool), type(value)
    if type(value) is dict and len(value) == 1 and "reference" in value:
        assert re.fullmatch(r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value["reference"]), value
    for item in value.values() if type(value) is dict else value if type(value) is list else ():
        assert_bundle_values(item)


def test_clean_values_of_the_corpus_and_the_mix_need_no_cleaning() -> None:
    for raw in seeds():
        assert_bundle_values(hl7v2_to_fhir(raw).bundle)


# seeded in CI so a failure reproduces; CLINSTREAM_FUZZ_RANDOM=1 explores new cases
@settings(max_examples=CASES, deadline=None, derandomize=not os.environ.get("CLINSTREAM_FUZZ_RANDOM"), database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(broken_messages())
def test_mutated_messages_convert_or_are_rejected_with_a_reason(raw: bytes) -> None:
    # the mapper: a valid Bundle or a reason; a MapperBug means our code, not the sender, was at fault
    try:
        mapped = hl7v2_to_fhir(raw)
    except MapperBug as exc:
        raise AssertionError(f"mapper bug: {exc.reason}") from exc.__cause__
    except HL7MappingError as exc:
        assert exc.reason.strip()
    else:
        try:
            validate_r4_bundle(mapped.bundle)
        except FHIRValidationError as exc:
            raise AssertionError(f"invalid Bundle: {exc.reason}") from None
        assert_bundle_values(mapped.bundle)
    # the stage's pure function: an envelope or a dead-letter reason, nothing else escapes
    try:
        envelope = normalize(raw, "hl7v2", source=SOURCE, received_at=NOW, normalized_at=NOW, max_bytes=MAX_BYTES)
    except RejectedMessage as exc:
        assert str(exc).strip() and exc.kind in {"hl7_parse", "too_large", "too_many_segments"}
        event("dead-lettered")  # `pytest --hypothesis-show-statistics` prints the split
    else:
        event("converted")
        assert envelope.message_id and envelope.bundle["resourceType"] == "Bundle"
