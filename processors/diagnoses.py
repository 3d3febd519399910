"""ICD-10-CM in the enriched envelope: candidates on PROBLEM entities, a provisional FHIR R4 Condition per
coded problem, and an ICD-10-CM coding added to the message's own Conditions (DG1, PRB, FHIR) that have none.

Pure: the coder runs once per batch over `mentions_to_code(envelopes)` and its answers come back here as
a mapping mention text -> candidates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from clinstream.envelope import CodeMatch, Entity, Envelope, ModelRef
from processors.icd10cm import default_shorthand

SYSTEM = "http://hl7.org/fhir/sid/icd-10-cm"
# Codings in these systems are kept as sent: the sender has coded the diagnosis already.
ICD10_SYSTEMS = {SYSTEM, "http://hl7.org/fhir/sid/icd-10", "urn:oid:2.16.840.1.113883.6.90", "urn:oid:2.16.840.1.113883.6.3"}
CODED_ASSERTIONS = {"present", "possible"}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
SPAN_EXTENSION = "urn:clinstream:fhir:extension:text-span"  # where in which narrative the problem was read
MATCH_EXTENSION = "urn:clinstream:fhir:extension:icd10cm-match-score"  # cosine of text and code description
NAMESPACE = uuid.UUID("0b7f3c8e-2a61-4d1c-9e4f-5d2a8c6b1e73")


def _codable(entity_label: str, assertion: str) -> bool:
    return entity_label == "PROBLEM" and assertion in CODED_ASSERTIONS


def _conditions(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == "Condition"]


def has_icd10(concept: dict[str, Any] | None) -> bool:
    return any(c.get("system") in ICD10_SYSTEMS and c.get("code") for c in (concept or {}).get("coding", []))


def condition_text(concept: dict[str, Any] | None) -> str | None:
    """What to code a sent Condition by: its text, else its codings' displays."""
    concept = concept or {}
    text = (concept.get("text") or "").strip()
    if text and text.lower() not in {"unknown diagnosis", "unknown problem"}:
        return text
    displays = [c.get("display", "").strip() for c in concept.get("coding", []) if c.get("display")]
    return displays[0] if displays else None


# ICD-10-CM codes a diabetic complication by the diabetes' type (E10 type 1, E11 type 2), and by its guidelines an
# undocumented type is type 2. A note states the type once ("T1DM", "hx of type 1 diabetes") and then writes "DKA" or
# "diabetic neuropathy" without it: those take the type the message states (E10.10, not E11.10).
_STATED_TYPE = re.compile(r"\btype ([12]) diabetes|\bdiabetes(?: mellitus)?,? type ([12])\b")
_UNTYPED = re.compile(r"\bdiabet(?:es|ic)\b")
_OTHER_KIND = re.compile(r"\b(?:type [12]|gestational|pregnancy|steroid|drug|chemical|induced|due to|secondary|neonatal|"
                         r"insipidus|pre ?diabet\w*)\b")
_CATEGORY_TYPES = {"E10": "1", "E11": "2"}  # ICD-10(-CM) category -> the diabetes type it codes
TYPE_STATING_ASSERTIONS = {"present", "historical"}  # the patient has it ("hx of T1DM"); not a relative's, not a doubt


def stated_diabetes_type(texts: Iterable[str]) -> str | None:
    """'1' or '2' where the texts state one diabetes type, None where they state none or both."""
    words = default_shorthand().words
    types = {a or b for text in texts for a, b in _STATED_TYPE.findall(words(text))}
    return types.pop() if len(types) == 1 else None


def diabetes_type(env: Envelope) -> str | None:
    """The diabetes type the message states: in the patient's problems its notes name, or in its Conditions."""
    texts = [e.expands or e.text for e in env.entities if e.label == "PROBLEM" and e.assertion in TYPE_STATING_ASSERTIONS]
    for condition in _conditions(env.bundle):
        concept = condition.get("code") or {}
        if text := condition_text(concept):
            texts.append(text)
        # a sent code states it too, with or without a display (a DG1 "E10.9" alone)
        texts += [f"type {kind} diabetes" for coding in concept.get("coding", []) if coding.get("system") in ICD10_SYSTEMS
                  and (kind := _CATEGORY_TYPES.get(str(coding.get("code", ""))[:3]))]
    return stated_diabetes_type(texts)


def coded_text(entity: Entity, diabetes: str | None = None) -> str:
    """What a mention is coded by: its own text, or for a short form the text defines, the long form; a diabetes or
    diabetic complication of no stated type given the type `diabetes` the message states."""
    return _typed(entity.expands or entity.text, diabetes)


def _typed(text: str, diabetes: str | None) -> str:
    if diabetes is None:
        return text
    words = default_shorthand().words(text)
    untyped = _UNTYPED.search(words)
    if untyped is None or _OTHER_KIND.search(words):
        return text
    return f"{words[: untyped.start()]}type {diabetes} {words[untyped.start():]}"


class _CodingTexts(NamedTuple):
    """What the coder is given for one message, read once (the diabetes type with it)."""
    entities: dict[int, str]  # index in env.entities -> text, for PROBLEM entities present or possible
    conditions: dict[int, str]  # index in the Bundle's entries -> text, for sent Conditions with no ICD-10 coding


def _coding_texts(env: Envelope) -> _CodingTexts:
    """A sent Condition coded only as text ("Diabetic ketoacidosis" in a DG1) takes the message's diabetes type as a
    note's mention does."""
    diabetes = diabetes_type(env)
    entities = {i: coded_text(e, diabetes) for i, e in enumerate(env.entities) if _codable(e.label, e.assertion)}
    conditions = {}
    for i, entry in enumerate(env.bundle.get("entry", [])):
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") == "Condition" and not has_icd10(resource.get("code")):
            if text := condition_text(resource.get("code")):
                conditions[i] = _typed(text, diabetes)
    return _CodingTexts(entities, conditions)


def mentions_to_code(envelopes: list[Envelope]) -> list[str]:
    """The distinct texts a batch needs coded: PROBLEM entities present or possible, and the message's
    Conditions that carry no ICD-10 coding."""
    seen: dict[str, None] = {}
    for env in envelopes:
        texts = _coding_texts(env)
        seen.update(dict.fromkeys([*texts.entities.values(), *texts.conditions.values()]))
    return list(seen)


def _full_urls(bundle: dict[str, Any]) -> dict[str, str]:
    out = {}
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if entry.get("fullUrl") and resource.get("id"):
            out[f"{resource.get('resourceType')}/{resource['id']}"] = entry["fullUrl"]
    return out


def _condition_resources(env: Envelope) -> list[dict[str, Any]]:
    """Bundle entries: one provisional Condition per distinct best code among the coded entities, with
    evidence pointing at each source resource and text span. Ids are stable per message and code."""
    urls = _full_urls(env.bundle)
    narratives = {n.id: n for n in env.narratives}
    sent = {c["code"] for cond in _conditions(env.bundle) for c in cond.get("code", {}).get("coding", [])
            if c.get("system") == SYSTEM and c.get("code")}
    grouped: dict[str, list[Any]] = {}
    for entity in env.entities:
        if entity.icd10cm and _codable(entity.label, entity.assertion):
            grouped.setdefault(entity.icd10cm[0].code, []).append(entity)
    entries = []
    for code, entities in grouped.items():
        if code in sent:  # the message already states this diagnosis
            continue
        best = entities[0].icd10cm[0]
        rid = str(uuid.uuid5(NAMESPACE, f"Condition|{env.message_id}|{code}"))
        evidence = []
        for entity in entities:
            narrative = narratives.get(entity.narrative_id)
            source = narrative.resource if narrative else entity.narrative_id.split("#")[0]
            detail = {"reference": urls.get(source, source), "display": f"{entity.text!r} in {entity.narrative_id}"}
            evidence.append({
                "extension": [{"url": SPAN_EXTENSION, "extension": [
                    {"url": "narrative", "valueString": entity.narrative_id},
                    {"url": "start", "valueInteger": entity.start},
                    {"url": "end", "valueInteger": entity.end},
                    {"url": "text", "valueString": entity.text},
                    {"url": "assertion", "valueCode": entity.assertion},
                ]}],
                "detail": [detail],
            })
        resource: dict[str, Any] = {
            "resourceType": "Condition", "id": rid,
            "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "provisional"}]},
            "code": {"coding": [_coding(best)], "text": entities[0].text},
            "subject": {"reference": env.patient_ref} if env.patient_ref else {"display": "unknown patient"},
            "evidence": evidence,
        }
        if any(e.assertion == "present" for e in entities):
            resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "active"}]}
        if env.encounter_ref:
            resource["encounter"] = {"reference": env.encounter_ref}
        if env.observed_at:
            resource["recordedDate"] = env.observed_at
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": resource})
    return entries


def _coding(match: CodeMatch) -> dict[str, Any]:
    return {"extension": [{"url": MATCH_EXTENSION, "valueDecimal": round(match.score, 4)}],
            "system": SYSTEM, "code": match.code, "display": match.display, "userSelected": False}


def with_diagnoses(env: Envelope, codes: Mapping[str, list[CodeMatch]], coder: ModelRef) -> Envelope:
    """Candidates on the present or possible PROBLEM entities; an ICD-10-CM coding (the best candidate) added to each
    sent Condition with no ICD-10 coding, those coded in ICD-10 or ICD-10-CM kept exactly as sent; a provisional
    Condition per coded problem added to the Bundle; the coder in `models`. A message with nothing to code is
    returned as it came."""
    texts = _coding_texts(env)
    if not texts.entities and not texts.conditions:
        return env
    entities = [e.model_copy(update={"icd10cm": list(codes.get(texts.entities[i], []))}) if i in texts.entities else e
                for i, e in enumerate(env.entities)]
    entries = list(env.bundle.get("entry", []))
    for i, text in texts.conditions.items():
        if matches := codes.get(text):
            resource = entries[i]["resource"]
            concept = dict(resource.get("code") or {})
            concept["coding"] = list(concept.get("coding", [])) + [_coding(matches[0])]
            concept.setdefault("text", condition_text(resource.get("code")))
            entries[i] = {**entries[i], "resource": {**resource, "code": concept}}
    coded = env.model_copy(update={"entities": entities, "bundle": {**env.bundle, "entry": entries}})
    added = _condition_resources(coded)
    return coded.model_copy(update={"bundle": {**env.bundle, "entry": entries + added}, "models": [*env.models, coder]})
