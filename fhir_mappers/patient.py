"""PID -> Patient; MRG -> the retired record it replaces; PD1 -> its general practitioners."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import address, authority, comps, date_only, dtm, field, human_name, identifier, reps, telecom, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.organizations import assigned_identifier, xon_organization

GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}


MR_CODING = {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}


def _mrn_index(ids: list[str], mrn_type: str) -> int:
    """Which CX is the MRN: the first of the sender's MRN type (CX-5; MR unless its overrides name
    another, as senders whose MRN is a PI or PT do), else the first MR, else the first."""
    types = [comps(cx)[4] for cx in ids]
    for wanted in (mrn_type, "MR"):
        if wanted in types:
            return types.index(wanted)
    return 0


def patient_key(pid: Any, mrn_type: str = "MR") -> str | None:
    """'<authority>|<id>' of the MRN in PID-3 (else the first; PID-2 in old messages)."""
    ids = reps(field(pid, 3)) or reps(field(pid, 2))
    if not ids:
        return None
    c = comps(ids[_mrn_index(ids, mrn_type)])
    return f"{authority(c[3])}|{unescape(c[0])}" if c[0] else None


def patient(pid: Any, fallback_key: str, mrn_type: str = "MR") -> dict[str, Any]:
    key = patient_key(pid, mrn_type)
    resource: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", key or fallback_key)}
    sources = reps(field(pid, 3)) + reps(field(pid, 2))
    # A sender whose MRN has another CX-5 type (PI, PT...): that identifier is typed MR in FHIR and listed
    # first, since readers (processors/fhir_input.py included) key a Patient by its first MR identifier
    # and must find the same one patient_key chose, even when the sender also sends an "MR" of its own.
    keyed = reps(field(pid, 3)) or reps(field(pid, 2))  # what patient_key chose from: a prefix of sources
    mrn = _mrn_index(keyed, mrn_type) if mrn_type != "MR" and keyed else None
    identifiers = []
    for i, cx in enumerate(sources):
        ident = identifier(cx)
        if ident is None:
            continue
        if i == mrn and comps(cx)[4] == mrn_type:
            ident["type"] = {"coding": [dict(MR_CODING)]}
            identifiers.insert(0, ident)
        else:
            identifiers.append(ident)
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


def authorities(pid: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Organizations of the PID-3 assigning authorities that carry a universal id, set as Identifier.assigner."""
    orgs = []
    by_value = {(i.get("system"), i["value"]): i for i in resource.get("identifier", [])}
    for cx in reps(field(pid, 3)):
        ident, org = assigned_identifier(cx)
        target = by_value.get((ident.get("system"), ident["value"])) if ident else None
        if org and target is not None:
            target["assigner"] = ident["assigner"]
            orgs.append(org)
    return orgs


def merged_patient(mrg: Any, resource: dict[str, Any], mrn_type: str = "MR") -> dict[str, Any] | None:
    """MRG-1 (prior patient identifiers) -> the retired Patient record, linked both ways with the surviving one."""
    idents = [i for i in (identifier(cx) for cx in reps(field(mrg, 1)) + reps(field(mrg, 4))) if i]
    if not idents:
        return None
    # keyed like patient_key keys a PID, so the retired record gets the id its own messages gave it
    prior = reps(field(mrg, 1)) or reps(field(mrg, 4))
    first = comps(prior[_mrn_index(prior, mrn_type)])
    old = {"resourceType": "Patient", "id": resource_id("Patient", f"{authority(first[3])}|{unescape(first[0])}"), "active": False,
           "identifier": idents, "link": [{"other": ref(resource), "type": "replaced-by"}]}
    if old["id"] == resource["id"]:  # the message merges a record into itself: nothing to link
        return None
    link = {"other": ref(old), "type": "replaces"}
    if link not in resource.get("link", []):
        resource.setdefault("link", []).append(link)
    return old


def primary_care(pd1: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """PD1-3 (primary care facility) and PD1-4 (primary care provider) -> Patient.generalPractitioner."""
    found: list[dict[str, Any]] = []
    for xon in reps(field(pd1, 3)):
        org = xon_organization(xon, "pd1")
        if org:
            found.append(org)
    for xcn in reps(field(pd1, 4)):
        doctor = practitioner(xcn)
        if doctor:
            found.append(doctor)
    if found:
        resource["generalPractitioner"] = [ref(r) for r in found]
    return found
