"""ACC (accident) -> one Observation of the injury incident: when it happened, what (code and description),
where (a Location), who entered it, and the job-related, death and police-notified indicators as components."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import address, codeable, comps, dtm, field, unescape
from fhir_mappers.death import OBSERVATION_CODES, indicator_value
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id

INDICATOR_CODES = "urn:clinstream:codesystem:accident-indicator"
# (ACC field, component code, display): yes/no answers (table 0136)
INDICATORS = ((5, "AJRI", "Accident Job Related Indicator"), (6, "ADI", "Accident Death Indicator"),
              (10, "PNI", "Police Notified Indicator"))
# the VRDR extension for where an observed event took place
LOCATION_EXTENSION = "http://hl7.org/fhir/us/vrdr/StructureDefinition/Observation-Location"


def accident(acc: Any, index: int, msg_key: str, patient: dict, encounter: dict | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the Observation, shared resources: the Location and the Practitioner who entered it).
    ACC: 1 date/time (effective), 2 accident code (the value, with 8 description as its text; 8 alone is a
    string value), 3 location and 11 address (a Location), 4 auto accident state, 5/6/10 indicators (components),
    7 entered by (performer), 13 accident identifier."""
    resource: dict[str, Any] = {"resourceType": "Observation", "id": resource_id("Observation", msg_key, str(index)), "status": "final",
                                "code": {"coding": [{"system": OBSERVATION_CODES, "code": "injury-incident",
                                                     "display": "Injury Incident Description Narrative"}]},
                                "subject": patient}
    if encounter:
        resource["encounter"] = encounter
    ident = comps(field(acc, 13))
    if unescape(ident[0]).strip():
        resource["identifier"] = [{"value": unescape(ident[0])}]
    when = dtm(field(acc, 1))
    if when:
        resource["effectiveDateTime"] = when
    kind = codeable(field(acc, 2))
    description = unescape(field(acc, 8)).strip()
    if kind:
        if description:
            kind = {**kind, "text": description}
        resource["valueCodeableConcept"] = kind
    elif description:
        resource["valueString"] = description
    components = []
    state = codeable(field(acc, 4))
    if state:
        components.append({"code": {"text": "Auto Accident State"}, "valueCodeableConcept": state})
    for n, code, display in INDICATORS:
        value = indicator_value(field(acc, n))
        if value:
            components.append({"code": {"coding": [{"system": INDICATOR_CODES, "code": code, "display": display}]},
                               "valueCodeableConcept": value})
    if components:
        resource["component"] = components
    shared: list[dict[str, Any]] = []
    clerk = practitioner(field(acc, 7).split("~")[0], shared)
    if clerk:
        resource["performer"] = [ref(clerk)]
        shared.append(clerk)
    name = unescape(field(acc, 3)).strip()
    raw = field(acc, 11).split("~")[0]
    where = address(raw)
    if where and "&" in comps(raw)[0]:  # SAD: street or mailing address & street name & dwelling number, all kept
        parts = comps(raw)
        where = {**where, "line": [p for p in (unescape(s).strip() for s in parts[0].split("&") + [parts[1].split("&")[0]]) if p]}
    if name or where:
        place: dict[str, Any] = {"resourceType": "Location", "id": resource_id("Location", msg_key, str(index), "accident")}
        if name:
            place["name"] = name
        if where:
            place["address"] = where
        resource["extension"] = [{"url": LOCATION_EXTENSION, "valueReference": ref(place)}]
        shared.append(place)
    return resource, shared
