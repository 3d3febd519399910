"""HD (assigning authorities, facilities) and XON (organisation names) -> Organization, as the V2-to-FHIR
guide's HD[Organization] and XON[Organization] maps; ids come from the organisation's own identifiers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir_mappers.datatypes import cache_zone, coded, comps, field, identifier, registered, unescape
from fhir_mappers.ids import Clean, CleanList, clean_text, fhir_safe, frozen, ref, resource_id

# HD-3 universal id types whose value the guide writes as a URI (system urn:ietf:rfc:3986)
URI_PREFIX = {"ISO": "urn:oid:", "UUID": "urn:uuid:"}


def hd_organization(namespace: str, universal: str = "", kind: str = "") -> dict[str, Any] | None:
    """HD parts -> Organization with the namespace id and the universal id as identifiers. Only an HD with a
    universal id names an organisation; a bare namespace is just an identifier system."""
    if not universal:
        return None
    found = _hd_identifiers(namespace, universal, kind) if len(namespace) + len(universal) <= 200 else _hd_identifiers.__wrapped__(namespace, universal, kind)
    if found is None:
        return None
    org_id, idents = found
    return {"resourceType": "Organization", "id": org_id, "identifier": idents}


@registered
@lru_cache(maxsize=1024)
def _hd_identifiers(namespace: str, universal: str, kind: str) -> tuple[str, CleanList] | None:
    """(the Organization's id, its identifiers) for hd_organization. Cached: MSH-4 names the same sender in
    every message, and identifier lists are final, so Bundles may share one."""
    namespace, universal, kind = clean_text(unescape(namespace)), clean_text(unescape(universal)), unescape(kind).strip()
    if not universal:
        return None
    idents = [Clean(value=namespace)] if namespace else []
    prefix = URI_PREFIX.get(kind.upper())
    second: dict[str, Any] = {"value": f"{prefix}{universal}" if prefix else universal}
    if prefix:
        second["system"] = "urn:ietf:rfc:3986"
    if kind:
        second["type"] = coded("http://terminology.hl7.org/CodeSystem/v2-0301", kind)
    idents.append(Clean(second))
    return resource_id("Organization", "hd", namespace, universal), CleanList(idents)


def assigned_identifier(cx: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """CX -> (Identifier, the Organization of its assigning authority CX-4, referenced as Identifier.assigner)."""
    ident = identifier(cx)
    if ident is None:
        return None, None
    hd = comps(cx)[3].split("&") + ["", ""]
    org = hd_organization(hd[0], hd[1], hd[2])
    if org is not None:
        ident = Clean({**ident, "assigner": ref(org)})
    return ident, org


def xon_organization(xon: str, scope: str = "") -> dict[str, Any] | None:
    """XON: name^type^id (v2.3)^...^id type (7)^...^identifier (10) -> Organization. `scope` keeps two
    unrelated organisations that share a bare name apart (a payor and an employer called alike)."""
    c = comps(xon)
    name = unescape(c[0]).strip()
    number = unescape(c[9] or c[2]).strip()
    if not name and not number:
        return None
    org: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", "xon", scope, name, number)}
    if name:
        org["name"] = name
    if number:
        ident: dict[str, Any] = {"value": number}
        if c[6]:
            ident["type"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": unescape(c[6])}]}
        org["identifier"] = [ident]
    return org


def message_parties(msh: Any, header: dict[str, Any]) -> list[dict[str, Any]]:
    """MSH-4 sending and MSH-6 receiving facility, MSH-22/23 their responsible organisations -> Organizations
    set as MessageHeader.sender, .responsible and .destination.receiver (the guide prefers MSH-23 to MSH-6)."""
    texts = (field(msh, 4), field(msh, 22).split("~")[0], field(msh, 23).split("~")[0], field(msh, 6), msh[17])
    if cache_zone() is None or sum(map(len, texts)) > 400:  # a sender's own code systems, or long free text: not kept
        sender, responsible, receiver = _parties(*texts)
    else:
        sender, responsible, receiver = _cached_parties(*texts)
    found: list[dict[str, Any]] = []
    if sender:
        field(msh, 17)  # MSH-17, the sender's country (the guide's MSH map), read for the sender only
        header["sender"] = ref(sender)
        found.append(sender)
    if responsible:
        header["responsible"] = ref(responsible)
        found.append(responsible)
    if receiver and header.get("destination"):
        header["destination"][0]["receiver"] = ref(receiver)
        found.append(receiver)
    return found


def _parties(sending: str, responsible_xon: str, receiving_xon: str, receiving: str, country: str) -> tuple[Any, Any, Any]:
    """(sender, responsible, receiver) Organizations of message_parties, from the MSH fields' texts."""
    def facility(text: str) -> dict[str, Any] | None:
        c = comps(text)
        org = hd_organization(c[0], c[1], c[2])
        if org is None and unescape(c[0]).strip():  # a bare namespace still names the facility
            org = {"resourceType": "Organization", "id": resource_id("Organization", "hd", unescape(c[0]).strip(), ""),
                   "identifier": [{"value": unescape(c[0]).strip()}]}
        return org

    sender, responsible = facility(sending), xon_organization(responsible_xon, "msh")
    receiver = xon_organization(receiving_xon, "msh") or facility(receiving)
    if sender:
        country = clean_text(unescape(country))
        if country:
            sender["address"] = [{"country": country}]
        if responsible:
            sender["partOf"] = ref(responsible)
    return sender, responsible, receiver


@registered
@lru_cache(maxsize=256)
def _cached_parties(*texts: str) -> tuple[Any, Any, Any]:
    """_parties kept final (ids.frozen): a feed's messages name the same few senders and receivers, and these
    Organizations were rebuilt and walked by the last pass in every message."""
    return tuple(frozen(fhir_safe(org)) if org else None for org in _parties(*texts))
