"""Free text found in a FHIR Bundle: the inputs of the NER model."""

from __future__ import annotations

import base64
import binascii
import html
import re
from typing import Any

from clinstream.envelope import Narrative


def _attachment_text(attachment: dict[str, Any]) -> str | None:
    content_type = (attachment.get("contentType") or "").lower()
    if not content_type.startswith("text/plain") or not attachment.get("data"):
        return None
    try:
        return base64.b64decode(attachment["data"], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _section_texts(sections: list[dict[str, Any]], path: str) -> list[tuple[str, str]]:
    """A document's text lives in its Composition's (nested) sections as XHTML: tags are dropped and
    character references decoded, so NER offsets count characters of the readable text."""
    found: list[tuple[str, str]] = []
    for i, section in enumerate(sections):
        text = section.get("text") or {}
        if text.get("div") and text.get("status") != "empty":
            readable = html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]*>", " ", text["div"]))).strip()
            if readable:
                found.append((f"{path}section[{i}].text", readable))
        found.extend(_section_texts(section.get("section") or [], f"{path}section[{i}]."))
    return found


def _texts(resource: dict[str, Any]) -> list[tuple[str, str]]:
    """(element path, text) pairs of one resource."""
    kind = resource.get("resourceType")
    found: list[tuple[str, str]] = []
    if kind == "DocumentReference":
        for i, content in enumerate(resource.get("content", [])):
            text = _attachment_text(content.get("attachment") or {})
            if text:
                found.append((f"content[{i}].attachment", text))
    elif kind == "Observation" and resource.get("valueString"):
        found.append(("valueString", resource["valueString"]))
    elif kind == "Composition":
        found.extend(_section_texts(resource.get("section") or [], ""))
    elif kind == "DiagnosticReport":
        if resource.get("conclusion"):
            found.append(("conclusion", resource["conclusion"]))
        for i, attachment in enumerate(resource.get("presentedForm", [])):
            text = _attachment_text(attachment)
            if text:
                found.append((f"presentedForm[{i}]", text))
    for i, note in enumerate(resource.get("note", []) if isinstance(resource.get("note"), list) else []):
        if note.get("text"):
            found.append((f"note[{i}].text", note["text"]))
    return found


def narratives(bundle: dict[str, Any], max_chars: int | None = None) -> list[Narrative]:
    """The Bundle's free texts. One longer than `max_chars` is cut to its first `max_chars` characters (a
    prefix, so entity offsets stay offsets into the whole text) and records its full length in
    `truncated_from`; the Bundle itself keeps the whole text."""
    out = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        ref = f"{resource.get('resourceType')}/{resource.get('id')}"
        for element, text in _texts(resource):
            if text.strip():
                cut = max_chars is not None and len(text) > max_chars
                out.append(Narrative(id=f"{ref}#{element}", resource=ref, element=element, text=text[:max_chars] if cut else text,
                                     truncated_from=len(text) if cut else None))
    return out
