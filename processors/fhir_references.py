"""References between the entries of one Bundle, resolved to the target entry's fullUrl.

FHIR lets a sender point at another entry in several ways: the entry's fullUrl itself (`urn:uuid:...`
placeholders, absolute `http://server/fhir/Patient/123`), a relative `Patient/123` (resolved against
the referencing entry's server base, else by type and id), a version-specific `.../_history/2`, or, in
transactions, a conditional `Patient?identifier=system|value`. Downstream stages only follow fullUrls,
so every form is rewritten to the fullUrl; a reference whose target is not in the Bundle is left as sent.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Iterator
from urllib.parse import parse_qsl

# [base/]Type/id[/_history/version]: the RESTful form of a resource URL (FHIR R4 3.1.0.1.2)
RESTFUL = re.compile(r"^(?:(?P<base>https?://.+)/)?(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
CONDITIONAL = re.compile(r"^(?P<type>[A-Z][A-Za-z]+)\?(?P<query>.+)$")


def references(node: Any) -> Iterator[dict[str, Any]]:
    """Every Reference (a dict with a string `reference`) inside a resource, contained ones and extensions included."""
    if isinstance(node, dict):
        if isinstance(node.get("reference"), str):
            yield node
        for value in node.values():
            if isinstance(value, (dict, list)):
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def _identifier_matches(resource: dict[str, Any], token: str) -> bool:
    """The `identifier` search parameter: 'system|value', '|value' (no system) or 'value' (any system)."""
    system, sep, value = token.rpartition("|")
    for ident in resource.get("identifier") or []:
        if ident.get("value") == value and (not sep or (ident.get("system") or "") == system):
            return True
    return False


class EntryIndex:
    """The Bundle's entries by fullUrl and by 'Type/id', and the resolution rules over them."""

    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.by_full_url = {e["fullUrl"]: e for e in entries}
        self.by_type_id: dict[str, list[str]] = {}
        for e in entries:
            key = f"{e['resource']['resourceType']}/{e['resource']['id']}"
            self.by_type_id.setdefault(key, []).append(e["fullUrl"])
        self.entries = entries

    def resolve(self, reference: str, from_full_url: str) -> str | None:
        """The fullUrl of the entry `reference` points at, or None when it is not in the Bundle."""
        if reference in self.by_full_url:
            return reference
        if reference.startswith("#"):  # a contained resource, inside the referencing resource itself
            return None
        if match := RESTFUL.match(reference):
            type_id = f"{match['type']}/{match['id']}"
            unversioned = f"{match['base']}/{type_id}" if match["base"] else type_id
            if unversioned in self.by_full_url:
                return unversioned
            if match["base"]:
                return None  # an absolute URL names its server: only that exact fullUrl is the same resource
            # relative: first against the referencing entry's own server base, then by type and id alone
            own = RESTFUL.match(from_full_url)
            if own and own["base"] and f"{own['base']}/{type_id}" in self.by_full_url:
                return f"{own['base']}/{type_id}"
            candidates = self.by_type_id.get(type_id, [])
            return candidates[0] if len(candidates) == 1 else None
        if match := CONDITIONAL.match(reference):
            return self._conditional(match["type"], match["query"])
        return None

    def _conditional(self, resource_type: str, query: str) -> str | None:
        """`Type?identifier=...&_id=...`: resolved only when exactly one entry matches every parameter;
        other search parameters would need a server, so such references stay as sent."""
        params = parse_qsl(query, keep_blank_values=True)
        if not params or any(name not in {"identifier", "_id"} for name, _ in params):
            return None
        found = [
            e["fullUrl"] for e in self.entries
            if e["resource"]["resourceType"] == resource_type and all(
                e["resource"].get("id") == value if name == "_id" else _identifier_matches(e["resource"], value)
                for name, value in params)
        ]
        return found[0] if len(found) == 1 else None


def resolve_references(entries: list[dict[str, Any]]) -> tuple[list[str], Counter[str]]:
    """Rewrite in place every reference whose target is an entry to that entry's fullUrl.

    Returns the references left unresolved (in order of first appearance) and how many references point
    at each fullUrl (used to pick the message's patient and encounter when there are several)."""
    index = EntryIndex(entries)
    unresolved: dict[str, None] = {}
    incoming: Counter[str] = Counter()
    for entry in entries:
        for ref in references(entry["resource"]):
            target = index.resolve(ref["reference"], entry["fullUrl"])
            if target is None:
                if not ref["reference"].startswith("#"):
                    unresolved[ref["reference"]] = None
                continue
            ref["reference"] = target
            incoming[target] += 1
    return list(unresolved), incoming
