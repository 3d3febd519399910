"""PL (person location) -> Locations. The V2-to-FHIR guide maps each filled PL component to a Location of
its own, each `partOf` the one above: facility (site) <- building <- floor <- point of care <- room <- bed.
The innermost one is where the patient is, and what an Encounter or Appointment points at."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import comps, unescape
from fhir_mappers.ids import ref, resource_id

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# (PL component, physical type), outermost first; PL.1 point of care is a nursing unit, hence ward
LEVELS = ((4, "si", "site"), (7, "bu", "building"), (8, "lvl", "level"), (1, "wa", "ward"), (2, "ro", "room"), (3, "bd", "bed"))


def _hd_identifier(hd: str) -> dict[str, Any] | None:
    """A universal id (HD.2 with HD.3 ISO, or any other HD.3) identifies the place beyond the sender."""
    parts = (hd.split("&") + ["", ""])[:3]
    if not parts[1]:
        return None
    if parts[2].upper() == "ISO":
        return {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:{unescape(parts[1])}"}
    return {"value": unescape(parts[1])}


def locations(pl: str, facility: str) -> list[dict[str, Any]]:
    """The chain of Locations for one PL, outermost first (so the last is the innermost); [] when empty. PL-9
    (description) is the point of care's Location.description, as the V2-to-FHIR guide's PL map has it.
    Ids are keyed by the path from the facility, so bed 1 of room 2 and bed 1 of room 3 stay apart, and
    the same place named twice in one message, or in two messages, is one resource."""
    c = comps(pl)
    chain: list[dict[str, Any]] = []
    path = [unescape(c[3].split("&")[0]) or facility]
    for n, code, display in LEVELS:
        raw = c[n - 1]
        name = unescape(raw.split("&")[0])  # each of these PL components is an HD (v2.7+): namespace&universal id&type
        if not name.strip():
            continue
        path.append(f"{code}:{name}")
        location: dict[str, Any] = {"resourceType": "Location", "id": resource_id("Location", *path), "name": name,
                                    "mode": "instance",
                                    "physicalType": {"coding": [{"system": PHYSICAL_TYPE, "code": code, "display": display}]}}
        ident = _hd_identifier(raw)
        if ident:
            location["identifier"] = [ident]
        if chain:
            location["partOf"] = ref(chain[-1])
        chain.append(location)
    if c[8] and chain:  # PL-9 location description: the guide's PL map gives it to the point of care's Location
        description = unescape(c[8])
        if description.strip():
            # no point of care (PL-1) to hold it: the innermost Location, so the description is not lost
            target = next((loc for loc in chain if loc["physicalType"]["coding"][0]["code"] == "wa"), chain[-1])
            target["description"] = description
    return chain
