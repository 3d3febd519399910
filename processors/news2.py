"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017), SpO2 scale 1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INPUTS = ("respiratory_rate", "spo2", "on_oxygen", "systolic_bp", "heart_rate", "consciousness", "temperature_c")


@dataclass(frozen=True)
class News2Score:
    total: int
    band: str  # low | low-medium | medium | high
    components: dict[str, int]
    missing: list[str]
    red_score: bool


def _respiratory_rate(v: float) -> int:
    return 3 if v <= 8 else 1 if v <= 11 else 0 if v <= 20 else 2 if v <= 24 else 3


def _spo2_scale1(v: float) -> int:
    return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0


def _systolic_bp(v: float) -> int:
    return 3 if v <= 90 else 2 if v <= 100 else 1 if v <= 110 else 0 if v <= 219 else 3


def _heart_rate(v: float) -> int:
    return 3 if v <= 40 else 1 if v <= 50 else 0 if v <= 90 else 1 if v <= 110 else 2 if v <= 130 else 3


def _temperature(v: float) -> int:
    # the chart's bands are to one decimal: 35.0 / 35.1-36.0 / 36.1-38.0 / 38.1-39.0 / 39.1
    v = round(v, 1)
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
    if total >= 7:
        return "high"
    if total >= 5:
        return "medium"
    return "low-medium" if red_score else "low"


def news2(inputs: Mapping[str, float | str | bool]) -> News2Score | None:
    """Score what is present; report what is missing. None when no input is present at all."""
    components = {name: SCORERS[name](inputs[name]) for name in INPUTS if name in inputs}  # type: ignore[arg-type]
    if not components:
        return None
    total = sum(components.values())
    red = any(points == 3 for points in components.values())
    return News2Score(total, band(total, red), components, [n for n in INPUTS if n not in inputs], red)
