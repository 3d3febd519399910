"""MSH -> MessageHeader, carrying the segments and fields no mapper consumed as extensions."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from fhir_mappers.datatypes import clean_text, coded, comps, field, unescape, unused
from fhir_mappers.ids import Clean, CleanList, resource_id

UNMAPPED_EXTENSION = "urn:clinstream:unmapped-segment"
UNMAPPED_FIELD_EXTENSION = "urn:clinstream:unmapped-field"
# Field 1 of these segments is a Set ID, a counter ordering the repeats of the segment: the guide finds nothing
# in it to map. MSH-1/2 are the separators, and MSH-18 the character set the message was decoded with.
SET_ID_FIRST = frozenset({"PID", "PV1", "NK1", "AL1", "IAM", "DG1", "PR1", "OBR", "OBX", "NTE", "IN1", "IN3", "GT1", "SPM",
                          "TQ1", "TQ2", "FT1", "AIS", "AIG", "AIL", "AIP", "DB1", "CON", "TXA", "ARV"})
_MSH_NOT_DATA = (1, 2, 18)
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")  # BCP 47, as Resource.language takes it


def _endpoint(app: str, facility: str) -> str:
    return "urn:hl7v2:" + ":".join(unescape(x.split("^")[0]).replace(" ", "_") or "unknown" for x in (app, facility))


@lru_cache(maxsize=64)  # a feed sends one or two
def _processing_tags(pt: str) -> Clean | None:
    """MSH-11 (PT: processing id, production/training/debugging, and processing mode) -> meta tags, as the guide's MSH map."""
    processing = comps(pt)
    tags = [Clean(system=f"http://terminology.hl7.org/CodeSystem/v2-{table}", code=" ".join(code.split()))
            for table, code in (("0103", unescape(processing[0])), ("0207", unescape(processing[1]))) if code.strip()]
    return Clean(tag=CleanList(tags)) if tags else None


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
    tags = _processing_tags(field(msh, 11))
    if tags:
        resource["meta"] = tags
    language = unescape(field(msh, 19).split("^")[0]).strip()  # MSH-19, the message's principal language
    if _LANGUAGE_TAG.match(language):
        resource["language"] = language
    elif language:
        unused(msh, 19)
    if unmapped:
        resource["extension"] = [{"url": UNMAPPED_EXTENSION, "valueString": text} for text in unmapped]
    return resource


def unread_fields(ids: list[str], segments: list[Any], verbatim: set[int]) -> dict[tuple[str, str], None]:
    """(field, its raw text) for each non-empty field that no mapper read (datatypes.field marks what it reads), in the
    segments that were mapped, in message order: "PV1-52". A segment kept verbatim already keeps all its fields, and a
    Z-segment is the overrides' to map (zsegments.py). A value repeated in the same field of repeated segments (the
    document code on every OBX line of a note) is kept once. Call it once every mapper has run."""
    found: dict[tuple[str, str], None] = {}
    for seg_id, seg in zip(ids, segments):
        if id(seg) in verbatim or seg_id[:1] == "Z":
            continue
        fields, read = seg.fields, seg.read
        if seg_id in SET_ID_FIRST and len(fields) > 1 and not read[1]:  # no data: counts as read
            read[1] = 1
            seg.read_chars += len(fields[1])
        elif seg.is_msh:
            for n in _MSH_NOT_DATA:
                field(seg, n)
        # the characters of the fields after the id: the text less the id and the separators (MSH-1 is a separator)
        if seg.read_chars == len(seg.text) - len(fields[0]) - len(fields) + (3 if seg.is_msh else 1):
            continue  # every one read: the common case, no loop over the fields
        for n in range(1, len(fields)):
            text = fields[n]
            if text and not read[n] and not text.isspace():
                found[(f"{seg_id}-{n}", text)] = None
    return found


def unread_extension(field_name: str, text: str) -> Clean | None:
    """A field kept as sent (its ER7 text, escapes and all), named by the extension's URL: urn:clinstream:unmapped-field:PID-10.
    Built clean: a corpus message leaves dozens, and the last pass over the Bundle leaves a Clean value as it is."""
    text = clean_text(text)
    return Clean(url=f"{UNMAPPED_FIELD_EXTENSION}:{field_name}", valueString=text) if text else None
