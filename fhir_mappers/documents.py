"""TXA + its OBX text lines (MDM) -> DocumentReference with the note as a text/plain attachment: TXA-2 type, -3 presentation
(text), -6 (else -4) date, -4 the period of the service documented,
-5/9 authors, -10 authenticator, -12 master identifier, -16 identifier, -17 docStatus, -18 security label, -25 description."""

from __future__ import annotations

import base64
from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, field, instant, reps, table_code, unescape, unused
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.results import ATTACHMENT_TYPES, attachment

# TXA-18 document confidentiality status (table 0272) -> v3 Confidentiality where the code is the same concept
CONFIDENTIALITY = {"R": ("R", "restricted"), "V": ("V", "very restricted")}
DOC_STATUS = {"AU": "final", "LA": "final", "PA": "preliminary", "IP": "preliminary", "IN": "preliminary", "DI": "preliminary",
              "DO": "preliminary"}


def note_text(obx_segments: list[Any]) -> str:
    return "\n".join("\n".join(unescape(r) for r in reps(field(obx, 5))) for obx in obx_segments if field(obx, 5))


def _embedded(obx_segments: list[Any]) -> tuple[list[Any], list[dict[str, Any]]]:
    """A document's OBX by OBX-2: text lines (TX, FT, ST, or no type), and ED or RP values as attachments of their own
    (the guide's OBX[DocumentReference]: each repeat of an ED or RP its own content); a value that makes no Attachment
    (corrupt base64) goes back to the unmapped report."""
    lines, attachments = [], []
    for obx in obx_segments:
        kind = field(obx, 2).strip().upper()
        if kind in ATTACHMENT_TYPES:
            found = [attachment(kind, value) for value in reps(field(obx, 5))]
            if None in found:
                unused(obx, 5)
            attachments += [a for a in found if a]
        else:
            lines.append(obx)
    return lines, attachments


def document_reference(txa: Any, obx_segments: list[Any], msg_key: str, subject: dict | None, encounter: dict | None,
                       fallback_time: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    doc_number = comps(field(txa, 12))[0]
    resource: dict[str, Any] = {"resourceType": "DocumentReference",
                                "id": resource_id("DocumentReference", msg_key.split("|")[0], doc_number or msg_key),
                                "status": "current"}
    if doc_number:
        resource["masterIdentifier"] = {"value": unescape(doc_number)}
    doc_status = table_code(txa, 17, DOC_STATUS)
    if doc_status:
        resource["docStatus"] = doc_status
    kind = codeable(field(txa, 2))
    if kind:
        resource["type"] = kind
    if subject:
        resource["subject"] = subject
    # TXA-6, when the document was made, is its date (the guide's TXA map); else TXA-4, when the activity it documents was
    originated = instant(field(txa, 6))
    if originated is None and field(txa, 6):  # a date without a time is no instant (R6 adds an extension for one): reported
        unused(txa, 6)
    when = originated or instant(field(txa, 4)) or (fallback_time if fallback_time and "T" in fallback_time else None)
    if when:
        resource["date"] = when
    authorities: list[dict[str, Any]] = []
    authors = [a for a in (practitioner(field(txa, n).split("~")[0], authorities) for n in (5, 9)) if a]
    authors = list({a["id"]: a for a in authors}.values())
    if authors:
        resource["author"] = [ref(a) for a in authors]
    # the guide's TXA[DocumentReference]: 10 authenticator, 16 file name an identifier, 18 security label, 25 description
    authenticator = practitioner(field(txa, 10).split("~")[0], authorities)
    if authenticator:
        resource["authenticator"] = ref(authenticator)
        if all(a["id"] != authenticator["id"] for a in authors):
            authors.append(authenticator)
    file_name = unescape(field(txa, 16)).strip()
    if file_name:
        resource["identifier"] = [{"value": file_name}]
    secrecy = unescape(field(txa, 18)).strip().upper()
    if secrecy in CONFIDENTIALITY:
        code, display = CONFIDENTIALITY[secrecy]
        resource["securityLabel"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": code,
                                                  "display": display}]}]
    elif secrecy:
        resource["securityLabel"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0272", "code": secrecy}]}]
    title = unescape(field(txa, 25).split("~")[0]).strip()
    if title:
        resource["description"] = title
    if field(txa, 3).strip().upper() not in ("", "TX", "FT"):  # 3 presentation: text, as the attachment says; anything else reported
        unused(txa, 3)
    lines, attachments = _embedded(obx_segments)
    text = note_text(lines)
    content = [{"attachment": a} for a in attachments]
    if text or not content:  # R4 requires content: a note with nothing in it is an empty text
        content.insert(0, {"attachment": {"contentType": "text/plain; charset=utf-8", "data": base64.b64encode(text.encode("utf-8")).decode("ascii")}})
    resource["content"] = content
    context: dict[str, Any] = {"encounter": [encounter]} if encounter else {}
    activity = dtm(field(txa, 4))  # TXA-4, when the activity the document describes was: the service's period (FHIR's context)
    if activity:
        context["period"] = {"start": activity}
    if context:
        resource["context"] = context
    return resource, authors + authorities
