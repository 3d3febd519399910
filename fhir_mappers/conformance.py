"""How far a produced FHIR Bundle agrees with a reference one (Microsoft FHIR-Converter's output for the
same HL7 v2 message), on the facts that matter rather than on ids or layout.

Each resource is reduced to sets of facts per field (identifiers, names, birth date, gender, addresses,
codes, codes with their systems, values with units, dates, status, references to other resource types).
Within a resource type, expected and produced resources are paired greedily by agreement; a field agrees
by the share of the expected facts the produced resource also has. Unpaired expected resources count as
zero, so a mapper that omits a resource type scores zero on it. Extensions, narrative and meta are left
out: they carry each converter's own bookkeeping.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

FIELDS = ("identifier", "name", "birthDate", "gender", "address", "code", "system", "value", "date", "status", "reference")
SKIPPED_KEYS = {"extension", "modifierExtension", "meta", "text", "id", "contained"}
DATE_KEYS = {
    "effectiveDateTime", "issued", "authoredOn", "onsetDateTime", "abatementDateTime", "recordedDate",
    "occurrenceDateTime", "performedDateTime", "deceasedDateTime", "start", "end", "created", "date",
    "collectedDateTime", "whenHandedOver", "whenPrepared", "expirationDate", "lastOccurrence",
}
PERIOD_KEYS = {"period", "effectivePeriod", "performedPeriod", "collectedPeriod", "occurrencePeriod", "validityPeriod"}

Facts = dict[str, set[str]]


def normalize_date(value: str) -> str:
    """Same instant, same text: times with an offset go to UTC minutes; dates stay as they are."""
    if "T" not in value:
        return value
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        return parsed.strftime("%Y-%m-%dT%H:%M")
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def _words(*parts: Any) -> set[str]:
    out: set[str] = set()
    for part in parts:
        if isinstance(part, list):
            out |= _words(*part)
        elif isinstance(part, str):
            out |= {w for w in part.upper().replace(",", " ").split() if w}
    return out


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value] if value else []


def _number(value: Any) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def facts(resource: dict[str, Any], types_by_ref: dict[str, str]) -> Facts:
    """The facts of one resource; `types_by_ref` resolves a reference to its target's resource type."""
    out: Facts = {name: set() for name in FIELDS}
    for ident in _as_list(resource.get("identifier")):
        if isinstance(ident, dict) and ident.get("value"):
            out["identifier"].add(str(ident["value"]).strip())
    for name in _as_list(resource.get("name")):
        if isinstance(name, str):
            out["name"] |= _words(name)
        elif isinstance(name, dict):
            out["name"] |= _words(name.get("family"), name.get("given"), name.get("text") if not name.get("family") else None)
    for key in ("birthDate", "gender", "status"):
        if isinstance(resource.get(key), str):
            out[key].add(normalize_date(resource[key]) if key == "birthDate" else resource[key])
    for addr in _as_list(resource.get("address")):
        if isinstance(addr, dict):
            out["address"] |= _words(addr.get("line"), addr.get("city"), addr.get("state"), addr.get("postalCode"))
    quantity = resource.get("valueQuantity")
    if isinstance(quantity, dict) and "value" in quantity:
        out["value"].add(f"{_number(quantity['value'])} {quantity.get('unit') or quantity.get('code') or ''}".strip())
    for key in ("valueString", "valueInteger", "valueBoolean", "valueDateTime"):
        if key in resource:
            value = resource[key]
            out["value"].add(normalize_date(value) if key == "valueDateTime" else " ".join(str(value).split()))
    _walk(resource, out, types_by_ref, top=True)
    return out


# A code system no standard names: FHIR-Converter writes a placeholder (http://example.com/v2-to-fhir-converter/...),
# clinstream its own namespace (never a domain it does not own). The same local system either way.
_LOCAL_SYSTEM = re.compile(r"^(?:http://example\.com/v2-to-fhir-converter/(?:CodeSystem/)?|urn:clinstream:codesystem:)(.+)$")


def local_system(system: str) -> str:
    m = _LOCAL_SYSTEM.match(system)
    return f"local:{m.group(1)}" if m else system


def _walk(node: Any, out: Facts, types_by_ref: dict[str, str], key: str = "", top: bool = False) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, out, types_by_ref, key)
        return
    if not isinstance(node, dict):
        return
    codings = node.get("coding") if isinstance(node.get("coding"), list) else [node] if key in ("class", "eventCoding") else []
    if key != "type" or not top:  # identifier.type is part of the identifier, not a clinical code
        for coding in codings:
            if isinstance(coding, dict) and coding.get("code"):
                out["code"].add(str(coding["code"]))
                out["system"].add(f"{local_system(coding.get('system', ''))}|{coding['code']}")
    if "reference" in node and isinstance(node["reference"], str):
        target = types_by_ref.get(node["reference"]) or node["reference"].split("/")[0]
        out["reference"].add(f"{key}:{target}")
    for child_key, child in node.items():
        if child_key in SKIPPED_KEYS or child_key == "identifier":
            continue
        if child_key in DATE_KEYS and isinstance(child, str):
            out["date"].add(normalize_date(child))
        elif child_key in PERIOD_KEYS and isinstance(child, dict):
            out["date"] |= {normalize_date(v) for k, v in child.items() if k in ("start", "end") and isinstance(v, str)}
        elif isinstance(child, (dict, list)):
            _walk(child, out, types_by_ref, child_key)


def resources_with_facts(bundle: dict[str, Any]) -> list[tuple[str, Facts]]:
    entries = [e for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)]
    types_by_ref: dict[str, str] = {}
    for e in entries:
        r = e["resource"]
        if e.get("fullUrl"):
            types_by_ref[e["fullUrl"]] = r["resourceType"]
        if r.get("id"):
            types_by_ref[f"{r['resourceType']}/{r['id']}"] = r["resourceType"]
    out, seen = [], set()
    for e in entries:
        r = e["resource"]
        f = facts(r, types_by_ref)
        signature = (r["resourceType"], tuple(sorted((k, tuple(sorted(v))) for k, v in f.items())))
        if signature in seen:  # FHIR-Converter repeats identical resources (Locations, Organizations)
            continue
        seen.add(signature)
        out.append((r["resourceType"], f))
    return out


def field_agreement(expected: Facts, produced: Facts) -> dict[str, float]:
    """Per field present in `expected`: the share of its facts that `produced` has too."""
    return {name: len(values & produced.get(name, set())) / len(values) for name, values in expected.items() if values}


@dataclass
class TypeScore:
    expected: int = 0
    produced: int = 0
    found: int = 0
    fields: int = 0  # expected fields, over all expected resources of the type
    agreed: float = 0.0  # agreeing share summed over those fields
    by_field: dict[str, list[float]] = field(default_factory=dict)  # field -> [agreed, total]

    def add(self, other: TypeScore) -> None:
        self.expected += other.expected
        self.produced += other.produced
        self.found += other.found
        self.fields += other.fields
        self.agreed += other.agreed
        for name, (agreed, total) in other.by_field.items():
            acc = self.by_field.setdefault(name, [0.0, 0])
            acc[0] += agreed
            acc[1] += total

    def as_json(self) -> dict[str, Any]:
        return {
            "expected": self.expected, "produced": self.produced, "found": self.found,
            "found_share": round(self.found / self.expected, 4) if self.expected else None,
            "fields": self.fields, "agreement": round(self.agreed / self.fields, 4) if self.fields else None,
            "by_field": {k: round(a / t, 4) for k, (a, t) in sorted(self.by_field.items()) if t},
        }


def compare_bundles(expected: dict[str, Any], produced: dict[str, Any]) -> dict[str, TypeScore]:
    """Per resource type of the expected Bundle: how many resources were found and how far they agree."""
    exp = resources_with_facts(expected)
    got = resources_with_facts(produced)
    scores: dict[str, TypeScore] = {}
    for rtype in sorted({t for t, _ in exp}):
        want = [f for t, f in exp if t == rtype]
        have = [f for t, f in got if t == rtype]
        score = TypeScore(expected=len(want), produced=len(have))
        pairs = []
        for i, e in enumerate(want):
            for j, p in enumerate(have):
                agreement = field_agreement(e, p)
                pairs.append((sum(agreement.values()) / max(len(agreement), 1), i, j, agreement))
        pairs.sort(key=lambda x: (-x[0], x[1], x[2]))
        used_e: set[int] = set()
        used_p: set[int] = set()
        matched: dict[int, dict[str, float]] = {}
        for overall, i, j, agreement in pairs:
            if overall <= 0 or i in used_e or j in used_p:
                continue
            used_e.add(i)
            used_p.add(j)
            matched[i] = agreement
        for i, e in enumerate(want):
            agreement = matched.get(i, {})
            present = [name for name, values in e.items() if values]
            score.fields += len(present)
            score.found += i in matched
            for name in present:
                value = agreement.get(name, 0.0)
                score.agreed += value
                acc = score.by_field.setdefault(name, [0.0, 0])
                acc[0] += value
                acc[1] += 1
        scores[rtype] = score
    return scores
