"""CON (consent) -> Consent: what the patient (or someone for them) agreed to, under which form and when."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, entity_identifier, field, human_name, reps, unescape
from fhir_mappers.ids import ref, resource_id

# CON-11 consent status (table 0498) -> Consent.status: granted (fully or with limits), not yet sought, refused,
# revoked after being granted; "bypassed" (consent not sought) has no R4 status and is left a draft
CONSENT_STATUS = {"A": "active", "L": "active", "P": "proposed", "R": "rejected", "X": "inactive"}
# CON-2 consent types (table 0496) about disclosing information rather than about care: release of information,
# acknowledgement of the privacy notice; the others consent to a treatment or procedure
PRIVACY_TYPES = {"001", "003"}
SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
CONSENT_DOCUMENT = {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}
SELF = "1"  # CON-25 (table 0548): the consenter is the patient


def consent(con: Any, index: int, msg_key: str, patient: dict) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """CON: 2 type (category), 4 form number, 5/6 consent text (the policy agreed to, else 3 form id), 11 status,
    13 decision time, 14/15 effective period, 24/25 consenter and their relationship to the patient.
    None when the segment names no policy at all: R4 requires a policy or policy rule."""
    policy = "\n".join(t for t in (unescape(field(con, n)).strip() for n in (5, 6)) if t) or unescape(field(con, 3)).strip()
    if not policy:
        return None, []
    kind = comps(field(con, 2))
    privacy = unescape(kind[0]).strip() in PRIVACY_TYPES
    scope = ("patient-privacy", "Privacy Consent") if privacy else ("treatment", "Treatment")
    resource: dict[str, Any] = {"resourceType": "Consent", "id": resource_id("Consent", msg_key, str(index)),
                                "status": CONSENT_STATUS.get(unescape(comps(field(con, 11))[0]).strip().upper(), "draft"),
                                "scope": {"coding": [{"system": SCOPE, "code": scope[0], "display": scope[1]}]},
                                "category": [codeable(field(con, 2)) or CONSENT_DOCUMENT], "patient": patient,
                                "policyRule": {"text": policy}}
    number = entity_identifier(field(con, 4))
    if number:
        resource["identifier"] = [number]
    decided = dtm(field(con, 13))
    if decided:
        resource["dateTime"] = decided
    start, end = dtm(field(con, 14)), dtm(field(con, 15))
    if start or end:
        resource["provision"] = {"period": {k: v for k, v in (("start", start), ("end", end)) if v}}
    related: list[dict[str, Any]] = []
    relation = unescape(comps(field(con, 25))[0]).strip()
    names = [n for n in (human_name(x) for x in reps(field(con, 24))) if n]
    if relation == SELF or not names:
        resource["performer"] = [patient]
    else:  # someone consented for the patient: a parent, next of kin, attorney, conservator or practitioner
        person: dict[str, Any] = {"resourceType": "RelatedPerson", "id": resource_id("RelatedPerson", msg_key, str(index), "consenter"),
                                  "patient": patient, "name": names}
        if relation:
            person["relationship"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0548", "code": relation}]}]
        resource["performer"] = [ref(person)]
        related.append(person)
    return resource, related
