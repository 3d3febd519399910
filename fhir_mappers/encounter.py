"""PV1 -> Encounter, with Locations (PV1-3/6/11/42/43, -37 discharged to), Practitioners (PV1-7 attending, -8 referring,
-9 consulting, -17 admitting, -52 other) and the assigning authorities of its visit ids (PV1-5, -19, -50);
PV2 -> what it adds to the Encounter (admit reason, expected dates, length of stay, referrer, priority, arrival)."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import V2_0203, codeable, coded, comps, dtm, field, in_system, number, person, table_concept, unescape
from fhir_mappers.ids import Clean, CleanList, ref, resource_id
from fhir_mappers.locations import locations
from fhir_mappers.organizations import assigned_identifier, hd_organization

ACT_CODE = {"I": ("IMP", "inpatient encounter"), "O": ("AMB", "ambulatory"), "E": ("EMER", "emergency"),
            "P": ("PRENC", "pre-admission"), "R": ("IMP", "inpatient encounter"), "B": ("AMB", "ambulatory")}
# PV1 location fields and what each says of the patient's stay there: assigned, prior, temporary,
# pending, prior temporary
PLACES = ((3, "active"), (6, "completed"), (11, "active"), (42, "planned"), (43, "completed"))
PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"), (17, "ADM", "admitter"),
                (52, "PART", "Participation"))
# encounter status when PV1-45 (discharge time) is empty: events that cancel the visit, events that say the
# patient is there now (admitted, registered, transferred, a pending or cancelled transfer or discharge),
# else the guide's PatientClass[EncounterStatus] map of PV1-2 (preadmit planned, unknown unknown, others in
# progress)
CANCEL_EVENTS = {"A11", "A27", "A38"}
PRESENT_EVENTS = {"A01", "A02", "A04", "A06", "A07", "A12", "A13", "A15", "A16", "A25", "A26"}
CLASS_STATUS = {"E": "in-progress", "I": "in-progress", "O": "in-progress", "R": "in-progress", "B": "in-progress",
                "C": "in-progress", "N": "in-progress", "P": "planned", "U": "unknown"}
# the HL7-defined tables of PV1-4 (admission type) and PV1-13 (re-admission); the user-defined ones (PV1-10, -14,
# -16, -36, -38) keep the system the sender names, if any
ADMISSION_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0007"
READMISSION = "http://terminology.hl7.org/CodeSystem/v2-0092"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
UNKNOWN_CLASS = Clean(system="http://terminology.hl7.org/CodeSystem/v3-NullFlavor", code="UNK")
VISIT_NUMBER = Clean(coding=CleanList([Clean(system=V2_0203, code="VN")]), text="visit number")
# PV2-25 visit priority (table 0217) -> v3 ActPriority
VISIT_PRIORITY = {"1": ("EM", "emergency"), "2": ("UR", "urgent"), "3": ("EL", "elective")}
# R4 has no planned dates on Encounter; R5 does, and these cross-version extensions carry them into R4
PLANNED_START = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
MODE_OF_ARRIVAL = "http://hl7.org/fhir/StructureDefinition/encounter-modeOfArrival"


def practitioner(xcn: str, made: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
    """XCN -> Practitioner. With `made`, the Organization of the id's assigning authority (XCN-9, when it carries a
    universal id: the guide's XCN[Practitioner] via HD[Organization]) is added to it and set as identifier.assigner."""
    ident, name = person(xcn)
    if not ident and not name:
        return None
    # keyed by the id within its assigning authority (XCN-9), so two registries' "1234" stay apart; an XCN
    # without an authority can only be keyed by its bare id (or its name when it has none)
    key = f"{ident['system']}|{ident['value']}" if ident else xcn
    resource: dict[str, Any] = {"resourceType": "Practitioner", "id": resource_id("Practitioner", key)}
    if ident:
        resource["identifier"] = [ident]
        hd = comps(xcn)[8].split("&") + ["", ""]
        authority = hd_organization(hd[0], hd[1], hd[2]) if made is not None else None
        if authority:
            resource["identifier"] = [Clean({**ident, "assigner": ref(authority)})]
            made.append(authority)
    if name:
        resource["name"] = [name]
    return resource


def discharge_location(dld: str) -> dict[str, Any] | None:
    """PV1-37 (DLD: location CWE as subcomponents^effective date) -> the Location the patient was discharged to."""
    c = comps(dld)[0].split("&") + ["", ""]
    code, name = unescape(c[0]).strip(), unescape(c[1]).strip()
    if not code and not name:
        return None
    place: dict[str, Any] = {"resourceType": "Location", "id": resource_id("Location", "discharge", code, name), "name": name or code,
                             "mode": "instance"}
    if code:
        place["identifier"] = [{"value": code}]
    return place


def visit_status(pv1: Any, event: str) -> str:
    """Encounter.status: finished once PV1-45 is valued or on a discharge (A03), cancelled on a cancelled
    admission, in progress on events that place the patient in the facility, else from PV1-2 (guide's map)."""
    if event == "A03" or dtm(field(pv1, 45)):
        return "finished"
    if event in CANCEL_EVENTS:
        return "cancelled"
    if event in PRESENT_EVENTS:
        return "in-progress"
    klass = field(pv1, 2).strip()[:1].upper()
    if klass in CLASS_STATUS:
        return CLASS_STATUS[klass]
    return "in-progress" if dtm(field(pv1, 44)) else "unknown"


def _participant(code: str, display: str, doctor: dict[str, Any]) -> dict[str, Any]:
    return Clean(type=CleanList([coded(PARTICIPATION_TYPE, code, display)]), individual=ref(doctor))


def encounter(pv1: Any, event: str, facility: str, fallback_key: str, patient: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Encounter and the Location and Practitioner resources it points to."""
    visit = comps(field(pv1, 19))
    key = f"{unescape(visit[3].split('&')[0]) or facility}|{unescape(visit[0])}" if visit[0] else fallback_key
    klass = field(pv1, 2).strip()[:1].upper()
    code, display = ACT_CODE.get(klass, (klass or "UNK", None))
    system = "http://terminology.hl7.org/CodeSystem/v3-ActCode" if klass in ACT_CODE else "http://terminology.hl7.org/CodeSystem/v2-0004"
    klass_coding = coded(system, code, display or "")["coding"][0] if klass else UNKNOWN_CLASS
    start, end = dtm(field(pv1, 44)), dtm(field(pv1, 45))
    status = visit_status(pv1, event)
    resource: dict[str, Any] = {"resourceType": "Encounter", "id": resource_id("Encounter", key), "status": status,
                                "class": klass_coding, "subject": ref(patient)}
    related: list[dict[str, Any]] = []
    identifiers = []
    if visit[0]:  # PV1-19 visit number, typed VN (guide), with its assigning authority
        number_id: dict[str, Any] = {"value": unescape(visit[0]), "system": f"urn:clinstream:visit:{key.split('|')[0]}",
                                     "type": VISIT_NUMBER}
        _, authority = assigned_identifier(field(pv1, 19).split("~")[0])
        if authority:
            number_id["assigner"] = ref(authority)
            related.append(authority)
        identifiers.append(number_id)
    for cx in field(pv1, 50).split("~"):  # PV1-50 alternate visit ids
        ident, authority = assigned_identifier(cx)
        if ident and ident not in identifiers:
            identifiers.append(ident)
            related += [authority] if authority else []
    if identifiers:
        resource["identifier"] = identifiers
    if start or end:
        resource["period"] = Clean((k, v) for k, v in (("start", start), ("end", end)) if v)
    kind = table_concept(field(pv1, 4), "HL70007", ADMISSION_TYPE)
    if kind:
        resource["type"] = [kind]
    service = codeable(field(pv1, 10))
    if service:
        resource["serviceType"] = service
    stay = _hospitalization(pv1, related)
    if stay:
        resource["hospitalization"] = stay
    participants = []
    for n, code, display in PARTICIPANTS:
        doctor = practitioner(field(pv1, n).split("~")[0], related)
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
            visits.append(Clean(location=ref(chain[-1]), status=place_status))
    if visits:
        resource["location"] = visits
    return resource, related


def _hospitalization(pv1: Any, related: list[dict[str, Any]]) -> dict[str, Any]:
    """PV1 -> Encounter.hospitalization (guide's PV1[Encounter]): 5 pre-admission id, 13 re-admission, 14 admit
    source, 16 VIP indicator, 36 discharge disposition, 37 discharged-to Location, 38 diet. Adds to `related`
    the Organizations and Locations it names."""
    stay: dict[str, Any] = {}
    ident, authority = assigned_identifier(field(pv1, 5).split("~")[0])
    if ident:
        stay["preAdmissionIdentifier"] = ident
        related += [authority] if authority else []
    again = table_concept(field(pv1, 13), "HL70092", READMISSION)
    if again:
        stay["reAdmission"] = again
    for n, key in ((14, "admitSource"), (16, "specialCourtesy"), (36, "dischargeDisposition")):
        concept = codeable(field(pv1, n).split("~")[0])
        if concept:
            stay[key] = [concept] if key == "specialCourtesy" else concept
    place = discharge_location(field(pv1, 37))
    if place:
        stay["destination"] = ref(place)
        related.append(place)
    diet = codeable(field(pv1, 38))
    if diet:
        stay["dietPreference"] = [diet]
    return stay


def visit_details(pv2: Any, resource: dict[str, Any], facility: str = "") -> list[dict[str, Any]]:
    """PV2 onto the Encounter made from PV1: 1 prior pending location (a planned Encounter.location), 3 admit reason,
    8/9 expected admit and discharge times, 11 actual length of stay (days), 13 referral source (a referrer), 25 visit
    priority, 38 mode of arrival. Returns the Practitioners and Locations it names."""
    reason = codeable(field(pv2, 3))
    if reason:
        resource.setdefault("reasonCode", []).append(reason)
    extensions = [{"url": url, "valueDateTime": moment} for url, moment in ((PLANNED_START, dtm(field(pv2, 8))), (PLANNED_END, dtm(field(pv2, 9))))
                  if moment]
    days = number(unescape(field(pv2, 11)))
    if days is not None and days >= 0:
        resource["length"] = {"value": days, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    related = []
    chain = locations(field(pv2, 1).split("~")[0], facility)
    if chain:
        related += chain
        resource.setdefault("location", []).append({"location": ref(chain[-1]), "status": "planned"})
    referrer = practitioner(field(pv2, 13).split("~")[0], related)
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
        if comps(field(pv2, 38))[2].strip().upper() in {"", "HL70430"}:  # table 0430 unless the sender names another system
            arrival = in_system(arrival, "http://terminology.hl7.org/CodeSystem/v2-0430")
        extensions.append({"url": MODE_OF_ARRIVAL, "valueCoding": arrival["coding"][0]})
    if extensions:
        resource.setdefault("extension", []).extend(extensions)
    return related
