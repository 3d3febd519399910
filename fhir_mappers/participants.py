"""PRT (participation) and ROL (role) -> PractitionerRole with its Practitioner, Organization and Location (and
for PRT a Device); and how each joins the resource made from the segment it follows (Encounter.participant,
Patient.generalPractitioner, Procedure/ChargeItem/Observation/ServiceRequest performer), as the V2-to-FHIR guide
reads a PRT or ROL by the segment group it is part of."""

from __future__ import annotations

from dataclasses import dataclass, field as dc_field
from typing import Any

from fhir_mappers.datatypes import address, codeable, comps, dtm, field, reps, telecom, unescape
from fhir_mappers.devices import participation_device
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations
from fhir_mappers.organizations import xon_organization

V2_0443 = "http://terminology.hl7.org/CodeSystem/v2-0443"
# PRT-4's table 0912 took over table 0443's codes (ROL-3); both are coded in v2-0443, as ORC-12's OP role is here
ROLE_TABLES = {"", "HL70443", "HL70912"}
GENERAL_PRACTITIONER = {"PP", "FHCP"}  # primary care provider, family health care professional
ORDERING_PROVIDER = "OP"
# roles that take no part in the work itself: who gets copies of the results, who entered the data; on an order,
# a result, a procedure or a charge they are no performer and their PractitionerRole stands alone
NOT_PERFORMING = {"RCT", "EP"}


@dataclass
class Participant:
    """What one PRT or ROL says: the role played, by whom (a PractitionerRole) or by what (a Device)."""

    role: dict[str, Any] | None
    actor: dict[str, Any] | None
    device: dict[str, Any] | None
    made: list[dict[str, Any]] = dc_field(default_factory=list)  # every resource it names, the actor and device included

    @property
    def code(self) -> str:
        codings = (self.role or {}).get("coding") or [{}]
        return str(codings[0].get("code", "")).upper()


def coded_role(cwe: str) -> dict[str, Any] | None:
    """A role (table 0443/0912, e.g. "RO", or a CWE naming another system) -> CodeableConcept."""
    c = comps(cwe)
    code = unescape(c[0]).strip()
    if code and c[2].strip().upper() in ROLE_TABLES:
        coding: dict[str, Any] = {"system": V2_0443, "code": code}
        if unescape(c[1]).strip():
            coding["display"] = unescape(c[1])
        return {"coding": [coding]}
    return codeable(cwe)


def practitioner_role(role: dict[str, Any] | None, person_xcn: str, org_xon: str = "", place: str = "", facility: str = "",
                      begin: str = "", end: str = "", specialties: tuple[str, ...] = (), phones: tuple[str, ...] = (),
                      addresses: tuple[str, ...] = ()) -> Participant:
    """The PractitionerRole of a person (XCN) and/or organisation (XON) in `role`, at a place (PL), for a time,
    with the person's specialties (CWE), phones (XTN) and addresses (XAD); no actor when it names neither."""
    authorities: list[dict[str, Any]] = []
    person = practitioner(person_xcn, authorities)
    org = xon_organization(org_xon, "participant")
    made: list[dict[str, Any]] = [r for r in (person, org) if r] + authorities
    places = [a for a in (address(x) for x in addresses) if a]
    if places and (person or org):  # PractitionerRole has no address: it is the person's, or else the organisation's
        (person or org)["address"] = places  # type: ignore[index]
    if not person and not org:
        return Participant(role, None, None, [])
    chain = locations(place, facility)
    made += chain
    code = (role or {}).get("coding", [{}])[0].get("code", "")
    key = (code, person["id"] if person else "", org["id"] if org else "", chain[-1]["id"] if chain else "")
    actor: dict[str, Any] = {"resourceType": "PractitionerRole", "id": resource_id("PractitionerRole", *key)}
    if person:
        actor["practitioner"] = ref(person)
    if org:
        actor["organization"] = ref(org)
    if role:
        actor["code"] = [role]
    if chain:
        actor["location"] = [ref(chain[-1])]
    kinds = [k for k in (codeable(x) for x in specialties) if k]
    if kinds:
        actor["specialty"] = kinds
    start, stop = dtm(begin), dtm(end)
    if start or stop:
        actor["period"] = {k: v for k, v in (("start", start), ("end", stop)) if v}
    points = [t for t in (telecom(x) for x in phones) if t]
    if points:
        actor["telecom"] = points
    return Participant(role, actor, None, [actor] + made)


def participation(prt: Any, facility: str) -> Participant:
    """PRT: 4 role, 5 person, 6 provider type, 8 organisation, 9 location, 10/16-22 device, 11/12 period,
    14 address, 15 telecom."""
    found = practitioner_role(coded_role(field(prt, 4)), field(prt, 5).split("~")[0], field(prt, 8).split("~")[0], field(prt, 9).split("~")[0],
                              facility, field(prt, 11), field(prt, 12), tuple(reps(field(prt, 6))), tuple(reps(field(prt, 15))),
                              tuple(reps(field(prt, 14))))
    found.device = participation_device(prt)
    if found.device:
        found.made.append(found.device)
    return found


def role(rol: Any, facility: str) -> Participant:
    """ROL: 3 role, 4 person, 5/6 period, 9 provider type, 11 address, 12 telecom, 13 location, 14 organisation.
    ROL-1 (role instance id) is left out: senders fill it with the segment's sequence number."""
    return practitioner_role(coded_role(field(rol, 3)), field(rol, 4).split("~")[0], field(rol, 14).split("~")[0], field(rol, 13).split("~")[0],
                             facility, field(rol, 5), field(rol, 6), tuple(reps(field(rol, 9))), tuple(reps(field(rol, 12))),
                             tuple(reps(field(rol, 11))))


def _add(target: dict[str, Any], key: str, item: dict[str, Any]) -> None:
    items = target.setdefault(key, [])
    if item not in items:
        items.append(item)


def attach(found: Participant, target: dict[str, Any]) -> None:
    """Join a participant to the resource made from the segment its PRT or ROL follows; a participant the
    target has no place for stays a resource of its own."""
    kind = target["resourceType"]
    if found.code in NOT_PERFORMING and kind != "Encounter":
        return
    actor = ref(found.actor) if found.actor else None
    device = ref(found.device) if found.device else None
    if kind == "Patient":
        if actor and found.code in GENERAL_PRACTITIONER:
            _add(target, "generalPractitioner", actor)
    elif kind == "Encounter":
        if actor:
            _add(target, "participant", {"individual": actor} | ({"type": [found.role]} if found.role else {}))
    elif kind in {"Procedure", "ChargeItem"}:
        for who in (actor, device):
            if who:
                _add(target, "performer", {"actor": who} | ({"function": found.role} if found.role else {}))
    elif kind == "Observation":
        if actor:
            _add(target, "performer", actor)
        if device and "device" not in target:
            target["device"] = device
    elif kind == "DiagnosticReport":
        if actor:
            _add(target, "performer", actor)
    elif kind == "ServiceRequest":
        if actor and found.code == ORDERING_PROVIDER and "requester" not in target:
            target["requester"] = actor
        else:
            for who in (actor, device):
                if who:
                    _add(target, "performer", who)


def note_text(nte: Any) -> str:
    """NTE-3, its repetitions one line each."""
    return "\n".join(unescape(r) for r in field(nte, 3).split("~") if r)


def annotation(nte: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """NTE -> Annotation, as the guide's NTE map: 3 the text, 5 entered by (XCN) its authorReference, 6 entered
    date/time its time; with the Practitioner (and its assigning authority) the author names. None when NTE-3 is empty."""
    text = note_text(nte)
    if not text:
        return None, []
    note: dict[str, Any] = {"text": text}
    made: list[dict[str, Any]] = []
    author = practitioner(field(nte, 5).split("~")[0], made)
    if author:
        note["authorReference"] = ref(author)
        made.insert(0, author)
    entered = dtm(field(nte, 6))
    if entered:
        note["time"] = entered
    return note, made
