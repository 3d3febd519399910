"""IN1 (+ IN2) -> Coverage, with the insurer Organization as payor, the insured's employer as policy holder
and the insured, when not the patient, as a RelatedPerson subscriber."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import V2_0203, address, codeable, comps, date_only, field, human_name, identifier, reps, table_code, telecom, unescape
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.organizations import assigned_identifier, xon_organization
from fhir_mappers.patient import GENDER
from fhir_mappers.related import SSN, relationship

# IN1-17 (table 0063) -> subscriber-relationship, the code system Coverage.relationship is bound to
SUBSCRIBER = {"SEL": "self", "SPO": "spouse", "DOM": "common", "CHD": "child", "SCH": "child", "FCH": "child",
              "PAR": "parent", "MTH": "parent", "FTH": "parent"}
CLASSES = ((2, "plan", "Plan"), (8, "group", "Group"))


def _payor(in1: Any, index: int, msg_key: str) -> dict[str, Any] | None:
    """IN1-3 ids, -4 name, -5 address, -6 contact, -7 phone -> the insurer Organization."""
    idents = []
    for cx in reps(field(in1, 3)):
        ident = identifier(cx)  # the insurer's own id: its authority is the id's system, no assigner (another payor)
        if ident:
            idents.append(ident)
    name = unescape(comps(field(in1, 4).split("~")[0])[0]).strip()
    if not idents and not name:
        return None
    key = (idents[0].get("system", ""), idents[0]["value"]) if idents else (msg_key, str(index), name)
    org: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", "payor", *key)}
    if idents:
        org["identifier"] = idents
    if name:
        org["name"] = name
    addresses = [a for a in (address(x) for x in reps(field(in1, 5))) if a]
    if addresses:
        org["address"] = addresses
    points = [t for t in (telecom(x) for x in reps(field(in1, 7))) if t]
    if points:
        org["telecom"] = points
    contact = [n for n in (human_name(x) for x in reps(field(in1, 6))) if n]
    if contact:
        org["contact"] = [{"name": contact[0]}]
    return org


def _subscriber(in1: Any, in2: Any | None, index: int, msg_key: str, patient: dict) -> dict[str, Any] | None:
    """IN1-16 name, -17 relationship, -18 birth date, -19 address, -43 sex, -49 id; IN2-1 employee id, -2 SSN."""
    names = [n for n in (human_name(x) for x in reps(field(in1, 16))) if n]
    if not names:
        return None
    person: dict[str, Any] = {"resourceType": "RelatedPerson", "id": resource_id("RelatedPerson", msg_key, "insured", str(index)),
                              "patient": patient, "name": names}
    idents = [i for i in (identifier(cx) for cx in reps(field(in1, 49))) if i]  # the insured's ids: no assigner (a payor)
    if in2 is not None:
        idents += [i for i in (identifier(cx) for cx in reps(field(in2, 1))) if i]
        ssn = unescape(field(in2, 2)).strip()
        if ssn:
            idents.append({"system": SSN, "value": ssn})
    if idents:
        person["identifier"] = idents
    concept = relationship(field(in1, 17))
    if concept:
        person["relationship"] = [concept]
    born = date_only(field(in1, 18))
    if born:
        person["birthDate"] = born
    addresses = [a for a in (address(x) for x in reps(field(in1, 19))) if a]
    if addresses:
        person["address"] = addresses
    gender = table_code(in1, 43, GENDER, 1)
    if gender:
        person["gender"] = gender
    return person


def coverage(in1: Any, in2: Any | None, index: int, msg_key: str, patient: dict) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Coverage and the Organizations and RelatedPerson it references."""
    resource: dict[str, Any] = {"resourceType": "Coverage", "id": resource_id("Coverage", msg_key, str(index)), "status": "active",
                                "beneficiary": patient}
    related: list[dict[str, Any]] = []
    idents: list[dict[str, Any]] = []
    policy = unescape(field(in1, 36)).strip()
    if policy:
        idents.append({"value": policy})
    if in2 is not None:  # IN2-6 Medicare, IN2-8 Medicaid, IN2-61 the patient's member number
        for n, code, system in ((6, "MC", "http://hl7.org/fhir/sid/us-medicare"), (8, "MA", None)):
            value = unescape(field(in2, n)).strip()
            if value:
                idents.append({"value": value, "type": {"coding": [{"system": V2_0203, "code": code}]}} | ({"system": system} if system else {}))
        for cx in reps(field(in2, 61)):
            ident, org = assigned_identifier(cx)
            if ident:
                idents.append(ident)
            if org:
                related.append(org)
    if idents:
        resource["identifier"] = idents
    member = unescape(comps(field(in1, 49))[0]).strip()
    if member:
        resource["subscriberId"] = member
    plan_type = codeable(field(in1, 15))
    if plan_type:
        resource["type"] = plan_type
    classes = []
    for n, code, display in CLASSES:
        value = unescape(comps(field(in1, n))[0]).strip()
        if value:
            item: dict[str, Any] = {"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": code,
                                                         "display": display}]}, "value": value}
            label = unescape(comps(field(in1, n))[1] if n == 2 else comps(field(in1, 9))[0]).strip()
            if label:
                item["name"] = label
            classes.append(item)
    if classes:
        resource["class"] = classes
    start, end = date_only(field(in1, 12)), date_only(field(in1, 13))
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    payor = _payor(in1, index, msg_key)
    if payor:
        related.append(payor)
    # payor is required (1..*): an insurer sent without id or name is still an insurer, named as unknown
    resource["payor"] = [ref(payor)] if payor else [{"display": "unknown insurer"}]
    employer = xon_organization(field(in1, 11).split("~")[0], "employer")
    if employer:
        addresses = [a for a in (address(x) for x in reps(field(in1, 44))) if a]
        if addresses:
            employer["address"] = addresses
        related.append(employer)
        resource["policyHolder"] = ref(employer)
    said = comps(field(in1, 17))[0].strip().upper()
    if said in SUBSCRIBER:
        resource["relationship"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                                                "code": SUBSCRIBER[said]}]}
    if said == "SEL":
        resource["subscriber"] = patient
    else:
        person = _subscriber(in1, in2, index, msg_key, patient)
        if person:
            related.append(person)
            resource["subscriber"] = ref(person)
    return resource, related
