"""ORC/OBR -> ServiceRequest, SPM -> Specimen; walks the order, pharmacy and scheduling segments of a
message and hands RXA/RXO/RXE/RXC/RXR/RXD to pharmacy.py and SCH/AIS/AIG/AIL/AIP/TQ1 (and their NTEs) to scheduling.py."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import (cached_by_text, codeable, comps, dtm, entity_identifier, field, identifier_system, number, positive_int, quantity, reps,
                                    system_uri, unescape, unused)
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import CleanList, fhir_safe, frozen, ref, resource_id
from fhir_mappers.participants import V2_0443, practitioner_role

# ORC-5 (table 0038) -> ServiceRequest.status; it wins over ORC-1 when valued (v2-to-fhir ORC map)
ORDER_STATUS = {"A": "active", "IP": "active", "SC": "active", "CM": "completed", "CA": "revoked", "DC": "revoked",
                "RP": "revoked", "ER": "entered-in-error", "HD": "on-hold"}
# ORC-1 (table 0119) -> status; codes that say nothing about the order's state (SC, RE...) stay unknown
ORDER_CONTROL = {"NW": "active", "OK": "active", "SN": "active", "XO": "active", "XR": "active", "RF": "active",
                 "AF": "active", "FU": "active", "PA": "active", "RR": "active", "CA": "active", "DC": "active",
                 "OC": "revoked", "OD": "revoked", "CR": "revoked", "DR": "revoked", "CP": "revoked", "HR": "on-hold",
                 "OH": "on-hold"}
PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "P": "routine", "T": "urgent", "C": "urgent"}
SPECIMEN_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0487"
REPEAT_PATTERN = "http://terminology.hl7.org/CodeSystem/v2-0335"
# events whose order groups put the OBR before its ORC (OUL^R22/R23/R24: ORDER = OBR, [ORC], ...)
OBR_FIRST = frozenset({"R22", "R23", "R24"})
# segments this module consumes; OBR and DG1 are also read here (order code, reasons) but mapped elsewhere too
ORDER_SEGMENTS = frozenset({"ORC", "SPM", "TQ1", "RXA", "RXR", "RXO", "RXE", "RXC", "RXD", "SCH", "AIS", "AIG", "AIL", "AIP", "CTI", "INV"})


def order_identifiers(orc: Any | None, obr: Any | None) -> list[dict[str, Any]]:
    """Placer and filler numbers (OBR-2/3 and ORC-2/3, which the standard wants equal: both when they are not) and the
    placer group number ORC-4."""
    out = []
    for n, code in ((2, "PLAC"), (3, "FILL")):
        texts = [field(segment, n).strip() for segment in (obr, orc) if segment is not None]
        for text in dict.fromkeys(t for t in texts if t):
            ident = entity_identifier(text, code)
            if ident:
                out.append(ident)
    group = entity_identifier(field(orc, 4), "PGN") if orc is not None else None
    return out + ([group] if group else [])


def tq1_timing(tq1: Any) -> dict[str, Any] | None:
    """TQ1 -> Timing, as the guide's TQ1[ServiceRequest] and TQ1[MedicationRequest] share it: 3 repeat pattern -> code
    (table 0335 unless the sender names another system), 7/8 start and end -> repeat.boundsPeriod."""
    rpt = comps(field(tq1, 3).split("~")[0])[0].split("&") + ["", "", ""]
    when: dict[str, Any] = {}
    code = " ".join(unescape(rpt[0]).split())
    if code:
        named = unescape(rpt[2]).strip()
        coding: dict[str, Any] = {"system": REPEAT_PATTERN if named.upper() in ("", "HL70335") else system_uri(named), "code": code}
        if unescape(rpt[1]).strip():
            coding["display"] = unescape(rpt[1])
        when["code"] = {"coding": [coding]}
    repeat: dict[str, Any] = {}
    start, end = dtm(field(tq1, 7)), dtm(field(tq1, 8))
    if start or end:
        repeat["boundsPeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    service = _time_quantity(field(tq1, 6))  # 6 service duration: how long the whole series lasts, when 7/8 do not say
    if service and not (start or end):
        repeat["boundsDuration"] = {"value": service[0], "unit": service[1], "system": UCUM, "code": service[1]}
    elif field(tq1, 6):
        unused(tq1, 6)
    times = [t for t in (_time_of_day(x) for x in reps(field(tq1, 4))) if t]  # 4 explicit times
    if times:
        repeat["timeOfDay"] = times
    each = _time_quantity(field(tq1, 13))  # 13 how long each occurrence lasts
    if each:
        repeat["duration"], repeat["durationUnit"] = each
    total = positive_int(field(tq1, 14))  # 14 total occurrences
    if total:
        repeat["countMax"] = total
    if repeat:
        when["repeat"] = repeat
    return when or None


UCUM = "http://unitsofmeasure.org"
# a CQ's time unit (its code, else its text) -> the UCUM unit FHIR's Timing and Duration take; "m" is left out: minute or month?
UNITS_OF_TIME = {"s": "s", "sec": "s", "second": "s", "seconds": "s", "min": "min", "minute": "min", "minutes": "min", "h": "h",
                 "hr": "h", "hour": "h", "hours": "h", "d": "d", "day": "d", "days": "d", "wk": "wk", "week": "wk", "weeks": "wk",
                 "mo": "mo", "month": "mo", "months": "mo", "a": "a", "yr": "a", "year": "a", "years": "a"}


def _time_quantity(cq: str) -> tuple[float, str] | None:
    """CQ (quantity^units, units a CWE) of time -> (value, UCUM unit); None when either is missing or not a time unit."""
    c = comps(cq)
    value = number(unescape(c[0])) if c[0] else None
    units = c[1].split("&") + [""]
    unit = UNITS_OF_TIME.get(unescape(units[0]).strip().lower()) or UNITS_OF_TIME.get(unescape(units[1]).strip().lower())
    return (value, unit) if value is not None and value >= 0 and unit else None


def _time_of_day(tm: str) -> str | None:
    """TM (HHMM[SS], or with colons) -> FHIR time HH:MM:SS."""
    digits = tm.strip().replace(":", "").split(".")[0].split("+")[0].split("-")[0]
    if not digits.isdigit() or len(digits) not in (2, 4, 6):
        return None
    hh, mm, ss = digits[:2], digits[2:4] or "00", digits[4:6] or "00"
    return f"{hh}:{mm}:{ss}" if int(hh) < 24 and int(mm) < 60 and int(ss) < 60 else None


def ordering_provider(xcn: str) -> list[dict[str, Any]]:
    """XCN of an ordering provider -> [PractitionerRole (code OP), its Practitioner...], or [] when empty.
    The guide maps ORC-12 to requester as a PractitionerRole that points at the Practitioner; made by
    participants.practitioner_role, so a PRT OP of the same doctor is the same PractitionerRole."""
    return _ordering_provider(xcn.split("~")[0])


@cached_by_text
def _ordering_provider(xcn: str) -> CleanList:
    """Cached, final: a feed's orders name the same few hundred doctors (message.SegmentCache says why final resources
    may be shared)."""
    found = practitioner_role({"coding": [{"system": V2_0443, "code": "OP", "display": "Ordering Provider"}]}, xcn)
    return CleanList(frozen(fhir_safe(r)) for r in found.made) if found.actor is not None else CleanList()


def request_status(orc: Any | None) -> str:
    if orc is None:
        return "unknown"
    status = field(orc, 5).split("^")[0].strip().upper()
    if status:
        return ORDER_STATUS.get(status, "unknown")
    return ORDER_CONTROL.get(field(orc, 1).split("^")[0].strip().upper(), "unknown")


def service_request(orc: Any | None, obr: Any | None, key: str, subject: dict, encounter: dict | None,
                    requester: dict | None, tq1: Any | None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("ServiceRequest", key),
                                "status": request_status(orc), "intent": "order", "subject": subject}
    identifiers = order_identifiers(orc, obr)
    if identifiers:
        resource["identifier"] = identifiers
    code = codeable(field(obr, 4)) if obr is not None else None
    if code:
        resource["code"] = code
    if encounter:
        resource["encounter"] = encounter
    authored = dtm(field(orc, 9)) if orc is not None else None
    if authored:
        resource["authoredOn"] = authored
    if requester:
        resource["requester"] = requester
    priority = PRIORITY.get(comps(field(tq1, 9))[0].upper()) if tq1 is not None else None
    if priority:
        resource["priority"] = priority
    timing = tq1_timing(tq1) if tq1 is not None else None  # the guide's TQ1[ServiceRequest]: occurrenceTiming, 11 a note
    cq = comps(field(tq1, 2)) if tq1 is not None else ["", ""]  # TQ1-2, how much of the service: a CQ, its units a CWE in subcomponents
    amount = quantity(cq[0], cq[1].replace("&", "^"))
    if amount:
        resource["quantityQuantity"] = amount
    if timing:
        resource["occurrenceTiming"] = timing
    instruction = unescape(field(tq1, 11)).strip() if tq1 is not None else ""
    if instruction:
        resource["note"] = [{"text": instruction}]
    reasons = [c for c in (codeable(x) for x in reps(field(obr, 31))) if c] if obr is not None else []
    if reasons:  # OBR-31 reason for study
        resource["reasonCode"] = reasons
    return resource


def _collected(resource: dict[str, Any], start: str | None, end: str | None) -> None:
    if start and end and end != start:
        resource["collection"] = {"collectedPeriod": {"start": start, "end": end}}
    elif start:
        resource["collection"] = {"collectedDateTime": start}


def specimen(spm: Any, key: str, subject: dict | None) -> dict[str, Any]:
    """SPM -> Specimen: SPM-2 placer/filler ids, -4 type, -7 method, -8 site, -17 collection, -18 received, -20 availability
    (SPM-3 parents: parent_specimens)."""
    resource: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", key)}
    ids = comps(field(spm, 2).split("~")[0])
    identifiers = [i for i in (entity_identifier(ids[0].replace("&", "^"), "PLAC"),
                               entity_identifier(ids[1].replace("&", "^"), "FILL")) if i]
    if identifiers:
        resource["identifier"] = identifiers
    kind = comps(field(spm, 4))
    if kind[0] and kind[2].upper() in {"", "HL70487"}:  # table 0487 is the standard's own specimen type table
        kind[2] = ""
        resource["type"] = {"coding": [{"system": SPECIMEN_TYPE, "code": unescape(kind[0])} | ({"display": unescape(kind[1])} if kind[1] else {})]}
    else:
        concept = codeable(field(spm, 4))
        if concept:
            resource["type"] = concept
    if subject:
        resource["subject"] = subject
    period = comps(field(spm, 17))
    _collected(resource, dtm(period[0]), dtm(period[1]))
    method, site = codeable(field(spm, 7)), codeable(field(spm, 8))
    if method or site:
        collection = resource.setdefault("collection", {})
        if method:
            collection["method"] = method
        if site:
            collection["bodySite"] = site
    received = dtm(field(spm, 18))
    if received:
        resource["receivedTime"] = received
    available = field(spm, 20).strip().upper()
    if available in {"Y", "N"}:
        resource["status"] = "available" if available == "Y" else "unavailable"
    return resource


def parent_specimens(spm: Any, subject: dict | None) -> list[dict[str, Any]]:
    """SPM-3 (specimen parent ids, EIP, repeating) -> the parent Specimens, one per repetition, each identified by
    its placer id (else its filler id: the guide maps one of the two), for Specimen.parent. Keyed by patient and
    identifier, so the specimens of a message that share a parent point at the same one."""
    parents = []
    for eip in field(spm, 3).split("~"):
        ids = comps(eip)
        ident = entity_identifier(ids[0].replace("&", "^"), "PLAC") or entity_identifier(ids[1].replace("&", "^"), "FILL")
        if ident is None:
            continue
        key = (subject or {}).get("reference", ""), ident.get("system", ""), ident["value"]
        parent: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", "parent", *key), "identifier": [ident]}
        if subject:
            parent["subject"] = subject
        if all(p["id"] != parent["id"] for p in parents):
            parents.append(parent)
    return parents


def obr_specimen(obr: Any, key: str, subject: dict | None) -> dict[str, Any] | None:
    """Without SPM the order's times still describe a specimen: OBR-7 (collected, start) and OBR-8 (end), OBR-14 (received
    in the lab), as the guide's OBR[Specimen] map."""
    start, end, received = dtm(field(obr, 7)), dtm(field(obr, 8)), dtm(field(obr, 14))
    if not start and not received:
        return None
    resource: dict[str, Any] = {"resourceType": "Specimen", "id": resource_id("Specimen", key)}
    if subject:
        resource["subject"] = subject
    if start:
        _collected(resource, start, end)
    if received:
        resource["receivedTime"] = received
    return resource


class _Order:
    """One ORC and what belongs to it until the next ORC (an OBR, pharmacy segments, SPM, DG1, TQ1)."""

    def __init__(self, orc: Any | None, index: int) -> None:
        self.orc, self.index = orc, index
        self.obr: Any | None = None
        self.obr_index = -1
        self.tq1: Any | None = None
        self.pharmacy = False
        self.specimens: list[dict[str, Any]] = []
        self.reasons: list[dict[str, Any]] = []
        self.studies: list[dict[str, Any]] = []  # references to the ResearchStudy of each CTI in the order


def order_resources(segments: list[tuple[int, str, Any]], msg_key: str, facility: str, event: str,
                    subject: dict | None, encounter: dict | None) -> tuple[list[dict], list[dict], dict[int, dict], list[int]]:
    """(resources, shared Practitioner/Location resources, DiagnosticReport links per OBR index, unused segment indexes).

    `segments` are (index, id, segment) in message order: the ids of ORDER_SEGMENTS plus OBR and DG1."""
    from fhir_mappers.pharmacy import PharmacyOrder
    from fhir_mappers.scheduling import SCHEDULE_SEGMENTS, Schedule
    from fhir_mappers.studies import research_study
    from fhir_mappers.substances import substance

    resources: list[dict] = []
    related: list[dict] = []
    links: dict[int, dict] = {}
    unused: list[int] = []
    order: _Order | None = None
    pharmacy: PharmacyOrder | None = None
    schedule: Schedule | None = None
    last_specimen: dict | None = None
    # SPMs before any order (OUL^R22/R23 put the specimen group first and its orders inside it): the specimens
    # of the orders that follow and have none of their own
    leading: list[dict] = []
    requests: list[dict] = []  # the ServiceRequests and MedicationRequests made so far, the last one latest

    def close() -> None:
        nonlocal order, pharmacy
        if pharmacy is not None:
            made, shared, left = pharmacy.resources()
            for made_request in made:
                if made_request["resourceType"] == "MedicationRequest":
                    if order is not None and order.studies:
                        made_request["supportingInformation"] = list(order.studies)
                    requests.append(made_request)
            resources.extend(made)
            related.extend(shared)
            unused.extend(left)
        if order is not None and subject is not None and (order.obr is not None or not order.pharmacy or order.specimens):
            if order.obr is not None and not order.specimens and not leading:
                spec = obr_specimen(order.obr, f"{msg_key}|{order.obr_index}", subject)
                if spec:
                    order.specimens.append(spec)
            requester = None
            doctor_xcn = (field(order.orc, 12) if order.orc is not None else "") or (field(order.obr, 16) if order.obr is not None else "")
            people = ordering_provider(doctor_xcn)
            if people:
                requester = ref(people[0])
                related.extend(people)
            request = service_request(order.orc, order.obr, f"{msg_key}|{order.index}", subject, encounter, requester, order.tq1)
            specimens = order.specimens or (leading if order.obr is not None else [])
            for spec in specimens:  # what the specimen was collected for (Specimen.request)
                spec.setdefault("request", []).append(ref(request))
            if specimens:
                request["specimen"] = [ref(s) for s in specimens]
            if order.reasons:
                request["reasonReference"] = order.reasons
            if order.studies:
                request["supportingInfo"] = order.studies
            resources.append(request)
            requests.append(request)
            resources.extend(order.specimens)
            if order.obr is not None:
                links[order.obr_index] = {"basedOn": [ref(request)]} | ({"specimen": [ref(s) for s in specimens]} if specimens else {})
        elif order is not None and order.orc is not None and not order.pharmacy:
            unused.append(order.index)
        order = pharmacy = None

    for index, seg_id, seg in segments:
        if seg_id == "SCH":
            close()
            schedule = Schedule(seg, index)
        elif schedule is not None and seg_id in {"TQ1", "NTE"} | SCHEDULE_SEGMENTS:
            schedule.add(seg_id, seg, index)
        elif seg_id in SCHEDULE_SEGMENTS or seg_id == "NTE":  # a resource with no SCH to be booked for: kept verbatim
            unused.append(index)
        elif seg_id == "ORC":
            if event in OBR_FIRST and order is not None and order.orc is None and order.obr is not None and not order.pharmacy:
                # OUL^R22-R24 order groups are OBR, [ORC]: the ORC after an OBR is that order's, and keys its
                # ServiceRequest as an ORC before its OBR would (a PRT after the ORC finds it so)
                order.orc, order.index = seg, index
                continue
            close()
            order = _Order(seg, index)
        elif seg_id == "OBR":
            if order is None or order.obr is not None or order.pharmacy:
                close()
                order = _Order(None, index)
            order.obr, order.obr_index = seg, index
        elif seg_id in {"RXO", "RXE", "RXA", "RXD"}:
            if order is None or order.obr is not None:
                close()
                order = _Order(None, index)
            if pharmacy is None:
                pharmacy = PharmacyOrder(order.orc, msg_key, subject, encounter, order.tq1)
            order.pharmacy = True
            pharmacy.add(seg_id, seg, index)
            if seg_id == "RXA":  # VXU: the ORC of an administration is also a ServiceRequest (FHIR-Converter, guide's VXU map)
                order.pharmacy = False
        elif seg_id in {"RXR", "RXC"}:
            if pharmacy is None:
                unused.append(index)
            else:
                pharmacy.add(seg_id, seg, index)
        elif seg_id == "TQ1":
            if pharmacy is not None and order is not None and order.pharmacy:  # the timing of the RXO/RXE before it
                pharmacy.add(seg_id, seg, index)
            elif order is not None and order.tq1 is None:
                order.tq1 = seg
            else:
                unused.append(index)
        elif seg_id == "SPM":
            if subject is None:
                unused.append(index)
                continue
            spec = last_specimen = specimen(seg, f"{msg_key}|{index}", subject)
            parents = parent_specimens(seg, subject)
            if parents:
                spec["parent"] = [ref(p) for p in parents]
                related.extend(parents)
            if order is not None:
                order.specimens.append(spec)
            else:
                resources.append(spec)
                leading.append(spec)
        elif seg_id == "INV":  # a reagent or control in the container of the specimen before it
            made_substance = substance(seg, index, msg_key)
            if made_substance is None:
                unused.append(index)
                continue
            resources.append(made_substance)
            if last_specimen is not None:
                last_specimen.setdefault("container", []).append({"additiveReference": ref(made_substance)})
        elif seg_id == "CTI":  # the trial the order is part of; a CTI after the last order belongs to that order
            study = research_study(seg)
            if study is None or (order is None and not requests):
                unused.append(index)
                continue
            related.append(study)
            if order is not None:
                order.studies.append(ref(study))
            else:
                key = "supportingInfo" if requests[-1]["resourceType"] == "ServiceRequest" else "supportingInformation"
                requests[-1].setdefault(key, []).append(ref(study))
        elif seg_id == "DG1" and order is not None and subject is not None:
            # conditions.condition keys a DG1's Condition by message and segment index: the same id is rebuilt here
            order.reasons.append({"reference": f"urn:uuid:{resource_id('Condition', msg_key, str(index))}"})
    close()
    if schedule is not None:
        made, shared, left = schedule.resources(msg_key, facility, event, subject, encounter)
        resources.extend(made)
        related.extend(shared)
        unused.extend(left)
    return resources, related, links, sorted(set(unused))
