"""DG1 -> Condition (encounter diagnosis), AL1 -> AllergyIntolerance."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, dtm, field, unescape
from fhir_mappers.ids import resource_id

VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "MA": "medication", "AA": "environment", "PA": "environment"}


def condition(dg1: Any, index: int, msg_key: str, subject: dict, encounter: dict | None) -> dict[str, Any]:
    code = codeable(field(dg1, 3)) or ({"text": unescape(field(dg1, 4))} if field(dg1, 4) else {"text": "unknown diagnosis"})
    verification = "provisional" if field(dg1, 6).upper().startswith(("W", "A")) else "confirmed"
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": resource_id("Condition", msg_key, str(index)),
        "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verification}]},
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "encounter-diagnosis"}]}],
        "code": code, "subject": subject,
    }
    if encounter:
        resource["encounter"] = encounter
    onset = dtm(field(dg1, 5))
    if onset:
        resource["onsetDateTime"] = onset
    return resource


def allergy(al1: Any, index: int, msg_key: str, patient: dict) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": resource_id("AllergyIntolerance", msg_key, str(index)),
                                "patient": patient}
    code = codeable(field(al1, 3))
    if code:
        resource["code"] = code
    category = ALLERGY_CATEGORY.get(field(al1, 2).split("^")[0].upper())
    if category:
        resource["category"] = [category]
    reaction = unescape(field(al1, 5))
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": r} for r in reaction.split("~") if r]}]
    return resource
