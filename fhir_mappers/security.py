"""ARV (access restrictions) -> security labels (meta.security) and a tag (meta.tag) on the resource made from the
segment group the ARV is part of: the Patient after PID/PD1/NK1, the Encounter after PV1/PV2, as the V2-to-FHIR
guide's ARV map (HL7 Segment - FHIR R4: ARV) places it on Resource.meta."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import comps, dtm, entity_identifier, field, reps, system_uri, unescape

V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
RANGE_EXTENSION = "http://hl7.org/fhir/uv/v2mappings/StructureDefinition/access-restriction-range"  # the guide's
# ARV-3 access restriction value (table 0717) -> the v3 information sensitivity it names, as FHIR-Converter codes
# the two in the corpus (the guide's vocabulary map was not at hand); any other value keeps its table 0717 code
RESTRICTION_VALUE = {"DEM": ("DEMO", "all demographic information sensitivity"), "LOC": ("LOCIS", "location information sensitivity")}
# ARV-4 access restriction reason (table 0719) -> v3: restricted at the patient's or at a physician's request
RESTRICTION_REASON = {"PAT": ("PRS", "patient requested information sensitivity"), "PHY": ("PHY", "physician requested information sensitivity")}
CONFIDENTIALITY = {"U", "L", "M", "N", "R", "V"}  # ARV-7 (table 0952) is v3 Confidentiality's codes
DELETE = "D"  # ARV-2 (table 0206): the restriction is lifted, so the resource carries no label for it


def _coding(cwe: str, table: str, known: dict[str, tuple[str, str]] | None = None, system: str = V3_ACT_CODE) -> dict[str, Any] | None:
    """One CWE -> one Coding: a table code the guide's vocabulary names is coded in v3; another keeps its own
    system (the table's when it names none)."""
    c = comps(cwe)
    code = " ".join(unescape(c[0]).split())
    if not code:
        return None
    named = unescape(c[2]).strip().upper()
    if known is not None and named in {"", f"HL7{table}"} and code.upper() in known:
        v3, display = known[code.upper()]
        return {"system": system, "code": v3, "display": display}
    coding: dict[str, Any] = {"system": system_uri(c[2]) if named else f"http://terminology.hl7.org/CodeSystem/v2-{table}", "code": code}
    if unescape(c[1]).strip():
        coding["display"] = unescape(c[1]).strip()
    return coding


def access_restriction(arv: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]] | None:
    """(meta.security Codings, meta.tag Codings), or None when the restriction is deleted (ARV-2 D) or names nothing.
    ARV: 3 restriction value with 6 its date range (the guide's access-restriction-range extension), 4 reasons,
    5 special instructions (a label's display), 7 confidentiality, 8 handling instructions, 10 instance id (the tag).
    1 (set id), 2 (action: add or no change) and 9 (message location) set nothing."""
    if unescape(comps(field(arv, 2))[0]).strip().upper() == DELETE:
        return None
    labels: list[dict[str, Any]] = []
    value = _coding(field(arv, 3), "0717", RESTRICTION_VALUE)
    start, end = (dtm(x) for x in (comps(field(arv, 6))[:2]))
    if start or end:
        period = {"extension": [{"url": RANGE_EXTENSION, "valuePeriod": {k: v for k, v in (("start", start), ("end", end)) if v}}]}
        value = (value or {}) | period
    if value:
        labels.append(value)
    labels += [c for c in (_coding(x, "0719", RESTRICTION_REASON) for x in reps(field(arv, 4))) if c]
    labels += [{"display": t} for t in (unescape(x).strip() for x in reps(field(arv, 5))) if t]
    confidentiality = comps(field(arv, 7))
    if unescape(confidentiality[0]).strip().upper() in CONFIDENTIALITY and unescape(confidentiality[2]).strip().upper() in {"", "HL70952"}:
        labels.append({"system": V3_CONFIDENTIALITY, "code": unescape(confidentiality[0]).strip().upper()})
    elif unescape(confidentiality[0]).strip():
        labels.append(_coding(field(arv, 7), "0952"))  # type: ignore[arg-type]
    labels += [c for c in (_coding(x, "0953") for x in reps(field(arv, 8))) if c]
    tags = []
    instance = entity_identifier(field(arv, 10))
    if instance:
        tags.append({"code": instance["value"]} | ({"system": instance["system"]} if "system" in instance else {}))
    if not labels and not tags:
        return None
    return labels, tags


def restrict(resource: dict[str, Any], labels: list[dict[str, Any]], tags: list[dict[str, Any]]) -> None:
    """Add the labels and tags to the resource's meta, each once."""
    meta = resource.setdefault("meta", {})
    for key, codings in (("security", labels), ("tag", tags)):
        for coding in codings:
            if coding not in meta.get(key, []):
                meta.setdefault(key, []).append(coding)
