"""Inbound bytes (HL7 v2 ER7 or FHIR R4 JSON) -> the normalized Envelope, or a RejectedMessage saying why."""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from clinstream.envelope import Envelope, SourceRecord
from clinstream.exceptions import RejectedMessage
from fhir_mappers import HL7MappingError, hl7v2_to_fhir
from fhir_mappers.senders import SenderOverrides
from processors.fhir_input import parse_fhir
from processors.narrative import narratives
from processors.fhir_time import parse_time


def _ref(bundle: dict[str, Any], resource_type: str) -> str | None:
    for entry in bundle.get("entry", []):
        if (entry.get("resource") or {}).get("resourceType") == resource_type:
            return entry.get("fullUrl")
    return None


def _latest_effective(bundle: dict[str, Any]) -> str | None:
    times = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        value = resource.get("effectiveDateTime") or resource.get("date") or resource.get("issued")
        if isinstance(value, str):
            try:
                times.append((parse_time(value), value))
            except ValueError:
                continue
    return max(times)[1] if times else None


# defaults of Settings.max_segments and Settings.max_text_chars
MAX_SEGMENTS = 5_000
MAX_TEXT_CHARS = 100_000
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# what a message id must look like to go on a dead letter's header: a control id, never free text
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}")


def segment_count(raw: bytes) -> int:
    """HL7 v2 segments in the message as `fhir_mappers.parse.decode` will split it: lines separated by CR,
    LF or CRLF, blank ones left out."""
    return sum(1 for line in _LINE_BREAK.split(raw) if line.strip(b"\x0b\x1c\t "))


def check_limits(raw: bytes, source_format: Literal["hl7v2", "fhir"], *, max_bytes: int, max_segments: int = MAX_SEGMENTS) -> None:
    """The size limits checked before anything is parsed; a RejectedMessage whose reason names the limit
    (the setting) and the message's value."""
    if len(raw) > max_bytes:
        raise RejectedMessage(f"message is {len(raw)} bytes, over the limit of {max_bytes} (max_message_bytes)", "too_large")
    # counting needs a split; the separators alone bound the count, so a message under the limit costs two scans
    if source_format == "hl7v2" and raw.count(b"\r") + raw.count(b"\n") >= max_segments:
        count = segment_count(raw)
        if count > max_segments:
            raise RejectedMessage(f"message has {count} segments, over the limit of {max_segments} (max_segments)", "too_many_segments")


def peek_message_id(raw: bytes, source_format: Literal["hl7v2", "fhir"], max_bytes: int = MAX_TEXT_CHARS * 10) -> str | None:
    """The message id of a message that could not be normalized, when it can still be read: MSH-10 of a
    first segment that is an MSH, or the id of a FHIR JSON object; only ids that look like control ids
    (letters, digits, '.', '_', ':', '-'; at most 64), so a broken message cannot put free text on a header."""
    if not raw:
        return None
    if source_format == "hl7v2":
        first = _LINE_BREAK.split(raw.lstrip(b"\x0b\xef\xbb\xbf\r\n\t "), 1)[0][:4096].decode("latin-1")
        if not first.startswith("MSH") or len(first) < 4:
            return None
        fields = first.split(first[3])
        candidate = fields[9].split("^")[0].strip() if len(fields) > 9 else ""
    else:
        if len(raw) > max_bytes:
            return None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return None
        candidate = data.get("id") if isinstance(data, dict) else None
    return candidate if isinstance(candidate, str) and _SAFE_ID.fullmatch(candidate) else None


def normalize(
    raw: bytes,
    source_format: Literal["hl7v2", "fhir"],
    *,
    source: SourceRecord,
    received_at: str,
    normalized_at: str,
    max_bytes: int,
    max_segments: int = MAX_SEGMENTS,
    max_text_chars: int = MAX_TEXT_CHARS,
    overrides: SenderOverrides | None = None,
) -> Envelope:
    """`overrides`: the per-sender overrides file, loaded once by the caller (settings.sender_overrides).
    Limits: a message over `max_bytes` or (HL7 v2) `max_segments` is rejected; a narrative longer than
    `max_text_chars` is cut to that many characters for the NER model (`Narrative.truncated_from` says
    so) while the Bundle keeps the whole text."""
    check_limits(raw, source_format, max_bytes=max_bytes, max_segments=max_segments)
    if not raw.strip():
        raise RejectedMessage("message is empty", "hl7_parse" if source_format == "hl7v2" else "fhir_json")
    unmapped: list[str] = []
    unmapped_fields: list[str] = []
    if source_format == "hl7v2":
        try:
            mapped = hl7v2_to_fhir(raw, overrides)
        except HL7MappingError as exc:
            raise RejectedMessage(exc.reason, "hl7_parse") from None
        bundle, message_id, message_type = mapped.bundle, mapped.message_id, mapped.message_type
        patient_key, timestamp = mapped.patient_key, mapped.sent_at
        patient_ref, encounter_ref = _ref(bundle, "Patient"), _ref(bundle, "Encounter")
        unmapped, unmapped_fields = list(mapped.unmapped_segments), list(mapped.unmapped_fields)
    else:
        message = parse_fhir(raw)
        bundle, message_id, message_type = message.bundle, message.message_id, message.message_type
        patient_key, timestamp = message.patient_key, message.timestamp
        patient_ref, encounter_ref = message.patient_ref, message.encounter_ref
    return Envelope(
        message_id=message_id,
        source_format=source_format,
        message_type=message_type,
        patient_key=patient_key,
        patient_ref=patient_ref,
        encounter_ref=encounter_ref,
        observed_at=_latest_effective(bundle) or timestamp or received_at,
        received_at=received_at,
        normalized_at=normalized_at,
        source=source,
        bundle=bundle,
        narratives=narratives(bundle, max_chars=max_text_chars),
        unmapped_segments=unmapped,
        unmapped_fields=unmapped_fields,
    )
