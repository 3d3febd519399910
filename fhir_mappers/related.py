"""NK1 (next of kin), PID-21 (mother's identifier) and GT1 (guarantor) -> RelatedPerson; a guarantor that is
the patient or an organisation is referenced as such instead."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import address, comps, date_only, field, human_name, reps, system_uri, table_code, telecom, unescape
from fhir_mappers.ids import Clean, ref, resource_id
from fhir_mappers.organizations import assigned_identifier, xon_organization
from fhir_mappers.patient import GENDER, language_concept

ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
CONTACT_ROLE = "http://terminology.hl7.org/CodeSystem/v2-0131"
# HL7 table 0063 (relationship) -> v3 RoleCode, after the guide's ConceptMap table-hl70063-to-v3-rolecode
RELATIONSHIP = {"SEL": "ONESELF", "SPO": "SPS", "DOM": "DOMPART", "CHD": "CHILD", "GCH": "GRNDCHILD", "NCH": "NCHILD",
                "SCH": "STPCHLD", "FCH": "CHLDFOST", "PAR": "PRN", "MTH": "MTH", "FTH": "FTH", "GRD": "GUARD", "GRP": "GRPRN",
                "EXF": "FAMMEMB", "SIB": "SIB", "BRO": "BRO", "SIS": "SIS", "FND": "FRND", "EMC": "ECON", "EME": "EMP"}
SSN = "http://hl7.org/fhir/sid/us-ssn"


def relationship(cwe: str) -> dict[str, Any] | None:
    """A table 0063 code, and the CWE's alternate code -> CodeableConcept: the v3 RoleCode when the guide maps it,
    else the v2 code as sent."""
    c = comps(cwe)
    codings = []
    for code in dict.fromkeys(" ".join(unescape(c[n]).split()) for n in (0, 3)):
        if code:
            role = RELATIONSHIP.get(code.upper())
            codings.append({"system": ROLE_CODE, "code": role} if role else {"system": "http://terminology.hl7.org/CodeSystem/v2-0063", "code": code})
    if not codings:
        return None
    concept: dict[str, Any] = {"coding": codings}
    text = unescape(c[1]).strip()
    if text:
        concept["text"] = text
    return concept


def contact_role(cwe: str) -> dict[str, Any] | None:
    """NK1-7 (contact role, HL7 table 0131) -> CodeableConcept in the v2-0131 code system, which is what
    Patient.contact.relationship is bound to; a code sent under another system keeps it."""
    c = comps(cwe)
    code = " ".join(unescape(c[0]).split())
    if not code:
        return None
    named = unescape(c[2]).strip().upper()
    coding: dict[str, Any] = {"system": CONTACT_ROLE if named in ("", "HL70131") else system_uri(c[2]), "code": code}
    if unescape(c[1]).strip():
        coding["display"] = unescape(c[1])
    return {"coding": [coding]}


def _identifiers(texts: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """CX repetitions -> identifiers and the assigning-authority Organizations they point to."""
    idents, orgs = [], []
    for cx in texts:
        ident, org = assigned_identifier(cx)
        if ident:
            idents.append(ident)
        if org:
            orgs.append(org)
    return idents, orgs


def _person(key: tuple[str, ...], patient: dict, names: list[str], addresses: list[str], phones: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "RelatedPerson", "id": resource_id("RelatedPerson", *key), "patient": patient}
    for name, values in (("name", [human_name(x) for x in names]), ("address", [address(x) for x in addresses]),
                         ("telecom", [telecom(x) for x in phones])):
        values = [v for v in values if v]
        if values:
            resource[name] = values
    return resource


def next_of_kin(nk1: Any, index: int, msg_key: str, patient: dict) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """NK1 -> RelatedPerson (2/30 names, 3 relationship, 7 contact role, 4/32 addresses, 5/6/31/40/41 telecom,
    8/9 period, 12/33 identifiers, 37 SSN, 15 sex, 16 birth date, 20 language) and the Organization of NK1-13."""
    resource = _person((msg_key, str(index)), patient, reps(field(nk1, 2)) + reps(field(nk1, 30)),
                       reps(field(nk1, 4)) + reps(field(nk1, 32)),
                       [x for n in (5, 6, 31, 40, 41) for x in reps(field(nk1, n))])
    idents, orgs = _identifiers(reps(field(nk1, 12)) + reps(field(nk1, 33)))
    ssn = unescape(field(nk1, 37)).strip()
    if ssn:
        idents.append({"system": SSN, "value": ssn})
    if idents:
        resource["identifier"] = idents
    concepts = [relationship(x) for x in reps(field(nk1, 3))]
    concepts += [{"coding": [{"system": CONTACT_ROLE, "code": unescape(comps(x)[0])}]} for x in reps(field(nk1, 7)) if comps(x)[0]]
    if any(concepts):
        resource["relationship"] = [c for c in concepts if c]
    start, end = date_only(field(nk1, 8)), date_only(field(nk1, 9))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    gender = table_code(nk1, 15, GENDER, 1)
    if gender:
        resource["gender"] = gender
    born = date_only(field(nk1, 16))
    if born:
        resource["birthDate"] = born
    language = language_concept(field(nk1, 20))
    if language:
        resource["communication"] = [{"language": language}]
    employer = xon_organization(field(nk1, 13).split("~")[0], "nk1")
    if employer:
        orgs.append(employer)
    return resource, orgs


def patient_contact(nk1: Any) -> dict[str, Any] | None:
    """NK1 -> Patient.contact, the guide's NK1[Patient] map: 3 relationship and 7 contact role -> relationship,
    2 -> name, 4 -> address, 5/6/40/41 -> telecom (6, the business phone, is "work" unless XTN-2 says
    otherwise), 15 -> gender, 13 -> organization (the Organization next_of_kin makes), 8/9 -> period. None when
    it names no one (FHIR's pat-1: a contact has a name, telecom, address or organization)."""
    out: dict[str, Any] = {}
    concepts = [relationship(x) for x in reps(field(nk1, 3))] + [contact_role(x) for x in reps(field(nk1, 7))]
    concepts = [c for c in concepts if c]
    name = next((n for n in (human_name(x) for x in reps(field(nk1, 2))) if n), None)
    place = next((a for a in (address(x) for x in reps(field(nk1, 4))) if a), None)
    points = []
    for n in (5, 6, 40, 41):
        for xtn in reps(field(nk1, n)):
            point = telecom(xtn)
            if point is None:
                continue
            if n == 6:
                point = point if "use" in point else Clean({**point, "use": "work"})
            if point not in points:
                points.append(point)
    employer = xon_organization(field(nk1, 13).split("~")[0], "nk1")
    if not (name or place or points or employer):
        return None
    if concepts:
        out["relationship"] = concepts
    if name:
        out["name"] = name
    if points:
        out["telecom"] = points
    if place:
        out["address"] = place
    gender = table_code(nk1, 15, GENDER, 1)
    if gender:
        out["gender"] = gender
    if employer:
        out["organization"] = ref(employer)
    start, end = date_only(field(nk1, 8)), date_only(field(nk1, 9))
    if start or end:
        out["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    return out


def mother(pid: Any, patient: dict) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """PID-21 (mother's identifier) -> RelatedPerson with relationship MTH; PID-6 is her maiden name, not a name she uses."""
    idents, orgs = _identifiers(reps(field(pid, 21)))
    if not idents:
        return None, []
    resource = {"resourceType": "RelatedPerson", "id": resource_id("RelatedPerson", "mother", patient["reference"], idents[0]["value"]),
                "patient": patient, "identifier": idents, "relationship": [{"coding": [{"system": ROLE_CODE, "code": "MTH"}]}]}
    return resource, orgs


def guarantor(gt1: Any, index: int, msg_key: str, patient: dict) -> tuple[dict[str, str] | None, list[dict[str, Any]]]:
    """GT1 -> (reference to the party of Account.guarantor, resources to add): the patient when GT1-11 says self, an Organization when only
    GT1-21 (organisation name) is sent, else a RelatedPerson (3 name, 2/12/19 identifiers, 5 address, 6/7 phones,
    8 birth date, 9 sex, 11 relationship)."""
    related = comps(field(gt1, 11))[0].strip().upper()
    if related == "SEL":
        return patient, []
    if not field(gt1, 3) and field(gt1, 21):
        org = xon_organization(field(gt1, 21).split("~")[0], "guarantor")
        return (ref(org), [org]) if org else (None, [])
    if not field(gt1, 3):
        return None, []
    resource = _person((msg_key, str(index)), patient, reps(field(gt1, 3)), reps(field(gt1, 5)), reps(field(gt1, 6)) + reps(field(gt1, 7)))
    idents, orgs = _identifiers(reps(field(gt1, 2)) + reps(field(gt1, 19)))
    ssn = unescape(field(gt1, 12)).strip()
    if ssn:
        idents.append({"system": SSN, "value": ssn})
    if idents:
        resource["identifier"] = idents
    concept = relationship(field(gt1, 11))
    if concept:
        resource["relationship"] = [concept]
    born = date_only(field(gt1, 8))
    if born:
        resource["birthDate"] = born
    gender = table_code(gt1, 9, GENDER, 1)
    if gender:
        resource["gender"] = gender
    return ref(resource), [resource] + orgs
