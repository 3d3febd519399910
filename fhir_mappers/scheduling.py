"""SCH (+TQ1, AIS, AIG, AIL, AIP, and the NTEs after them) -> Appointment; AIS -> the ServiceRequest the appointment
is based on; AIG -> the Device booked."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, entity_identifier, field, number, positive_int, reps, unescape
from fhir_mappers.devices import booked_device
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations
from fhir_mappers.participants import V2_0443, note_text, practitioner_role

# SCH-25 filler status (table 0278) -> Appointment.status
APPOINTMENT_STATUS = {"BOOKED": "booked", "PENDING": "pending", "WAITLIST": "waitlist", "CANCELLED": "cancelled",
                      "COMPLETE": "fulfilled", "NOSHOW": "noshow", "STARTED": "arrived", "DC": "cancelled",
                      "DELETED": "entered-in-error", "BLOCKED": "booked", "OVERBOOK": "booked"}
# when SCH-25 is empty the trigger event still says what happened to the appointment
EVENT_STATUS = {"S15": "cancelled", "S17": "entered-in-error", "S26": "noshow"}
PARTICIPANT_STATUS = {"booked": "accepted", "arrived": "accepted", "fulfilled": "accepted", "cancelled": "declined",
                      "noshow": "declined", "entered-in-error": "declined"}
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
SCHEDULE_SEGMENTS = frozenset({"SCH", "AIS", "AIG", "AIL", "AIP"})
# SCH's people: (person, phone, address, location) fields and the role each plays. Table 0443 has the enterer; the
# placer's and filler's contacts have no code there, so they are named in clinstream's namespace
CONTACTS = (
    ((12, 13, 14, 15), {"coding": [{"system": "urn:clinstream:codesystem:appointment-contact", "code": "placer-contact", "display": "Placer contact"}]}),
    ((16, 17, 18, 19), {"coding": [{"system": "urn:clinstream:codesystem:appointment-contact", "code": "filler-contact", "display": "Filler contact"}]}),
    ((20, 21, 0, 22), {"coding": [{"system": V2_0443, "code": "EP", "display": "Entering Provider"}]}),
)
MINUTES = {"S": 1 / 60, "SEC": 1 / 60, "M": 1, "MIN": 1, "H": 60, "HR": 60, "HOUR": 60, "D": 1440, "DAY": 1440}


def _minutes(amount: str, units: str) -> float | None:
    value = number(unescape(amount))
    if value is None:
        return None
    unit = comps(units)
    factor = MINUTES.get((unit[0] or unit[1]).strip().upper(), MINUTES.get((unit[1] or "").strip().upper()))
    return value * factor if factor is not None and value > 0 else None


def _plus(moment: str, minutes: float) -> str | None:
    try:
        return (datetime.fromisoformat(moment) + timedelta(minutes=minutes)).isoformat()
    except ValueError:
        return None


class Schedule:
    """An SCH and the TQ1, AIS, AIG, AIL and AIP segments that follow it."""

    def __init__(self, sch: Any, index: int) -> None:
        self.sch, self.index = sch, index
        self.tq1: Any | None = None
        self.services: list[tuple[Any, int]] = []
        self.places: list[Any] = []
        self.people: list[Any] = []
        self.equipment: list[Any] = []
        # the NTEs after the SCH (the Appointment's comment) and after an AIS (its ServiceRequest's notes), as (the
        # segment noted, the NTE, its text); R4 has no place for a note on one booked resource (AIG, AIL, AIP), so
        # those NTEs are kept verbatim
        self.notes: list[tuple[int, int, str]] = []
        self.unused: list[int] = []
        self._noted = "SCH", index

    def add(self, seg_id: str, seg: Any, index: int) -> None:
        if seg_id == "NTE":
            kind, owner = self._noted
            if kind in {"SCH", "AIS"}:
                self.notes.append((owner, index, note_text(seg)))
            else:
                self.unused.append(index)
            return
        if seg_id != "TQ1":
            self._noted = seg_id, index
        if seg_id == "TQ1" and self.tq1 is None:
            self.tq1 = seg
        elif seg_id == "AIS":
            self.services.append((seg, index))
        elif seg_id == "AIL":
            self.places.append(seg)
        elif seg_id == "AIP":
            self.people.append(seg)
        elif seg_id == "AIG":
            self.equipment.append(seg)

    def _period(self) -> tuple[str | None, str | None]:
        """TQ1-7/8, else SCH-11 start/end (deprecated TQ), else the first service's AIS-4 plus its AIS-7 duration."""
        if self.tq1 is not None and dtm(field(self.tq1, 7)):
            return dtm(field(self.tq1, 7)), dtm(field(self.tq1, 8))
        timing = comps(field(self.sch, 11))
        if dtm(timing[3]):
            return dtm(timing[3]), dtm(timing[4])
        for ais, _ in self.services:
            start = dtm(field(ais, 4))
            if start:
                minutes = _minutes(field(ais, 7), field(ais, 8))
                return start, _plus(start, minutes) if minutes and "T" in start else None
        return None, None

    def resources(self, msg_key: str, facility: str, event: str, patient: dict | None,
                  encounter: dict | None) -> tuple[list[dict], list[dict], list[int]]:
        """(Appointment and ServiceRequests, shared Locations and Practitioners, unmapped segment indexes)."""
        sch = self.sch
        status = APPOINTMENT_STATUS.get(comps(field(sch, 25))[0].strip().upper()) or EVENT_STATUS.get(event, "booked")
        attendance = PARTICIPANT_STATUS.get(status, "needs-action")
        appointment: dict[str, Any] = {"resourceType": "Appointment", "id": resource_id("Appointment", msg_key, str(self.index)),
                                       "status": status}
        identifiers = [i for i in (entity_identifier(field(sch, 1), "PLAC"), entity_identifier(field(sch, 2), "FILL")) if i]
        if identifiers:
            appointment["identifier"] = identifiers
        kind = comps(field(sch, 7))
        if kind[0] and not kind[2]:  # SCH-7 is table 0276 unless the sender names another system
            appointment["appointmentType"] = {"coding": [{"system": V2_0276, "code": unescape(kind[0])} | ({"display": unescape(kind[1])} if kind[1] else {})]}
        elif codeable(field(sch, 7)):
            appointment["appointmentType"] = codeable(field(sch, 7))
        reason = codeable(field(sch, 6))
        if reason:
            appointment["reasonCode"] = [reason]
        start, end = self._period()
        if start and end:  # the Appointment invariant: both or neither
            appointment["start"], appointment["end"] = start, end
        minutes = _minutes(field(sch, 9), field(sch, 10))  # SCH-9/10 appointment duration and its units
        if minutes is not None and minutes < 2**31 and positive_int(round(minutes)):
            appointment["minutesDuration"] = round(minutes)
        services = [c for c in (codeable(field(ais, 3)) for ais, _ in self.services) if c]
        if services:
            appointment["serviceType"] = services
        made: list[dict] = []
        shared: list[dict] = []
        participants: list[dict[str, Any]] = []
        if patient:
            participants.append({"actor": patient, "status": attendance})
        # AIL, AIP and AIG: the place, person and equipment booked, each with its type (AIP-4, AIG-4) and start
        # (AIL-6, AIP-6, AIG-8)
        for ail in self.places:
            chain = locations(field(ail, 3), facility)
            if chain:
                shared.extend(chain)
                participants.append(_participant(chain[-1], attendance, "", field(ail, 6)))
        for aip in self.people:
            doctor = practitioner(field(aip, 3).split("~")[0], shared)
            if doctor:
                shared.append(doctor)
                participants.append(_participant(doctor, attendance, field(aip, 4), field(aip, 6)))
        for aig in self.equipment:
            device = booked_device(aig, facility)
            if device:
                shared.append(device)
                participants.append(_participant(device, attendance, field(aig, 4), field(aig, 8)))
        for (person, phone, address, place), role in CONTACTS:  # SCH's contact people and enterer: supporting information
            found = practitioner_role(role, field(sch, person).split("~")[0], "", field(sch, place).split("~")[0], facility,
                                      phones=tuple(reps(field(sch, phone))), addresses=tuple(reps(field(sch, address))) if address else ())
            if found.actor is not None:
                shared.extend(found.made)
                appointment.setdefault("supportingInformation", []).append(ref(found.actor))
        unused = list(self.unused)
        if not participants:  # an Appointment needs at least one participant
            return [], [], sorted([self.index, *(i for _, i in self.services), *(i for _, i, _ in self.notes), *unused])
        appointment["participant"] = participants
        comment = [text for owner, _, text in self.notes if owner == self.index]
        if comment:
            appointment["comment"] = "\n".join(comment)
        if patient:
            for ais, index in self.services:
                request: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("ServiceRequest", msg_key, str(index)),
                                           "status": "revoked" if status in {"cancelled", "entered-in-error"} else "active",
                                           "intent": "order", "subject": patient}
                code = codeable(field(ais, 3))
                if code:
                    request["code"] = code
                if encounter:
                    request["encounter"] = encounter
                begin = dtm(field(ais, 4))
                if begin:
                    request["occurrenceDateTime"] = begin
                notes = [{"text": text} for owner, _, text in self.notes if owner == index]
                if notes:
                    request["note"] = notes
                made.append(request)
                appointment.setdefault("basedOn", []).append(ref(request))
        else:  # no patient, so no ServiceRequest to carry the AIS notes
            unused += [i for owner, i, _ in self.notes if owner != self.index]
        return [appointment] + made, shared, sorted(unused)


def _participant(actor: dict[str, Any], status: str, kind: str, start: str) -> dict[str, Any]:
    """An Appointment participant: the resource booked, its attendance, its type (CWE) and when it is booked from."""
    participant: dict[str, Any] = {"actor": ref(actor), "status": status}
    role = codeable(kind)
    if role:
        participant["type"] = [role]
    moment = dtm(start)
    if moment:
        participant["period"] = {"start": moment}
    return participant
