"""Inbound bytes (HL7 v2 ER7 or FHIR R4 JSON) -> the normalized Envelope, or a RejectedMessage saying why."""

from __future__ import annotations

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


def normalize(
    raw: bytes,
    source_format: Literal["hl7v2", "fhir"],
    *,
    source: SourceRecord,
    received_at: str,
    normalized_at: str,
    max_bytes: int,
    overrides: SenderOverrides | None = None,
) -> Envelope:
    """`overrides`: the per-sender overrides file, loaded once by the caller (settings.sender_overrides)."""
    if len(raw) > max_bytes:
        raise RejectedMessage(f"message is {len(raw)} bytes, over the limit of {max_bytes}", "too_large")
    if not raw.strip():
        raise RejectedMessage("message is empty", "hl7_parse" if source_format == "hl7v2" else "fhir_json")
    unmapped: list[str] = []
    if source_format == "hl7v2":
        try:
            mapped = hl7v2_to_fhir(raw, overrides)
        except HL7MappingError as exc:
            raise RejectedMessage(exc.reason, "hl7_parse") from None
        bundle, message_id, message_type = mapped.bundle, mapped.message_id, mapped.message_type
        patient_key, timestamp = mapped.patient_key, mapped.sent_at
        patient_ref, encounter_ref = _ref(bundle, "Patient"), _ref(bundle, "Encounter")
        unmapped = list(mapped.unmapped_segments)
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
        narratives=narratives(bundle),
        unmapped_segments=unmapped,
    )
