"""Deterministic resource ids: uuid5 over the resource type and its business key (assigning authority
or facility included), so a replayed message yields the same ids and two facilities never collide."""

import re
import uuid
from typing import Any

NAMESPACE = uuid.UUID("9a3c0d7e-5b1f-4c52-8f7a-2e6d1b4c9f30")


def resource_id(resource_type: str, *key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join((resource_type, *key))))


def entry(resource: dict) -> dict:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": fhir_safe(resource)}


# FHIR strings may hold spaces, tabs, CR and LF, but no other whitespace (vertical tab, form feed, the
# MLLP frame bytes, NBSP, U+2028...): feeds carry them, and one would fail the whole Bundle
_OTHER_WHITESPACE = re.compile(r"[^\S \r\n\t]")
_EMPTY: tuple[Any, ...] = ("", [], {}, None)


def fhir_safe(value: Any, key: str = "") -> Any:
    """The last pass over each resource. FHIR forbids empty strings, arrays and objects: mappers skip
    absent fields, but a field that is present and empties out once split and unescaped (`^&`, `\\H\\`)
    could slip through. Odd whitespace becomes a space, strings are trimmed (empty ones dropped), and a
    `code` (Coding.code, Quantity.code: the one code-typed key fed from free sender text) keeps single
    inner spaces only, as the code type requires."""
    if isinstance(value, str):
        if _OTHER_WHITESPACE.search(value):
            value = _OTHER_WHITESPACE.sub(" ", value)
        return " ".join(value.split()) if key == "code" else value.strip()
    if isinstance(value, dict):
        kept = {k: fhir_safe(v, k) for k, v in value.items()}
        return {k: v for k, v in kept.items() if v not in _EMPTY}
    if isinstance(value, list):
        kept = [fhir_safe(v, key) for v in value]
        return [v for v in kept if v not in _EMPTY]
    return value


def ref(resource: dict) -> dict:
    return {"reference": f"urn:uuid:{resource['id']}"}
