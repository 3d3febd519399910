"""DG1 -> Condition (encounter diagnosis), PRB -> Condition (problem-list item), AL1 and IAM (+IAR) -> AllergyIntolerance."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import clean_text, codeable, comps, dtm, entity_identifier, field, human_name, table_code, table_concept, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.related import relationship

VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# AL1-2 allergen type (table 0127) -> category and type, the guide's AllergenType maps: a miscellaneous allergy (MA) or
# contraindication (MC) has no category, and a contraindication is no allergy
ALLERGY_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "AA": "biologic", "PA": "environment", "LA": "environment"}
ALLERGY_TYPES = {"DA", "FA", "MA", "EA", "AA", "PA", "LA"}
# AL1-4 severity (table 0128) -> criticality, the guide's AllergySeverity map: moderate and unknown say nothing of it
ALLERGY_CRITICALITY = {"SV": "high", "MI": "low"}
ALTERNATE_CODES = "http://hl7.org/fhir/StructureDefinition/alternate-codes"
V2_0127, V2_0128 = "http://terminology.hl7.org/CodeSystem/v2-0127", "http://terminology.hl7.org/CodeSystem/v2-0128"


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
    """AL1 -> AllergyIntolerance, the guide's AL1 map: AL1-2 category and type, AL1-3 code, AL1-4 criticality (the
    sender's severity code kept beside it as an alternate code), AL1-5 reactions, AL1-6 identification date as
    onset. An allergy a message lists is a current one (AL1 has no status)."""
    resource = _allergy(al1, index, msg_key, patient)
    resource["clinicalStatus"] = _ALLERGY_ACTIVE
    reaction = unescape(field(al1, 5))
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": r} for r in reaction.split("~") if r]}]
    onset = dtm(field(al1, 6))
    if onset:
        resource["onsetDateTime"] = onset
    return resource


_ALLERGY_ACTIVE = {"coding": [{"system": ALLERGY_CLINICAL, "code": "active"}]}
# IAM-17 allergy clinical status (table 0438) -> verificationStatus: only C says the allergy is confirmed, E that it is not
ALLERGY_VERIFICATION = {"C": "confirmed", "U": "unconfirmed", "P": "unconfirmed", "S": "unconfirmed", "D": "unconfirmed", "E": "refuted"}
ALLERGY_VERIFICATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
REACTION_SEVERITY = {"SV": "severe", "MO": "moderate", "MI": "mild"}  # table 0128 -> reaction.severity


def _allergy(segment: Any, index: int, msg_key: str, patient: dict) -> dict[str, Any]:
    """What AL1 and IAM share (fields 2-4): category and type, code, criticality."""
    resource: dict[str, Any] = {"resourceType": "AllergyIntolerance", "id": resource_id("AllergyIntolerance", msg_key, str(index)),
                                "patient": patient}
    code = codeable(field(segment, 3))
    if code:
        resource["code"] = code
    allergen_type = field(segment, 2)
    kind = unescape(allergen_type.split("^")[0]).strip().upper()
    category = ALLERGY_CATEGORY.get(kind)
    if category:
        resource["category"] = [category]
        # R4 category is a bare code: the sender's coding rides on it
        resource["_category"] = [{"extension": [{"url": ALTERNATE_CODES, "valueCodeableConcept": table_concept(allergen_type, "HL70127", V2_0127)}]}]
    if kind in ALLERGY_TYPES:
        resource["type"] = "allergy"
    severity = field(segment, 4)
    if severity:
        criticality = ALLERGY_CRITICALITY.get(unescape(severity.split("^")[0]).strip().upper())
        if criticality:
            resource["criticality"] = criticality
        original = table_concept(severity, "HL70128", V2_0128)
        if original:  # kept even where it names no criticality (moderate, unknown): a primitive may hold only an extension
            resource["_criticality"] = {"extension": [{"url": ALTERNATE_CODES, "valueCodeableConcept": original}]}
    return resource


def allergy_update(iam: Any, index: int, msg_key: str, patient: dict) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """IAM (ADT^A60, allergy information with its own status) -> AllergyIntolerance, the guide's IAM map: as AL1 for
    fields 2-4, IAM-27 (the clinician's code) a second coding, IAM-5 a reaction (IAM-4 its severity), IAM-7
    identifier, IAM-11 onset (IAM-12, its text, when there is no date), IAM-17 verification (table 0438), and
    IAM-6 action D or an inactivation (IAM-21/22) for its status. Two choices follow the FHIR definitions rather
    than the guide (and agree with FHIR-Converter): IAM-14/15, who reported it, is the asserter (the patient for
    SEL, a RelatedPerson of that relationship, else a Practitioner of that name), IAM-23, who first recorded it,
    the recorder; recordedDate is IAM-24, when the record was first made, else IAM-13, when it was reported.
    Returns the resource and the people it names."""
    resource = _allergy(iam, index, msg_key, patient)
    made: list[dict[str, Any]] = []
    clinician_code = codeable(field(iam, 27))
    if clinician_code:
        codings = list(resource.get("code", {}).get("coding", [])) + [c for c in clinician_code.get("coding", [])]
        resource["code"] = {**resource.get("code", {}), "coding": codings}
    ident = entity_identifier(field(iam, 7))
    if ident:
        resource["identifier"] = [ident]
    if field(iam, 6).split("^")[0].strip().upper() == "D":  # the sender withdraws the record
        resource["verificationStatus"] = {"coding": [{"system": ALLERGY_VERIFICATION_SYSTEM, "code": "entered-in-error"}]}
    else:
        inactive = field(iam, 21) or field(iam, 22)
        resource["clinicalStatus"] = {"coding": [{"system": ALLERGY_CLINICAL, "code": "inactive" if inactive else "active"}]}
        verification = table_code(iam, 17, ALLERGY_VERIFICATION)
        if verification:
            resource["verificationStatus"] = {"coding": [{"system": ALLERGY_VERIFICATION_SYSTEM, "code": verification}]}
    reaction_text = clean_text(unescape(field(iam, 5)))
    if reaction_text:
        reaction: dict[str, Any] = {"manifestation": [{"text": reaction_text}]}
        severity = REACTION_SEVERITY.get(field(iam, 4).split("^")[0].strip().upper())
        if severity:
            reaction["severity"] = severity
        resource["reaction"] = [reaction]
    onset = dtm(field(iam, 11))
    onset_text = clean_text(unescape(field(iam, 12)))
    if onset:
        resource["onsetDateTime"] = onset
    elif onset_text:
        resource["onsetString"] = onset_text
    recorded = dtm(field(iam, 24)) or dtm(field(iam, 13))
    if recorded:
        resource["recordedDate"] = recorded
    reporter = field(iam, 14).split("~")[0]
    related_as = field(iam, 15)
    if related_as.split("^")[0].strip().upper() == "SEL":
        resource["asserter"] = patient
    elif reporter and related_as:
        person = {"resourceType": "RelatedPerson", "id": resource_id("RelatedPerson", msg_key, "IAM", str(index)), "patient": patient}
        name, concept = human_name(reporter), relationship(related_as)
        if name:
            person["name"] = [name]
        if concept:
            person["relationship"] = [concept]
        resource["asserter"] = ref(person)
        made.append(person)
    elif reporter:
        person = practitioner("^" + "^".join(comps(reporter)[:6]))  # an XPN is an XCN without the id
        if person:
            resource["asserter"] = ref(person)
            made.append(person)
    recorder = practitioner(field(iam, 23).split("~")[0], made)
    if recorder:
        resource["recorder"] = ref(recorder)
        made.insert(0, recorder)
    return resource, made


def allergy_reaction(iar: Any) -> dict[str, Any] | None:
    """IAR (a reaction to the allergen of the IAM before it) -> AllergyIntolerance.reaction: IAR-1 the manifestation,
    IAR-2 its severity, IAR-4 how it was managed, as a note. None without IAR-1: R4 requires a manifestation."""
    manifestation = codeable(field(iar, 1))
    if not manifestation:
        return None
    reaction: dict[str, Any] = {"manifestation": [manifestation]}
    severity = table_code(iar, 2, REACTION_SEVERITY)
    if severity:
        reaction["severity"] = severity
    managed = clean_text(unescape(field(iar, 4)))
    if managed:
        reaction["note"] = [{"text": managed}]
    return reaction


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
        clinical = table_code(prb, 14, PROBLEM_CLINICAL)
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
