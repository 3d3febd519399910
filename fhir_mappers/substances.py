"""INV (inventory detail) -> Substance: a reagent, calibrator or control in a container on an analyzer, with
the container's identifier, how much is left and when it expires."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, date_only, field, identifier_system, quantity, unescape
from fhir_mappers.ids import resource_id

# INV-2 substance status (table 0383): OK, or a warning only, is a substance in use; an expired or
# unavailable one (EE, NE) is not; other errors say nothing of whether it is in use
SUBSTANCE_STATUS = {"OK": "active", "CW": "active", "EW": "active", "NW": "active", "OW": "active", "QW": "active",
                    "EE": "inactive", "NE": "inactive"}


def _cwe_identifier(text: str) -> dict[str, Any] | None:
    c = comps(text)
    value = unescape(c[0]).strip()
    if not value:
        return None
    return {"value": value} | ({"system": identifier_system(c[2])} if unescape(c[2]).strip() else {})


def substance(inv: Any, index: int, msg_key: str) -> dict[str, Any] | None:
    """INV: 1 substance id (code), 2 status, 3 type (category), 4 container id, 8 current quantity (else 9
    available, else 7 initial) in 11 units, 12 expiry, 16 manufacturer lot, 17 manufacturer and 18 supplier ids.
    None when the segment names neither the substance nor its container."""
    code = codeable(field(inv, 1))
    container = _cwe_identifier(field(inv, 4))
    if code is None and container is None:
        return None
    resource: dict[str, Any] = {"resourceType": "Substance", "id": resource_id("Substance", msg_key, str(index)),
                                "code": code or {"text": "unidentified substance"}}
    status = next((SUBSTANCE_STATUS[s] for s in (unescape(comps(r)[0]).strip().upper() for r in field(inv, 2).split("~"))
                   if s in SUBSTANCE_STATUS), None)
    if status:
        resource["status"] = status
    kind = codeable(field(inv, 3))
    if kind:
        resource["category"] = [kind]
    lot = unescape(field(inv, 16)).strip()
    identifiers = ([{"value": lot}] if lot else []) + [i for i in (_cwe_identifier(field(inv, n)) for n in (17, 18)) if i]
    if identifiers:
        resource["identifier"] = identifiers
    instance: dict[str, Any] = {}
    if container:
        instance["identifier"] = container
    amount = next((q for q in (quantity(field(inv, n), field(inv, 11)) for n in (8, 9, 7)) if q), None)
    if amount:
        instance["quantity"] = amount
    expiry = date_only(field(inv, 12))
    if expiry:
        instance["expiry"] = expiry
    if instance:
        resource["instance"] = [instance]
    return resource
