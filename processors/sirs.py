"""SIRS, the systemic inflammatory response syndrome criteria (ACCP/SCCM 1992): temperature > 38 or < 36 °C;
heart rate > 90/min; respiratory rate > 20/min or PaCO2 < 32 mm[Hg]; WBC > 12 or < 4 x10^9/L or bands > 10 %.
One point per criterion met (0-4); SIRS at 2 or more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INPUTS = ("temperature_c", "heart_rate", "respiratory_rate", "paco2", "wbc", "bands_pct")
# criterion -> the inputs any one of which meets it
CRITERIA = {
    "temperature": ("temperature_c",),
    "heart_rate": ("heart_rate",),
    "respiratory": ("respiratory_rate", "paco2"),
    "white_cells": ("wbc", "bands_pct"),
}
SCORERS = {
    "temperature_c": lambda v: int(v > 38 or v < 36),
    "heart_rate": lambda v: int(v > 90),
    "respiratory_rate": lambda v: int(v > 20),
    "paco2": lambda v: int(v < 32),  # mm[Hg]; 4.3 kPa
    "wbc": lambda v: int(v > 12 or v < 4),  # x10^9/L
    "bands_pct": lambda v: int(v > 10),
}


@dataclass(frozen=True)
class SirsScore:
    total: int  # criteria met, 0-4
    positive: bool  # total >= 2
    components: dict[str, int]  # 1 when the input meets its threshold, per input present
    criteria: dict[str, int]  # 1 per criterion met, per criterion with an input present
    missing: list[str]


def sirs(inputs: Mapping[str, float]) -> SirsScore | None:
    """Score what is present; report what is missing (WBC and bands are often absent: a criterion with no
    input counts 0 and its inputs are listed). None when no input is present at all."""
    components = {name: SCORERS[name](inputs[name]) for name in INPUTS if name in inputs}
    if not components:
        return None
    criteria = {c: max(components[n] for n in names if n in components)
                for c, names in CRITERIA.items() if any(n in components for n in names)}
    total = sum(criteria.values())
    return SirsScore(total, total >= 2, components, criteria, [n for n in INPUTS if n not in inputs])
