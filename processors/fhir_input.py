"""FHIR R4 JSON from outside (a Bundle, or a single resource), validated with R4B models and normalized
to the Bundle shape downstream stages read: entries that each hold a resource with an id and a fullUrl,
and references between entries rewritten to the target's fullUrl (processors/fhir_references.py).

A `message` Bundle stays a message (it already has the HL7 path's shape: MessageHeader first). Every
other accepted type becomes a `collection`: the inference stage appends RiskAssessment and Flag entries,
which a transaction or batch (entries need `request`), a searchset (entries need `search`) or a signed
document (fixed content) cannot take, while a collection imposes nothing. The original type stays in
`message_type` ('Bundle/transaction').
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from clinstream.exceptions import RejectedMessage
from fhir_mappers import FHIRValidationError, validate_r4_bundle
from processors.fhir_references import RESTFUL, resolve_references

NAMESPACE = uuid.UUID("0b6c2f0e-2f43-4d7a-b8a4-5d4c6a1f0c11")
LOCAL_ID_SYSTEM = "urn:clinstream:id:"
FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

ACCEPTED_TYPES = {"transaction", "batch", "collection", "message", "searchset", "document"}
REJECTED_TYPES = {
    "history": "a history Bundle lists versions of resources, not one clinical message",
    "transaction-response": "a transaction-response is a server's reply, not clinical content",
    "batch-response": "a batch-response is a server's reply, not clinical content",
}
# the first resource that defines a message and a document (FHIR R4 invariants bdl-12 and bdl-11)
FIRST_RESOURCE = {"message": "MessageHeader", "document": "Composition"}
# transaction/batch entries that carry a resource's state; DELETE, GET and HEAD carry none, and a
# PATCH body (Parameters or Binary) is an edit to a resource that is not in the Bundle
STATE_METHODS = {None, "POST", "PUT"}
# what a Bundle made into a collection keeps besides its id: `total`, `link` (search paging),
# `signature` (no longer true of the changed content) and `meta` (profiles of the old type) do not carry over
TOP_LEVEL_KEPT = ("identifier", "timestamp")
PATIENT_ELEMENTS = ("subject", "patient", "beneficiary")  # where resources name the patient they are about


@dataclass(frozen=True)
class FhirMessage:
    message_id: str
    message_type: str
    bundle: dict[str, Any]
    patient_key: str | None
    patient_ref: str | None
    encounter_ref: str | None
    timestamp: str | None
    unresolved_references: tuple[str, ...] = ()  # references to resources not in the Bundle, as sent


def _reject(reason: str) -> RejectedMessage:
    return RejectedMessage(reason, "fhir_invalid")


def _name(value: Any) -> str:
    """A type code from the payload, short and printable, for a dead-letter reason."""
    return repr(value)[:40]


def _check_resource_types(entries: list[Any]) -> None:
    """Unknown resource types make the R4B models raise KeyError rather than a validation error."""
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _reject(f"entry {i} is not an object")
        resource = entry.get("resource")
        if resource is None:
            continue
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        if not isinstance(kind, str):
            raise _reject(f"entry {i}: resource has no resourceType")
        try:
            get_fhir_model_class(kind)
        except (ValueError, KeyError):
            raise _reject(f"entry {i}: {_name(kind)} is not an R4 resource type") from None


def _validate(bundle: dict[str, Any]) -> None:
    _check_resource_types(bundle.get("entry") if isinstance(bundle.get("entry"), list) else [])
    try:
        validate_r4_bundle(bundle)
    except FHIRValidationError as exc:  # unknown resource types too, contained ones included
        raise _reject(f"FHIR R4 validation failed: {exc.reason}") from None


def _kept_entries(bundle_type: str, entries: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(position as sent, entry) of the entries that hold a resource's state."""
    kept = []
    for i, entry in enumerate(entries):
        resource = entry.get("resource")
        if resource is None or (entry.get("request") or {}).get("method") not in STATE_METHODS:
            continue
        if bundle_type == "searchset" and ((entry.get("search") or {}).get("mode") == "outcome"
                                           or resource["resourceType"] == "OperationOutcome"):
            continue  # warnings about the search itself; `include` entries stay: matches point at them
        kept.append((i, entry))
    return kept


def _identify(entry: dict[str, Any], position: str) -> dict[str, Any]:
    """The entry with a fullUrl and its resource with an id, both deterministic, and no request/response/search."""
    resource, request = entry["resource"], entry.get("request") or {}
    kind = resource["resourceType"]
    if not resource.get("id"):
        put = RESTFUL.match(request.get("url") or "") if request.get("method") == "PUT" else None
        if put and put["type"] == kind:  # an update names the resource's id in its URL
            resource["id"] = put["id"]
    full_url = entry.get("fullUrl")
    if not full_url:
        seed = f"{kind}/{resource['id']}" if resource.get("id") else f"entry|{position}"
        full_url = f"urn:uuid:{uuid.uuid5(NAMESPACE, seed)}"
    if not resource.get("id"):
        tail = full_url.removeprefix("urn:uuid:")
        restful = RESTFUL.match(full_url)
        if restful and restful["type"] == kind:
            resource_id = restful["id"]
        else:
            resource_id = tail if full_url.startswith("urn:uuid:") and FHIR_ID.match(tail) else str(uuid.uuid5(NAMESPACE, full_url))
        resource = {"resourceType": kind, "id": resource_id, **{k: v for k, v in resource.items() if k not in ("resourceType", "id")}}
    return {"fullUrl": full_url, "resource": resource}


def _focal(entries: list[dict[str, Any]], resource_type: str, incoming: dict[str, int]) -> dict[str, Any] | None:
    """The entry of that type the others point at most (the first on a tie): with several Patients
    (a mother and her baby, a merged record) the message is about the one its resources name."""
    candidates = [e for e in entries if e["resource"]["resourceType"] == resource_type]
    return max(candidates, key=lambda e: incoming.get(e["fullUrl"], 0), default=None)


def _patient_key(patient: dict[str, Any]) -> str | None:
    """'<authority>|<value>' from the MR identifier (else the first): same key as HL7 PID-3 gives."""
    identifiers = [i for i in patient.get("identifier", []) if i.get("value")]
    if not identifiers:
        return None
    mr = [i for i in identifiers if any(c.get("code") == "MR" for c in (i.get("type") or {}).get("coding", []))]
    ident = (mr or identifiers)[0]
    system = ident.get("system") or "local"
    return f"{system.removeprefix(LOCAL_ID_SYSTEM)}|{ident['value']}"


def _patient_reference(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first reference to a patient outside the Bundle (Observations sent without their Patient)."""
    for entry in entries:
        for element in PATIENT_ELEMENTS:
            value = entry["resource"].get(element)
            for ref in value if isinstance(value, list) else [value]:
                if not isinstance(ref, dict) or ref.get("type") not in (None, "Patient"):
                    continue
                text = ref.get("reference") or ""
                if (ref.get("identifier") or {}).get("value") or text.startswith(("Patient/", "Patient?")) or "/Patient/" in text:
                    return ref
    return None


def _message_id(data: dict[str, Any], digest: str) -> str:
    identifier = data.get("identifier") if data["resourceType"] == "Bundle" else None
    return str(data.get("id") or (identifier or {}).get("value") or digest)


def parse_fhir(raw: bytes) -> FhirMessage:
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise RejectedMessage(f"FHIR payload is not UTF-8 (byte {exc.start})", "fhir_json") from None
    except json.JSONDecodeError as exc:
        raise RejectedMessage(f"FHIR payload is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}", "fhir_json") from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise _reject("FHIR payload is not a resource: no resourceType")
    digest = hashlib.sha256(raw).hexdigest()[:32]
    if data["resourceType"] == "Bundle":
        bundle_type = data.get("type")
        if bundle_type in REJECTED_TYPES:
            raise _reject(f"Bundle type {bundle_type!r} is not accepted: {REJECTED_TYPES[bundle_type]}")
        if bundle_type not in ACCEPTED_TYPES:
            raise _reject(f"Bundle type {_name(bundle_type)} is not accepted (one of {', '.join(sorted(ACCEPTED_TYPES))})")
        message_type, source = f"Bundle/{bundle_type}", data
    elif data["resourceType"] == "OperationOutcome":
        raise _reject("a bare OperationOutcome is a server's reply, not clinical content")
    else:
        bundle_type, message_type = "collection", data["resourceType"]
        source = {"resourceType": "Bundle", "id": str(uuid.uuid5(NAMESPACE, f"wrap|{digest}")), "type": "collection",
                  "entry": [{"resource": data}]}
    # validated as sent, so the element paths in a reason match the sender's entry numbers
    _validate(source)
    entries = source.get("entry", [])
    first = FIRST_RESOURCE.get(bundle_type)
    if first and (not entries or (entries[0].get("resource") or {}).get("resourceType") != first):
        raise _reject(f"a {bundle_type} Bundle must start with a {first} entry")

    kept, seen = [], {}
    for i, entry in _kept_entries(bundle_type, entries):
        kept.append(_identify(entry, f"{digest}|{i}"))
        if (earlier := seen.setdefault(kept[-1]["fullUrl"], i)) != i:
            raise _reject(f"entries {earlier} and {i} have the same fullUrl (or, without one, the same resourceType and id)")
    if not kept:
        raise _reject(f"{message_type} holds no resource to process")
    unresolved, incoming = resolve_references(kept)

    if bundle_type == "message":
        bundle = {**{k: v for k, v in source.items() if k not in ("entry", "total")}, "entry": kept}
    else:
        bundle = {"resourceType": "Bundle", "id": source.get("id") or str(uuid.uuid5(NAMESPACE, f"wrap|{digest}")),
                  **{k: source[k] for k in TOP_LEVEL_KEPT if k in source}, "type": "collection", "entry": kept}

    patient = _focal(kept, "Patient", incoming)
    encounter = _focal(kept, "Encounter", incoming)
    patient_ref = patient["fullUrl"] if patient else None
    key = _patient_key(patient["resource"]) if patient else None
    if key is None and patient_ref:
        key = f"ref|{patient_ref}"
    elif key is None and (ref := _patient_reference(kept)):
        ident = ref.get("identifier") or {}
        if ident.get("value"):
            key = f"{(ident.get('system') or 'local').removeprefix(LOCAL_ID_SYSTEM)}|{ident['value']}"
        if ref.get("reference"):
            key, patient_ref = key or f"ref|{ref['reference']}", ref["reference"]
    return FhirMessage(_message_id(data, digest), message_type, bundle, key, patient_ref,
                       encounter["fullUrl"] if encounter else None, source.get("timestamp"), tuple(unresolved))
