"""Deterministic resource ids: uuid5 over the resource type and its business key (assigning authority
or facility included), so a replayed message yields the same ids and two facilities never collide."""

import re
import uuid
from functools import lru_cache
from hashlib import sha1
from typing import Any

NAMESPACE = uuid.UUID("9a3c0d7e-5b1f-4c52-8f7a-2e6d1b4c9f30")
_NAMESPACE_BYTES = NAMESPACE.bytes
_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}  # RFC 4122 variant: the top two bits 10


def resource_id(resource_type: str, *key: str) -> str:
    """str(uuid.uuid5(NAMESPACE, "type|key..."))."""
    name = "|".join((resource_type, *key))
    return _cached_uuid5(name) if len(name) <= 200 else _uuid5(name)


def _uuid5(name: str) -> str:
    """The uuid5 written out from the SHA-1 without building a UUID object: a Bundle has dozens of ids, and
    uuid.UUID's integer round trip was a tenth of the conversion's time."""
    h = sha1(_NAMESPACE_BYTES + name.encode("utf-8")).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"  # 5: the version


# The same patients, places, practitioners and organizations recur message after message (half the ids of
# the standard mix, four fifths of the corpus's); long keys (free sender text) are not kept, so the cache
# stays small whatever the feed.
_cached_uuid5 = lru_cache(maxsize=8192)(_uuid5)


def bundle_entries(resources: list[dict]) -> list[dict]:
    """A Bundle entry for each resource (its fullUrl, and the resource after fhir_safe's last pass), in one loop with
    fhir_safe's dispatch inlined: a Bundle has dozens, and two calls per resource were a tenth of the pass."""
    return [{"fullUrl": f"urn:uuid:{r['id']}", "resource": _object(r) if type(r) is dict else fhir_safe(r)} for r in resources]


# FHIR strings may hold spaces, tabs, CR and LF, but no other whitespace (vertical tab, form feed, the
# MLLP frame bytes, NBSP, U+2028...): feeds carry them, and one would fail the whole Bundle
_OTHER_WHITESPACE = re.compile(r"[^\S \r\n\t]")
_EMPTY: tuple[Any, ...] = ("", [], {}, None)


def _text(value: str, key: str) -> str:
    if not value.isprintable():  # any whitespace but the space makes a string non-printable
        value = _OTHER_WHITESPACE.sub(" ", value)
    return " ".join(value.split()) if key == "code" else value.strip()


def fhir_safe(value: Any, key: str = "") -> Any:
    """The last pass over each resource. FHIR forbids empty strings, arrays and objects: mappers skip
    absent fields, but a field that is present and empties out once split and unescaped (`^&`, `\\H\\`)
    could slip through. Odd whitespace becomes a space, strings are trimmed (empty ones dropped), and a
    `code` (Coding.code, Quantity.code: the one code-typed key fed from free sender text) keeps single
    inner spaces only, as the code type requires. Objects and arrays are cleaned in place and returned; a Clean
    value, built clean, and a reference (ref()) are passed over (tests/fhir_mappers/test_fuzz.py checks each one)."""
    kind = type(value)
    if kind is Clean or kind is CleanList:
        return value
    if isinstance(value, dict):
        return _object(value)
    if isinstance(value, list):
        return _array(value, key)
    if isinstance(value, str):
        return _text(value, key)
    return value


# The pass visits every value of every resource, so the common cases (a plain dict, a list of dicts, a
# printable string) are handled inside the loops, without a call each: a third of the time it took. It
# cleans in place: nearly everything is clean already, and copying every object was a sixth of the mapping.
# A Clean value (and CleanList) is neither walked nor copied: final, it stays as built, shared by the Bundles that
# name it; JSON encoders that slow down on dict subclasses are kept off the Bundle (Envelope.to_json uses orjson).
# (Setting an existing key while iterating is allowed; keys to drop are deleted after the loop.)
def _object(value: dict) -> dict:
    drop: list[str] | None = None
    for k, v in value.items():
        kind = type(v)
        if kind is str:  # a printable string needs trimming only, unless it is a code with doubled spaces
            cleaned = v.strip() if v.isprintable() and (k != "code" or "  " not in v) else _text(v, k)
            if not cleaned:
                drop = [*(drop or ()), k]
            elif cleaned is not v:
                value[k] = cleaned
        elif kind is dict:
            if (len(v) != 1 or "reference" not in v) and not _object(v):  # ref() is clean by construction
                drop = [*(drop or ()), k]
        elif kind is list:
            if not _array(v, k):
                drop = [*(drop or ()), k]
        elif v is None:
            drop = [*(drop or ()), k]
    if drop:
        for k in drop:
            del value[k]
    return value


def _array(value: list, key: str) -> list:
    emptied = False
    for i, v in enumerate(value):
        kind = type(v)
        if kind is Clean or kind is CleanList or (kind is dict and len(v) == 1 and "reference" in v):  # clean as built
            continue
        cleaned = _object(v) if kind is dict else fhir_safe(v, key)
        if cleaned is not v:
            value[i] = cleaned
        if cleaned in _EMPTY:
            emptied = True
    if emptied:
        value[:] = [v for v in value if v not in _EMPTY]
    return value


def clean_text(value: str) -> str:
    """A FHIR string as fhir_safe leaves it (trimmed, odd whitespace a space): for the values a Clean is built from."""
    return value.strip() if value.isprintable() else _OTHER_WHITESPACE.sub(" ", value).strip()


def _final(self: Any, *args: Any, **kwargs: Any) -> None:
    raise TypeError(f"a {type(self).__name__} is final (it may be shared between Bundles): change a copy, dict(x) or list(x)")


class Clean(dict):
    """A datatype value built FHIR-safe (trimmed strings, no empty member), the way the high-volume datatypes
    (codeable, identifier, human_name, address, telecom) and the mappers' constant codings are made: fhir_safe's
    pass leaves it as it is, which was half the pass's work, and the Bundle holds it. It is final, so that a value can
    be cached and shared by every Bundle that names the same code: a change raises rather than reach another
    patient's Bundle. A copy (copy.copy, deepcopy, pickle) is a plain dict again."""

    __slots__ = ()
    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _final

    def __reduce__(self) -> tuple[Any, ...]:
        return dict, (dict(self),)


class CleanList(list):
    """The arrays inside a Clean (CodeableConcept.coding, HumanName.given...): final like it."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = sort = reverse = __iadd__ = __imul__ = _final

    def __reduce__(self) -> tuple[Any, ...]:
        return list, (list(self),)


def frozen(value: Any) -> Any:
    """A value cleaned by fhir_safe as a final Clean (its dicts) and CleanList (its lists) all the way down, to be shared
    by the Bundles that name it (message.SegmentCache keeps the Locations and Practitioners of a visit so)."""
    kind = type(value)
    if kind is dict:
        return Clean({k: frozen(v) for k, v in value.items()})
    if kind is list:
        return CleanList([frozen(v) for v in value])
    return value


def ref(resource: dict) -> dict:
    """{"reference": "urn:uuid:<id>"}: clean by construction (the id is a uuid), so the last pass passes over any
    object of that one key. A Bundle holds dozens (every Provenance targets each resource of its message)."""
    return {"reference": f"urn:uuid:{resource['id']}"}


