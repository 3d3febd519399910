"""Score inputs out of a FHIR Bundle: vital signs and the few laboratory values the early-warning scores
use, as Observations identified by LOINC code, units converted to each input's own (processors/units.py);
and the coded diagnosis that puts a patient on NEWS2's SpO2 scale 2."""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from processors.diagnoses import ICD10_SYSTEMS
from processors.units import UnknownUnit, canonical, convert

LOINC = "http://loinc.org"
# LOINC code -> score input
INPUT_CODES = {
    "9279-1": "respiratory_rate",
    "59408-5": "spo2",  # oxygen saturation in arterial blood by pulse oximetry
    "2708-6": "spo2",  # oxygen saturation in arterial blood (the code of FHIR's vital-signs profile)
    "8480-6": "systolic_bp",
    "8867-4": "heart_rate",
    "8310-5": "temperature_c",  # body temperature
    "8331-1": "temperature_c",  # oral temperature
    "3151-8": "on_oxygen",  # inhaled oxygen flow rate: > 0 means supplemental oxygen
    "3150-0": "on_oxygen",  # inhaled oxygen concentration (FiO2): > 21 % means supplemental oxygen
    "19994-3": "on_oxygen",  # oxygen/inspired gas setting, ventilator (FiO2)
    "67775-7": "consciousness",  # level of responsiveness (ACVPU letter, or an AVPU SNOMED CT finding)
    "80288-4": "consciousness",  # level of consciousness (AVPU)
    "9269-2": "consciousness",  # Glasgow coma score total: 15 is alert, below 15 is not (see _consciousness)
    "6690-2": "wbc",  # leukocytes [#/volume] in blood by automated count
    "26464-8": "wbc",  # leukocytes [#/volume] in blood
    "764-1": "bands_pct",  # band neutrophils / 100 leukocytes in blood, manual count
    "26508-2": "bands_pct",  # band neutrophils / 100 leukocytes in blood
    "2019-8": "paco2",  # carbon dioxide partial pressure in arterial blood
}
LAB_INPUTS = frozenset({"wbc", "bands_pct", "paco2"})
VITAL_CODES = {code: name for code, name in INPUT_CODES.items() if name not in LAB_INPUTS}
# each numeric input's own unit; a value in another known unit is converted, one in an unknown spelling
# ("bpm", "deg") is taken as sent in this unit, as feeds label units loosely
INPUT_UNITS = {"temperature_c": "Cel", "systolic_bp": "mm[Hg]", "paco2": "mm[Hg]", "wbc": "10*9/L", "bands_pct": "%", "spo2": "%"}
# SNOMED CT findings of the AVPU value sets -> letter
AVPU_SNOMED = {"248234008": "A", "255373000": "V", "450847001": "P", "422768004": "U"}
_AVPU_WORDS = (("confus", "C"), ("unrespons", "U"), ("pain", "P"), ("voice", "V"), ("verbal", "V"), ("alert", "A"))


@dataclass(frozen=True)
class Reading:
    name: str
    value: float | str | bool
    observed_at: str | None  # FHIR dateTime
    resource: str  # 'Observation/<id>'


def observations(bundle: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The usable Observations of a Bundle (or a bare Observation), in order: cancelled or erroneous ones skipped."""
    resources = [bundle] if bundle.get("resourceType") == "Observation" else [e.get("resource") or {} for e in bundle.get("entry", [])]
    for obs in resources:
        if obs.get("resourceType") == "Observation" and obs.get("status") not in {"cancelled", "entered-in-error"}:
            yield obs


def loinc_code(obs: Mapping[str, Any], wanted: Container[str]) -> str | None:
    """The Observation's first LOINC code among `wanted`."""
    for coding in (obs.get("code") or {}).get("coding", []):
        if coding.get("system") == LOINC and coding.get("code") in wanted:
            return coding["code"]
    return None


def _letter(obs: dict[str, Any]) -> str | None:
    """ACVPU letter of a coded or text answer: a letter code, an AVPU SNOMED CT finding, or the words."""
    concept = obs.get("valueCodeableConcept") or {}
    for coding in concept.get("coding", []):
        code = (coding.get("code") or "").strip().upper()
        if len(code) == 1 and code in "ACVPU":
            return code
        if coding.get("code") in AVPU_SNOMED:
            return AVPU_SNOMED[coding["code"]]
    texts = [c.get("display") or "" for c in concept.get("coding", [])] + [concept.get("text") or ""]
    for text in texts:
        found = next((letter for word, letter in _AVPU_WORDS if word in text.lower()), None)
        if found:
            return found
    text = (obs.get("valueString") or next((t for t in texts if t), "")).strip()
    letter = text[:1].upper()
    return letter if letter and letter in "ACVPU" else None


def _number(obs: dict[str, Any]) -> tuple[float, str] | None:
    quantity = obs.get("valueQuantity")
    if quantity and quantity.get("value") is not None:
        return float(quantity["value"]), quantity.get("code") or quantity.get("unit") or ""
    if obs.get("valueInteger") is not None:
        return float(obs["valueInteger"]), ""
    return None


def _in_unit(name: str, value: float, unit: str) -> float | None:
    target = INPUT_UNITS.get(name)
    if target is None or canonical(unit) in (None, canonical(target)):
        return value
    try:
        return round(convert(value, unit, target), 2)
    except UnknownUnit:  # a known unit of another kind (mg/dL for a cell count): not this input
        return None


def _value(name: str, code: str, obs: dict[str, Any]) -> float | str | bool | None:
    if name == "consciousness" and code != "9269-2":
        return _letter(obs)
    number = _number(obs)
    if number is None:
        return None
    value, unit = number
    if name == "consciousness":
        # GCS 15 is alert. Below 15 the patient is not alert, which is all NEWS2 and qSOFA ask; it is read as
        # C, the mildest level that is not alert, rather than a V, P or U nobody assessed.
        return "A" if value >= 15 else "C"
    if name == "on_oxygen":
        if code == "3151-8":
            return value > 0
        # FiO2: a fraction (UCUM "1", or a bare number up to 1) or a percentage; room air is 21 %
        fraction = canonical(unit) == "1" or (canonical(unit) != "%" and value <= 1)
        return (value * 100 if fraction else value) > 21
    return _in_unit(name, value, unit)


def vital_readings(bundle: dict[str, Any]) -> list[Reading]:
    """The NEWS2 inputs (vital signs) of `score_readings`."""
    return [r for r in score_readings(bundle) if r.name not in LAB_INPUTS]


def score_readings(bundle: dict[str, Any]) -> list[Reading]:
    """Score inputs of the Bundle's Observations (vital signs, WBC, bands, PaCO2) in Bundle order;
    cancelled or erroneous Observations, and values in a unit that is not the input's, are skipped."""
    readings = []
    for obs in observations(bundle):
        code = loinc_code(obs, INPUT_CODES)
        if code is None:
            continue
        name = INPUT_CODES[code]
        value = _value(name, code, obs)
        if value is None:
            continue
        readings.append(Reading(name, value, obs.get("effectiveDateTime") or obs.get("issued"), f"Observation/{obs.get('id')}"))
    return readings


def _normalized_icd(code: str) -> str:
    return code.replace(".", "").strip().upper()


def scale2_condition(bundle: dict[str, Any], icd10_prefixes: Sequence[str]) -> str | None:
    """The ICD-10 code of a Condition in the Bundle under one of `icd10_prefixes` (dots optional), the
    diagnosis that puts the patient on NEWS2's SpO2 scale 2; None when there is none. Refuted, erroneous,
    resolved and inactive Conditions do not count, nor codes the project's coder suggested from note text
    (userSelected false): a clinician's coded diagnosis chooses the scale, not a guess from prose."""
    prefixes = [_normalized_icd(p) for p in icd10_prefixes if p.strip()]
    if not prefixes:
        return None
    for entry in bundle.get("entry", []):
        res = entry.get("resource") or {}
        if res.get("resourceType") != "Condition":
            continue
        verification = {c.get("code") for c in (res.get("verificationStatus") or {}).get("coding", [])}
        clinical = {c.get("code") for c in (res.get("clinicalStatus") or {}).get("coding", [])}
        if verification & {"refuted", "entered-in-error"} or clinical & {"inactive", "resolved", "remission"}:
            continue
        for coding in (res.get("code") or {}).get("coding", []):
            if coding.get("system") not in ICD10_SYSTEMS or not coding.get("code") or coding.get("userSelected") is False:
                continue
            if _normalized_icd(coding["code"]).startswith(tuple(prefixes)):
                return str(coding["code"])
    return None
