"""MSH -> MessageHeader, carrying the segments no mapper consumed as extensions."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import coded, field, unescape
from fhir_mappers.ids import resource_id

UNMAPPED_EXTENSION = "urn:clinstream:unmapped-segment"


def _endpoint(app: str, facility: str) -> str:
    return "urn:hl7v2:" + ":".join(unescape(x.split("^")[0]).replace(" ", "_") or "unknown" for x in (app, facility))


def message_header(msh: Any, event: str, msg_key: str, focus: list[dict], unmapped: list[str]) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MessageHeader", "id": resource_id("MessageHeader", msg_key),
        "eventCoding": coded("http://terminology.hl7.org/CodeSystem/v2-0003", event or "unknown")["coding"][0],
        "source": {"name": unescape(field(msh, 3).split("^")[0]) or "unknown", "endpoint": _endpoint(field(msh, 3), field(msh, 4))},
    }
    if field(msh, 5) or field(msh, 6):
        resource["destination"] = [{"name": unescape(field(msh, 5).split("^")[0]) or "unknown", "endpoint": _endpoint(field(msh, 5), field(msh, 6))}]
    if focus:
        resource["focus"] = focus
    if unmapped:
        resource["extension"] = [{"url": UNMAPPED_EXTENSION, "valueString": text} for text in unmapped]
    return resource
