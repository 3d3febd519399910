"""FHIR R4 JSON from outside: a Bundle, or a single resource wrapped into one; validated with R4B models."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from clinstream.exceptions import RejectedMessage
from fhir_mappers import FHIRValidationError, validate_r4_bundle

NAMESPACE = uuid.UUID("0b6c2f0e-2f43-4d7a-b8a4-5d4c6a1f0c11")
LOCAL_ID_SYSTEM = "urn:clinstream:id:"


@dataclass(frozen=True)
class FhirMessage:
    message_id: str
    message_type: str
    bundle: dict[str, Any]
    patient_key: str | None
    patient_ref: str | None
    encounter_ref: str | None
    timestamp: str | None


def _patient_key(patient: dict[str, Any]) -> str | None:
    """'<authority>|<value>' from the MR identifier (else the first): same key as HL7 PID-3 gives."""
    identifiers = [i for i in patient.get("identifier", []) if i.get("value")]
    if not identifiers:
        return None
    mr = [i for i in identifiers if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding", []))]
    ident = (mr or identifiers)[0]
    system = ident.get("system") or "local"
    return f"{system.removeprefix(LOCAL_ID_SYSTEM)}|{ident['value']}"


def _first(bundle: dict[str, Any], resource_type: str) -> tuple[str | None, dict[str, Any] | None]:
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") == resource_type:
            ref = entry.get("fullUrl") or f"{resource_type}/{resource.get('id')}"
            return ref, resource
    return None, None


def parse_fhir(raw: bytes) -> FhirMessage:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise RejectedMessage(f"FHIR payload is not UTF-8 (byte {exc.start})", "fhir_json") from None
    except json.JSONDecodeError as exc:
        raise RejectedMessage(f"FHIR payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "fhir_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise RejectedMessage("FHIR payload is not a resource: no resourceType", "fhir_invalid")
    digest = hashlib.sha256(raw).hexdigest()[:32]
    if data["resourceType"] == "Bundle":
        bundle = data
        message_type = f"Bundle/{data.get('type', 'unknown')}"
        message_id = str(data.get("id") or digest)
    else:
        message_type = data["resourceType"]
        message_id = str(data.get("id") or digest)
        bundle_id = str(uuid.uuid5(NAMESPACE, f"wrap|{digest}"))
        full_url = f"urn:uuid:{uuid.uuid5(NAMESPACE, f'entry|{digest}')}"
        bundle = {"resourceType": "Bundle", "id": bundle_id, "type": "collection", "entry": [{"fullUrl": full_url, "resource": data}]}
    try:
        validate_r4_bundle(bundle)
    except FHIRValidationError as exc:
        raise RejectedMessage(f"FHIR R4 validation failed: {exc.reason}", "fhir_invalid") from None
    patient_ref, patient = _first(bundle, "Patient")
    encounter_ref, _ = _first(bundle, "Encounter")
    key = _patient_key(patient) if patient else None
    if key is None:
        # a Bundle of Observations may name its patient only in subject
        for entry in bundle.get("entry", []):
            subject = (entry.get("resource") or {}).get("subject") or {}
            ident = subject.get("identifier") or {}
            if ident.get("value"):
                key = f"{(ident.get('system') or 'local').removeprefix(LOCAL_ID_SYSTEM)}|{ident['value']}"
                break
            if subject.get("reference"):
                key, patient_ref = f"ref|{subject['reference']}", subject["reference"]
                break
    return FhirMessage(message_id, message_type, bundle, key, patient_ref, encounter_ref, bundle.get("timestamp"))
