"""PV1 -> Encounter, with Location (PV1-3) and Practitioners (PV1-7 attending, -8 referring, -17 admitting);
PV2 -> what it adds to the Encounter (admit reason, expected dates, length of stay, referrer, priority, arrival)."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, field, number, person, unescape
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations

ACT_CODE = {"I": ("IMP", "inpatient encounter"), "O": ("AMB", "ambulatory"), "E": ("EMER", "emergency"),
            "P": ("PRENC", "pre-admission"), "R": ("IMP", "inpatient encounter"), "B": ("AMB", "ambulatory")}
# PV1 location fields and what each says of the patient's stay there: assigned, prior, temporary,
# pending, prior temporary
PLACES = ((3, "active"), (6, "completed"), (11, "active"), (42, "planned"), (43, "completed"))
PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (17, "ADM", "admitter"))
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
# PV2-25 visit priority (table 0217) -> v3 ActPriority
VISIT_PRIORITY = {"1": ("EM", "emergency"), "2": ("UR", "urgent"), "3": ("EL", "elective")}
# R4 has no planned dates on Encounter; R5 does, and these cross-version extensions carry them into R4
PLANNED_START = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
MODE_OF_ARRIVAL = "http://hl7.org/fhir/StructureDefinition/encounter-modeOfArrival"


def practitioner(xcn: str) -> dict[str, Any] | None:
    ident, name = person(xcn)
    if not ident and not name:
        return None
    # keyed by the id within its assigning authority (XCN-9), so two registries' "1234" stay apart; an XCN
    # without an authority can only be keyed by its bare id (or its name when it has none)
    key = f"{ident['system']}|{ident['value']}" if ident else xcn
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": resource_id("Practitioner", key)}
    if ident:
        resource["identifier"] = [ident]
    if name:
        resource["name"] = [name]
    return resource


def _participant(code: str, display: str, doctor: dict[str, Any]) -> dict[str, Any]:
    return {"type": [{"coding": [{"system": PARTICIPATION_TYPE, "code": code, "display": display}]}], "individual": ref(doctor)}


def encounter(pv1: Any, event: str, facility: str, fallback_key: str, patient: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Encounter and the Location and Practitioner resources it points to."""
    visit = comps(field(pv1, 19))
    key = f"{unescape(visit[3].split('&')[0]) or facility}|{unescape(visit[0])}" if visit[0] else fallback_key
    klass = field(pv1, 2).strip()[:1].upper()
    code, display = ACT_CODE.get(klass, (klass or "UNK", None))
    system = "http://terminology.hl7.org/CodeSystem/v3-ActCode" if klass in ACT_CODE else "http://terminology.hl7.org/CodeSystem/v2-0004"
    klass_coding = {"system": system, "code": code} | ({"display": display} if display else {})
    if not klass:
        klass_coding = {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}
    start, end = dtm(field(pv1, 44)), dtm(field(pv1, 45))
    status = "finished" if event == "A03" or end else "in-progress" if event in {"A01", "A04", "A08"} or start else "unknown"
    resource: dict[str, Any] = {"resourceType": "Encounter", "id": resource_id("Encounter", key), "status": status,
                                "class": klass_coding, "subject": ref(patient)}
    if visit[0]:
        resource["identifier"] = [{"value": unescape(visit[0]), "system": f"urn:clinstream:visit:{key.split('|')[0]}"}]
    if start or end:
        resource["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    related: list[dict[str, Any]] = []
    participants = []
    for n, code, display in PARTICIPANTS:
        doctor = practitioner(field(pv1, n).split("~")[0])
        if doctor:
            related.append(doctor)
            participants.append(_participant(code, display, doctor))
    if participants:
        resource["participant"] = participants
    visits = []
    for n, place_status in PLACES:
        chain = locations(field(pv1, n).split("~")[0], facility)
        if chain:
            related.extend(chain)
            if n == 3 and status == "finished":
                place_status = "completed"
            visits.append({"location": ref(chain[-1]), "status": place_status})
    if visits:
        resource["location"] = visits
    return resource, related


def visit_details(pv2: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """PV2 onto the Encounter made from PV1: 3 admit reason, 8/9 expected admit and discharge times, 11 actual
    length of stay (days), 13 referral source (a referrer), 25 visit priority, 38 mode of arrival. Returns the
    Practitioners it names."""
    reason = codeable(field(pv2, 3))
    if reason:
        resource.setdefault("reasonCode", []).append(reason)
    extensions = [{"url": url, "valueDateTime": moment} for url, moment in ((PLANNED_START, dtm(field(pv2, 8))), (PLANNED_END, dtm(field(pv2, 9))))
                  if moment]
    days = number(unescape(field(pv2, 11)))
    if days is not None and days >= 0:
        resource["length"] = {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    related = []
    referrer = practitioner(field(pv2, 13).split("~")[0])
    if referrer:
        related.append(referrer)
        resource.setdefault("participant", []).append(_participant("REF", "referrer", referrer))
    priority = comps(field(pv2, 25))
    codings = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActPriority", "code": VISIT_PRIORITY[c][0], "display": VISIT_PRIORITY[c][1]}
               for c in (priority[0].strip(), priority[3].strip()) if c in VISIT_PRIORITY]
    if codings:
        resource["priority"] = {"coding": codings}
    arrival = codeable(field(pv2, 38))
    if arrival and arrival.get("coding"):
        coding = arrival["coding"][0]
        if comps(field(pv2, 38))[2].strip().upper() in {"", "HL70430"}:  # table 0430 unless the sender names another system
            coding["system"] = "http://terminology.hl7.org/CodeSystem/v2-0430"
        extensions.append({"url": MODE_OF_ARRIVAL, "valueCoding": coding})
    if extensions:
        resource.setdefault("extension", []).extend(extensions)
    return related
