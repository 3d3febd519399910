"""Vital-sign readings out of a FHIR Bundle: Observations identified by LOINC code, units converted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

LOINC = "http://loinc.org"
# LOINC code -> NEWS2 input
VITAL_CODES = {
    "9279-1": "respiratory_rate",
    "59408-5": "spo2",
    "2708-6": "spo2",  # arterial SaO2 by pulse oximetry, older code
    "8480-6": "systolic_bp",
    "8867-4": "heart_rate",
    "8310-5": "temperature_c",
    "8331-1": "temperature_c",  # oral temperature
    "3151-8": "on_oxygen",  # inhaled oxygen flow rate: > 0 means supplemental oxygen
    "67775-7": "consciousness",  # level of consciousness (ACVPU letter)
}


@dataclass(frozen=True)
class Reading:
    name: str
    value: float | str | bool
    observed_at: str | None  # FHIR dateTime
    resource: str  # 'Observation/<id>'


def _loinc_code(obs: dict[str, Any]) -> str | None:
    for coding in obs.get("code", {}).get("coding", []):
        if coding.get("system") == LOINC and coding.get("code") in VITAL_CODES:
            return coding["code"]
    return None


def _celsius(value: float, unit: str) -> float:
    return round((value - 32) * 5 / 9, 2) if unit.lower() in {"[degf]", "degf", "f", "°f"} else value


def _value(name: str, obs: dict[str, Any]) -> float | str | bool | None:
    if name == "consciousness":
        concept = obs.get("valueCodeableConcept") or {}
        letter = next((c.get("code") for c in concept.get("coding", []) if c.get("code")), None) or obs.get("valueString")
        letter = (letter or "").strip()[:1].upper()
        return letter if letter in set("ACVPU") else None
    quantity = obs.get("valueQuantity")
    if not quantity or quantity.get("value") is None:
        return None
    value = float(quantity["value"])
    if name == "on_oxygen":
        return value > 0
    if name == "temperature_c":
        return _celsius(value, quantity.get("code") or quantity.get("unit") or "")
    return value


def vital_readings(bundle: dict[str, Any]) -> list[Reading]:
    """Final/amended/corrected vital-sign Observations of the Bundle; cancelled or erroneous ones are skipped."""
    readings = []
    for entry in bundle.get("entry", []):
        obs = entry.get("resource") or {}
        if obs.get("resourceType") != "Observation" or obs.get("status") in {"cancelled", "entered-in-error"}:
            continue
        code = _loinc_code(obs)
        if code is None:
            continue
        name = VITAL_CODES[code]
        value = _value(name, obs)
        if value is None:
            continue
        readings.append(Reading(name, value, obs.get("effectiveDateTime") or obs.get("issued"), f"Observation/{obs.get('id')}"))
    return readings
