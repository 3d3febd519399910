"""PL (person location) -> Locations. The V2-to-FHIR guide maps each filled PL component to a Location of
its own, each `partOf` the one above: facility (site) <- building <- floor <- point of care <- room <- bed.
The innermost one is where the patient is, and what an Encounter or Appointment points at."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir_mappers.datatypes import comps, registered, unescape
from fhir_mappers.ids import Clean, CleanList, clean_text, ref, resource_id

PHYSICAL_TYPE = "http://terminology.hl7.org/CodeSystem/location-physical-type"
# (PL component, physical type), outermost first; PL.1 point of care is a nursing unit, hence ward
LEVELS = ((4, "si", "site"), (7, "bu", "building"), (8, "lvl", "level"), (1, "wa", "ward"), (2, "ro", "room"), (3, "bd", "bed"))
PHYSICAL_TYPES = {code: Clean(coding=CleanList([Clean(system=PHYSICAL_TYPE, code=code, display=display)])) for _, code, display in LEVELS}


def _hd_identifier(hd: str) -> Clean | None:
    """A universal id (HD.2 with HD.3 ISO, or any other HD.3) identifies the place beyond the sender."""
    parts = (hd.split("&") + ["", ""])[:3]
    if not parts[1]:
        return None
    value = clean_text(unescape(parts[1]))
    if not value:
        return None
    return Clean(system="urn:ietf:rfc:3986", value=f"urn:oid:{value}") if parts[2].upper() == "ISO" else Clean(value=value)


def locations(pl: str, facility: str) -> list[dict[str, Any]]:
    """The chain of Locations for one PL, outermost first (so the last is the innermost); [] when empty. PL-9
    (description) is the point of care's Location.description, as the V2-to-FHIR guide's PL map has it.
    Ids are keyed by the path from the facility, so bed 1 of room 2 and bed 1 of room 3 stay apart, and
    the same place named twice in one message, or in two messages, is one resource."""
    chain: list[dict[str, Any]] = []
    if not pl:
        return chain
    for location_id, name, code, ident, description in (_cached_levels if len(pl) <= 200 else _levels)(pl, facility):
        location: dict[str, Any] = {"resourceType": "Location", "id": location_id, "name": name, "mode": "instance",
                                    "physicalType": PHYSICAL_TYPES[code]}
        if ident:
            location["identifier"] = [ident]
        if chain:
            location["partOf"] = ref(chain[-1])
        if description:
            location["description"] = description
        chain.append(location)
    return chain


def _levels(pl: str, facility: str) -> tuple[tuple[str, str, str, Clean | None, str], ...]:
    """(id, name, physical type, identifier, description) of each Location of a PL, outermost first. Cached: a
    patient's bed is named in every message about the stay; the resources are built fresh from it each time."""
    c = comps(pl)
    found: list[list[Any]] = []
    path = [unescape(c[3].split("&")[0]) or facility]
    for n, code, _ in LEVELS:
        raw = c[n - 1]
        name = unescape(raw.split("&")[0])  # each of these PL components is an HD (v2.7+): namespace&universal id&type
        if not name.strip():
            continue
        path.append(f"{code}:{name}")
        found.append([resource_id("Location", *path), name, code, _hd_identifier(raw), ""])
    if c[8] and found:  # PL-9 location description: the guide's PL map gives it to the point of care's Location
        description = unescape(c[8])
        if description.strip():
            # no point of care (PL-1) to hold it: the innermost Location, so the description is not lost
            next((level for level in found if level[2] == "wa"), found[-1])[4] = description
    return tuple(tuple(level) for level in found)


_cached_levels = registered(lru_cache(maxsize=4096)(_levels))  # long PLs (free sender text) are not kept
