"""PDA (patient death and autopsy) -> the cause of death as a Condition, whether a death certificate was issued,
an autopsy done and the coroner involved as Observations (table 0136 answers), and the certification and the
autopsy, with who did them, as Procedures; the place of death is a Location the visit ended at."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, field, reps, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations

# FHIR-Converter's codes for the PDA facts: no standard code says "a death certificate was issued" as a yes/no
OBSERVATION_CODES = "urn:clinstream:codesystem:observation-code"
PROCEDURE_CODES = "urn:clinstream:codesystem:procedure-code"
YES_NO = "http://terminology.hl7.org/CodeSystem/v2-0136"
YES_NO_DISPLAY = {"Y": "Yes", "N": "No"}
# (PDA indicator field, code, display)
INDICATORS = ((3, "death-certificate", "Death Certificate"), (6, "autopsy", "Autopsy"), (9, "coroner", "Coroner"))


def indicator_value(text: str) -> dict[str, Any] | None:
    """A table 0136 (yes/no) field -> CodeableConcept; a value outside the table is kept as text."""
    value = unescape(comps(text)[0]).strip()
    if not value:
        return None
    if value.upper() in YES_NO_DISPLAY:
        return {"coding": [{"system": YES_NO, "code": value.upper(), "display": YES_NO_DISPLAY[value.upper()]}]}
    return {"text": value}


def _procedure(key: str, code: str, display: str, role: str, performed: dict[str, Any], xcn: str, patient: dict,
               encounter: dict | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    resource: dict[str, Any] = {"resourceType": "Procedure", "id": resource_id("Procedure", key, code), "status": "completed",
                                "code": {"coding": [{"system": PROCEDURE_CODES, "code": code, "display": display}]},
                                "subject": patient} | performed
    if encounter:
        resource["encounter"] = encounter
    authorities: list[dict[str, Any]] = []
    doctor = practitioner(xcn, authorities)
    if doctor:
        resource["performer"] = [{"function": {"text": role}, "actor": ref(doctor)}]
    return resource, [doctor] + authorities if doctor else []


def death(pda: Any, index: int, msg_key: str, facility: str, patient: dict, encounter: dict | None
          ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(own resources, shared ones: Practitioners and Locations, the chain of Locations of the place of death).
    PDA: 1 death cause (Condition each), 2 death location, 3 death certified indicator, 4 certificate signed
    date/time and 5 certified by (the certification Procedure), 6 autopsy indicator, 7 autopsy start and end and
    8 autopsy performed by (the autopsy Procedure), 9 coroner indicator."""
    key = f"{msg_key}|{index}"
    own: list[dict[str, Any]] = []
    shared: list[dict[str, Any]] = []
    for n, cause in enumerate(c for c in (codeable(x) for x in reps(field(pda, 1))) if c):
        condition: dict[str, Any] = {"resourceType": "Condition", "id": resource_id("Condition", key, "death-cause", str(n)),
                                     "code": cause, "subject": patient}
        if encounter:
            condition["encounter"] = encounter
        own.append(condition)
    for n, code, display in INDICATORS:
        value = indicator_value(field(pda, n))
        if value:
            found: dict[str, Any] = {"resourceType": "Observation", "id": resource_id("Observation", key, code), "status": "final",
                                     "code": {"coding": [{"system": OBSERVATION_CODES, "code": code, "display": display}]},
                                     "subject": patient, "valueCodeableConcept": value}
            if encounter:
                found["encounter"] = encounter
            own.append(found)
    signed = dtm(field(pda, 4))
    if signed or comps(field(pda, 5))[0] or comps(field(pda, 5))[1]:
        made, people = _procedure(key, "death-certification", "Death Certification", "Death Certified By",
                                  {"performedDateTime": signed} if signed else {}, field(pda, 5).split("~")[0], patient, encounter)
        own.append(made)
        shared += people
    span = comps(field(pda, 7))
    start, end = dtm(span[0]), dtm(span[1])
    if start or end or comps(field(pda, 8))[0] or comps(field(pda, 8))[1]:
        period = {k: v for k, v in (("start", start), ("end", end)) if v}
        made, people = _procedure(key, "autopsy-performed", "Autopsy Performed", "Autopsy Performed By",
                                  {"performedPeriod": period} if period else {}, field(pda, 8).split("~")[0], patient, encounter)
        own.append(made)
        shared += people
    place = locations(field(pda, 2).split("~")[0], facility)
    shared += place
    return own, shared, place
