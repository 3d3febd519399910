"""Z-segment fields -> extensions, as a sender's overrides declare (fhir_mappers/senders.py).

Z-segments are site-defined, so no mapper reads them and the whole segment is kept verbatim on the
MessageHeader. A sender may map some of their fields to extensions on the message's Patient, Encounter
or MessageHeader; what is mapped leaves the verbatim copy and the rest stays there, so nothing is
dropped silently. A value that cannot be mapped (a dateTime that does not parse, a target resource the
message does not have) is left in the verbatim copy rather than emitted invalid or lost.
"""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import dtm, unescape
from fhir_mappers.senders import ZTarget

VALUE_KEY = {"string": "valueString", "code": "valueCode", "dateTime": "valueDateTime"}


def _value(text: str, kind: str) -> str | None:
    if kind == "dateTime":
        return dtm(text)
    value = unescape(text)
    if kind == "code":
        value = " ".join(value.split())  # FHIR code: no leading, trailing or doubled whitespace
    return value if value.strip() else None


def z_extensions(seg: Any, specs: tuple[ZTarget, ...], present: set[str]) -> tuple[list[tuple[str, dict[str, Any]]], str | None]:
    """([(target resource type, extension)], the segment text left unmapped, or None when nothing is left).
    `present`: the target resource types this message has."""
    fields = list(seg.fields)  # a Z-segment is never MSH, so fields[n] is field n
    out: list[tuple[str, dict[str, Any]]] = []
    for spec in specs:
        if spec.field >= len(fields) or not fields[spec.field] or spec.spec.target not in present:
            continue
        kept = []
        for rep in fields[spec.field].split("~"):
            parts = rep.split("^")
            text = rep if spec.component is None else (parts[spec.component - 1] if spec.component <= len(parts) else "")
            value = _value(text, spec.spec.type) if text else None
            if value is None:
                kept.append(rep)
                continue
            out.append((spec.spec.target, {"url": spec.spec.url, VALUE_KEY[spec.spec.type]: value}))
            if spec.component is not None:
                parts[spec.component - 1] = ""
                kept.append("^".join(parts).rstrip("^"))
        fields[spec.field] = "~".join(kept).strip("~") if any(kept) else ""
    while len(fields) > 1 and not fields[-1]:
        fields.pop()
    separator = seg.text[3] if len(seg.text) > 3 else "|"
    return out, separator.join(fields) if len(fields) > 1 else None
