"""PID -> Patient."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import address, authority, comps, date_only, dtm, field, human_name, identifier, reps, telecom, unescape
from fhir_mappers.ids import resource_id

GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}


def patient_key(pid: Any) -> str | None:
    """'<authority>|<id>' of the MR identifier in PID-3 (else the first; PID-2 in old messages)."""
    ids = reps(field(pid, 3)) or reps(field(pid, 2))
    if not ids:
        return None
    chosen = next((cx for cx in ids if comps(cx)[4] == "MR"), ids[0])
    c = comps(chosen)
    return f"{authority(c[3])}|{unescape(c[0])}" if c[0] else None


def patient(pid: Any, fallback_key: str) -> dict[str, Any]:
    key = patient_key(pid)
    resource: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", key or fallback_key)}
    identifiers = [i for i in (identifier(cx) for cx in reps(field(pid, 3)) + reps(field(pid, 2))) if i]
    if identifiers:
        resource["identifier"] = identifiers
    names = [n for n in (human_name(x) for x in reps(field(pid, 5))) if n]
    if names:
        resource["name"] = names
    born = date_only(field(pid, 7))
    if born:
        resource["birthDate"] = born
    gender = GENDER.get(field(pid, 8).strip().upper()[:1])
    if gender:
        resource["gender"] = gender
    addresses = [a for a in (address(x) for x in reps(field(pid, 11))) if a]
    if addresses:
        resource["address"] = addresses
    points = [t for t in (telecom(x) for x in reps(field(pid, 13)) + reps(field(pid, 14))) if t]
    if points:
        resource["telecom"] = points
    died = dtm(field(pid, 29))
    if died:
        resource["deceasedDateTime"] = died
    elif field(pid, 30).upper() == "Y":
        resource["deceasedBoolean"] = True
    return resource
