"""MSH and EVN -> Provenance of what the message made: one for the message as its sender wrote it (MSH: when,
by which facility, from which application), and one for the event it reports (EVN: recorded and occurred
times, operator, reason, facility), as the V2-to-FHIR guide maps MSH and EVN."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, coded, comps, dtm, field, instant, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import Clean, CleanList, clean_text, ref, resource_id
from fhir_mappers.locations import locations

PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
V2_0062 = "http://terminology.hl7.org/CodeSystem/v2-0062"
# EVN-4 event reason (table 0062) -> v3 ActReason where one says the same: a patient's request, census management;
# other codes are kept in table 0062
EVENT_REASON = {"01": ("PATRQT", "patient requested"), "03": ("HOPERAT", "healthcare operations")}


def _activity(msh: Any, event: str) -> Clean | None:
    """The trigger event as a v2-0003 code, with MSH-9 as sent for its text."""
    text = clean_text(unescape(field(msh, 9))) or clean_text(event)
    activity = {"text": text} if text else {}
    if event:
        activity["coding"] = coded("http://terminology.hl7.org/CodeSystem/v2-0003", event)["coding"]
    return Clean(activity) if activity else None  # None: the last pass drops the key


def _agent(kind: str, who: dict[str, Any]) -> dict[str, Any]:
    return Clean(type=coded(PARTICIPANT_TYPE, kind), who=ref(who))


def message_provenance(msh: Any, event: str, msg_key: str, targets: list[dict[str, Any]], sender: dict[str, Any] | None,
                       application: dict[str, Any] | None, software: list[dict[str, Any]]) -> dict[str, Any] | None:
    """MSH-7 (when sent), MSH-4's Organization (author), MSH-3's Device (the source) and the SFT software that
    handled the message (assemblers). None without an instant in MSH-7 or anyone to name as agent: R4 requires both."""
    recorded = instant(field(msh, 7))
    author = sender or application
    if not recorded or not author or not targets:
        return None
    resource: dict[str, Any] = {"resourceType": "Provenance", "id": resource_id("Provenance", msg_key, "MSH"),
                                "target": CleanList(ref(t) for t in targets), "occurredDateTime": recorded, "recorded": recorded,
                                "activity": _activity(msh, event),
                                "agent": [_agent("author", author)] + [_agent("assembler", d) for d in software]}
    if application:
        resource["entity"] = [Clean(role="source", what=ref(application))]
    return resource


def event_provenance(evn: Any, msh: Any, event: str, msg_key: str, facility: str, targets: list[dict[str, Any]],
                     recorder: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """EVN: 2 recorded (else MSH-7), 4 reason, 5 operator (enterer), 6 occurred, 7 event facility (location).
    Without an operator the event was recorded by the sending system: `recorder` (MSH-4's Organization or MSH-3's
    Device) is the author. None without an instant to record or anyone to name as agent."""
    recorded = instant(field(evn, 2)) or instant(field(msh, 7))
    authorities: list[dict[str, Any]] = []
    operator = practitioner(field(evn, 5).split("~")[0], authorities)
    agent = _agent("enterer", operator) if operator else _agent("author", recorder) if recorder else None
    if not recorded or not agent or not targets:
        return None, []
    resource: dict[str, Any] = {"resourceType": "Provenance", "id": resource_id("Provenance", msg_key, "EVN"),
                                "target": CleanList(ref(t) for t in targets), "recorded": recorded, "activity": _activity(msh, event),
                                "agent": [agent]}
    occurred = dtm(field(evn, 6))
    if occurred:
        resource["occurredDateTime"] = occurred
    reason = comps(field(evn, 4))
    code = unescape(reason[0]).strip()
    if code in EVENT_REASON:
        resource["reason"] = [{"coding": [{"system": ACT_REASON, "code": EVENT_REASON[code][0], "display": EVENT_REASON[code][1]}]}]
    elif code and reason[2].strip().upper() in {"", "HL70062"}:
        resource["reason"] = [{"coding": [{"system": V2_0062, "code": code} | ({"display": unescape(reason[1])} if reason[1] else {})]}]
    elif codeable(field(evn, 4)):
        resource["reason"] = [codeable(field(evn, 4))]
    related: list[dict[str, Any]] = [operator] + authorities if operator else []
    place = locations("^^^" + field(evn, 7).split("~")[0].replace("^", "&"), facility)  # an HD: the facility as a PL's site
    if place:
        resource["location"] = ref(place[-1])
        related += place
    return resource, related
