"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017): every parameter, both
SpO2 scales, the red score (3 points in one parameter) and the clinical response band."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

INPUTS = ("respiratory_rate", "spo2", "on_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature_c")


@dataclass(frozen=True)
class News2Score:
    total: int
    band: str  # low | low-medium | medium | high
    components: dict[str, int]
    missing: list[str]
    red_score: bool
    scale: int = 1  # SpO2 scale used


def _to(v: float, places: str) -> float:
    # the chart's bands are whole numbers (91 / 92-93...) or tenths (temperature): a value between two is
    # read to the nearest, halves up as written (38.05 -> 38.1; Python's round() would give 38.0)
    return float(Decimal(str(v)).quantize(Decimal(places), rounding=ROUND_HALF_UP))


def _whole(v: float) -> float:
    return _to(v, "1")


def _respiratory_rate(v: float) -> int:
    v = _whole(v)
    return 3 if v <= 8 else 1 if v <= 11 else 0 if v <= 20 else 2 if v <= 24 else 3


def _spo2_scale1(v: float) -> int:
    v = _whole(v)
    return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0


def _spo2_scale2(v: float, on_oxygen: bool) -> int:
    """Scale 2 (target 88-92 %, e.g. hypercapnic respiratory failure): low saturations score as on scale 1
    shifted down; 93 % and above scores 0 on air but 1-3 on oxygen, where it means too much oxygen."""
    v = _whole(v)
    if v <= 92:
        return 3 if v <= 83 else 2 if v <= 85 else 1 if v <= 87 else 0
    if not on_oxygen:
        return 0
    return 1 if v <= 94 else 2 if v <= 96 else 3


def _systolic_bp(v: float) -> int:
    v = _whole(v)
    return 3 if v <= 90 else 2 if v <= 100 else 1 if v <= 110 else 0 if v <= 219 else 3


def _heart_rate(v: float) -> int:
    v = _whole(v)
    return 3 if v <= 40 else 1 if v <= 50 else 0 if v <= 90 else 1 if v <= 110 else 2 if v <= 130 else 3


def _temperature(v: float) -> int:
    # the chart's bands are to one decimal: 35.0 / 35.1-36.0 / 36.1-38.0 / 38.1-39.0 / 39.1
    v = _to(v, "0.1")
    return 3 if v <= 35.0 else 1 if v <= 36.0 else 0 if v <= 38.0 else 1 if v <= 39.0 else 2


def _consciousness(v: str) -> int:
    # ACVPU: anything but Alert (new Confusion, Voice, Pain, Unresponsive) scores 3
    return 0 if v.upper() == "A" else 3


def _on_oxygen(v: bool) -> int:
    return 2 if v else 0


SCORERS = {
    "respiratory_rate": _respiratory_rate,
    "spo2": _spo2_scale1,
    "on_oxygen": _on_oxygen,
    "systolic_bp": _systolic_bp,
    "heart_rate": _heart_rate,
    "consciousness": _consciousness,
    "temperature_c": _temperature,
}


def band(total: int, red_score: bool) -> str:
    """RCP 2017 thresholds: 7 or more high; 5-6 medium; 0-4 low, low-medium when one parameter scores 3."""
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if red_score else "low"


def clinical_response(total: int, band_: str) -> str:
    """The RCP 2017 minimum monitoring frequency and response for a result, in short."""
    if band_ == "high":
        return "continuous monitoring; emergency assessment by a team with critical-care skills; consider level 2/3 care"
    if band_ == "medium":
        return "at least hourly monitoring; urgent assessment by a clinician competent in acute illness"
    if band_ == "low-medium":
        return "at least hourly monitoring; the registered nurse informs the medical team, who decide on escalation"
    if total == 0:
        return "at least 12-hourly monitoring"
    return "at least 4-6-hourly monitoring; a registered nurse assesses and decides on monitoring or escalation"


def news2(inputs: Mapping[str, float | str | bool], *, scale: int = 1) -> News2Score | None:
    """Score what is present; report what is missing. None when no input is present at all.

    `scale` 2 is for patients with a prescribed 88-92 % target (hypercapnic respiratory failure); there an
    SpO2 of 93 % or more scores by `on_oxygen`, and a missing `on_oxygen` counts as air (it is listed missing).
    """
    if scale not in (1, 2):
        raise ValueError(f"SpO2 scale is 1 or 2, not {scale!r}")
    components = {name: SCORERS[name](inputs[name]) for name in INPUTS if name in inputs}  # type: ignore[arg-type]
    if not components:
        return None
    if scale == 2 and "spo2" in inputs:
        components["spo2"] = _spo2_scale2(inputs["spo2"], bool(inputs.get("on_oxygen", False)))  # type: ignore[arg-type]
    total = sum(components.values())
    red = any(points == 3 for points in components.values())
    return News2Score(total, band(total, red), components, [n for n in INPUTS if n not in inputs], red, scale)
