"""DG1 -> Condition (encounter diagnosis), PRB -> Condition (problem-list item), AL1 -> AllergyIntolerance."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import clean_text, codeable, dtm, entity_identifier, field, unescape
from fhir_mappers.ids import ref, resource_id

VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ALLERGY_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "MA": "medication", "AA": "environment", "PA": "environment"}


def condition(dg1: Any, index: int, msg_key: str, subject: dict, encounter: dict | None) -> list[dict[str, Any]]:
    """DG1 -> Condition: DG1-3 code (DG1-4, the sender's description, its text), -5 onset, -6 type
    (verification), -19 attestation (assertedDate), -20 identifier; DG1-22, the parent diagnosis, a Condition of its
    own that this one is dueTo (the guide's DG1 map). The caller adds the asserter (DG1-16, diagnosing clinician), a
    Practitioner shared with the rest of the message. Returns the Condition, then its parent when there is one."""
    code = codeable(field(dg1, 3))
    description = clean_text(unescape(field(dg1, 4)))
    if code and description:
        code = {**code, "text": description}
    elif not code:
        code = {"text": description or "unknown diagnosis"}
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
    ident = entity_identifier(field(dg1, 20).split("~")[0])  # DG1-20 diagnosis identifier (EI)
    if ident:
        resource["identifier"] = [ident]
    onset = dtm(field(dg1, 5))
    if onset:
        resource["onsetDateTime"] = onset
    extensions = []
    attested = dtm(field(dg1, 19))
    if attested:
        extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate", "valueDateTime": attested})
    parent_id = entity_identifier(field(dg1, 22).split("~")[0])  # an EI with no entity id names no diagnosis: skipped
    parent = None
    if parent_id:
        # keyed by the parent's identifier within the message: two DG1s of one parent share it
        parent = {"resourceType": "Condition", "id": resource_id("Condition", msg_key, "parent", parent_id.get("system", ""), parent_id["value"]),
                  "identifier": [parent_id], "subject": subject}
        extensions.append({"url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo", "valueReference": ref(parent)})
    if extensions:
        resource["extension"] = extensions
    return [resource, parent] if parent else [resource]


ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def allergy(al1: Any, index: int, msg_key: str, patient: dict) -> dict[str, Any]:
    # an allergy a message lists is a current one (AL1 has no status; IAM, which has, is not mapped)
    resource: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": resource_id("AllergyIntolerance", msg_key, str(index)),
                                "patient": patient, "clinicalStatus": {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}}
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


# PRB-14 life cycle status (free text in the corpus, table 0332 codes otherwise) -> Condition.clinicalStatus
PROBLEM_CLINICAL = {"ACTIVE": "active", "A": "active", "INACTIVE": "inactive", "I": "inactive", "RESOLVED": "resolved",
                    "R": "resolved", "RECURRENCE": "recurrence", "RELAPSE": "relapse", "REMISSION": "remission"}


def problem(prb: Any, index: int, msg_key: str, subject: dict) -> dict[str, Any]:
    """PRB -> Condition on the problem list: PRB-3 code, -4 instance id, -7 established, -9 resolved, -14 status, -16 onset."""
    code = codeable(field(prb, 3)) or {"text": "unknown problem"}
    resource: dict[str, Any] = {
        "resourceType": "Condition", "id": resource_id("Condition", msg_key, str(index)),
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item"}]}],
        "code": code, "subject": subject,
    }
    instance = unescape(field(prb, 4).split("^")[0])
    if instance:
        resource["identifier"] = [{"value": instance}]
    action = field(prb, 1).strip().upper()
    clinical = None
    if action == "DE":  # the sender withdraws the problem: it was recorded in error
        resource["verificationStatus"] = {"coding": [{"system": VERIFICATION, "code": "entered-in-error"}]}
    else:
        clinical = PROBLEM_CLINICAL.get(unescape(field(prb, 14).split("^")[0]).strip().upper())
        if clinical:
            resource["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]}
    recorded, resolved, onset = dtm(field(prb, 7)), dtm(field(prb, 9)), dtm(field(prb, 16))
    if recorded:
        resource["recordedDate"] = recorded
    if onset:
        resource["onsetDateTime"] = onset
    if resolved and action != "DE":
        resource["abatementDateTime"] = resolved
        if clinical not in {"inactive", "resolved", "remission"}:  # an abated condition cannot still be active (con-4)
            resource["clinicalStatus"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]}
    return resource


DIAGNOSIS_ROLE = "http://terminology.hl7.org/CodeSystem/diagnosis-role"
# DG1-6 diagnosis type (table 0052) -> diagnosis-role: an admitting diagnosis, and a final one (made at discharge);
# a working diagnosis has no role of its own
ROLE = {"A": ("AD", "Admission diagnosis"), "F": ("DD", "Discharge diagnosis")}


def diagnosis_role(dg1: Any) -> tuple[dict[str, Any] | None, int | None]:
    """DG1-6 as a diagnosis-role CodeableConcept and DG1-15 (priority) as a rank (1 is the primary diagnosis)."""
    role = ROLE.get(field(dg1, 6).strip()[:1].upper())
    rank = field(dg1, 15).strip()
    return ({"coding": [{"system": DIAGNOSIS_ROLE, "code": role[0], "display": role[1]}]} if role else None,
            int(rank) if rank.isdigit() and 0 < int(rank) < 2**31 else None)
