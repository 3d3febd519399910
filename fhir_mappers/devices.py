"""Device, from wherever a message names a machine or a program: MSH-3 (the sending application), SFT (the
software that handled the message), OBX-18 (the equipment that produced a result), PRT-10/16-22 (a device
taking part), FT1-34/35 (an item charged for) and AIG (equipment an appointment books)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fhir_mappers.datatypes import cache_zone, codeable, comps, date_only, dtm, entity_identifier, field, registered, reps, unescape
from fhir_mappers.ids import Clean, fhir_safe, frozen, ref, resource_id
from fhir_mappers.organizations import xon_organization


def _device(idents: list[dict[str, Any]]) -> dict[str, Any]:
    """A Device keyed by its first identifier, so the same instrument named by an OBX-18 and a PRT-10, or in
    two messages, is one resource."""
    first = idents[0]
    return {"resourceType": "Device", "id": resource_id("Device", first.get("system", ""), first["value"]), "identifier": idents}


def application_device(msh: Any, owner: dict[str, Any] | None) -> dict[str, Any] | None:
    """MSH-3 (HD) -> the sending application as a Device, owned by the sending facility (MSH-4)."""
    text, owner_id = field(msh, 3), owner["id"] if owner else ""
    if cache_zone() is None or len(text) > 200:  # a sender's own code systems, or long free text: not kept
        return _application_device(text, owner_id)
    return _cached_application_device(text, owner_id)


def _application_device(hd: str, owner_id: str) -> dict[str, Any] | None:
    c = comps(hd)
    namespace, universal, kind = (unescape(x).strip() for x in (c[0], c[1], c[2]))
    if not namespace and not universal:
        return None
    idents: list[dict[str, Any]] = []
    if namespace:
        idents.append({"value": namespace})
    if universal:
        idents.append({"value": f"urn:oid:{universal}", "system": "urn:ietf:rfc:3986"} if kind.upper() == "ISO" else {"value": universal})
    device = {"resourceType": "Device", "id": resource_id("Device", "application", namespace, universal), "identifier": idents}
    if owner_id:
        device["owner"] = ref({"id": owner_id})
    return device


@registered
@lru_cache(maxsize=256)
def _cached_application_device(hd: str, owner_id: str) -> Clean | None:
    """Kept final (ids.frozen): every message of a feed names the same application or two."""
    device = _application_device(hd, owner_id)
    return frozen(fhir_safe(device)) if device else None


INSTALL_DATE = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Device.version.installDate"


def software_device(sft: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """SFT -> Device: 1 vendor (manufacturer, and its Organization as owner), 2 version, 3 product name, 4 binary id
    (model number), 6 install date (the version's, as the guide puts it: R5's installDate, as a cross-version
    extension). SFT-5 (product information) is left to the unmapped report: it is vendor prose, and every note in a
    Bundle is read as clinical text downstream."""
    vendor = xon_organization(field(sft, 1).split("~")[0], "software")
    version, product, binary = (unescape(field(sft, n)).strip() for n in (2, 3, 4))
    if not product and not vendor:
        return None, []
    device: dict[str, Any] = {"resourceType": "Device",
                              "id": resource_id("Device", "software", vendor["id"] if vendor else "", product, version, binary)}
    if vendor:
        device["manufacturer"] = vendor.get("name") or vendor["identifier"][0]["value"]
        device["owner"] = ref(vendor)
    if product:
        device["deviceName"] = [{"name": product, "type": "manufacturer-name"}]
    if version:
        installed = dtm(field(sft, 6))
        device["version"] = [{"value": version} | ({"extension": [{"url": INSTALL_DATE, "valueDateTime": installed}]} if installed else {})]
    if binary:
        device["modelNumber"] = binary
    return device, [vendor] if vendor else []


def equipment_device(eis: str) -> dict[str, Any] | None:
    """A repeating EI field naming one piece of equipment (OBX-18: the analyzer, its module...) -> Device."""
    if not eis:
        return None
    idents = [i for i in (entity_identifier(ei) for ei in reps(eis)) if i]
    return _device(idents) if idents else None


def participation_device(prt: Any) -> dict[str, Any] | None:
    """PRT-10 device ids, -16 UDI device identifier, -17 manufacture date, -18 expiry date, -19 lot number,
    -20 serial number, -22 device type -> Device (None when PRT names no device)."""
    idents = [i for i in (entity_identifier(ei) for ei in reps(field(prt, 10))) if i]
    udi = entity_identifier(field(prt, 16).split("~")[0], "UDI")
    if udi:
        idents.append(udi)
    if not idents:
        return None
    device = _device(idents)
    if udi:
        device["udiCarrier"] = [{"deviceIdentifier": udi["value"]} | ({"issuer": udi["system"]} if "system" in udi else {})]
    made, expires = date_only(field(prt, 17)), date_only(field(prt, 18))
    if made:
        device["manufactureDate"] = made
    if expires:
        device["expirationDate"] = expires
    for n, key in ((19, "lotNumber"), (20, "serialNumber")):
        value = unescape(comps(field(prt, n))[0]).strip()
        if value:
            device[key] = value
    kind = codeable(field(prt, 22).split("~")[0])
    if kind:
        device["type"] = kind
    return device


def charged_item(ft1: Any, patient: dict | None) -> dict[str, Any] | None:
    """FT1-34 item number and -35 model number (CWE) -> the Device charged for, used by the patient."""
    item = comps(field(ft1, 34).split("~")[0])
    value = unescape(item[0]).strip()
    if not value:
        return None
    device = _device([{"value": value}])  # CWE-3 names a coding system, not an authority that issues item numbers
    model = unescape(comps(field(ft1, 35))[0]).strip()
    if model:
        device["modelNumber"] = model
    if patient:
        device["patient"] = patient
    return device


def booked_device(aig: Any, facility: str) -> dict[str, Any] | None:
    """AIG (a general resource an appointment books: in practice equipment, as people come in AIP and places in AIL)
    -> Device: AIG-3 resource id (CWE: the scheduling system's code and alternate code as identifiers, its text the
    name). The codes are the scheduler's own, so the Device is keyed by the sending facility as well."""
    c = [unescape(part).strip() for part in comps(field(aig, 3).split("~")[0])]
    identifiers = [{"value": value} for value in dict.fromkeys((c[0], c[3])) if value]
    if not identifiers and not c[1]:
        return None
    device: dict[str, Any] = {"resourceType": "Device", "id": resource_id("Device", "scheduled", facility, c[0] or c[1])}
    if identifiers:
        device["identifier"] = identifiers
    if c[1]:
        device["deviceName"] = [{"name": c[1], "type": "user-friendly-name"}]
    return device
