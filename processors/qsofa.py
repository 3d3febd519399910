"""qSOFA, the quick Sequential Organ Failure Assessment (Sepsis-3, Singer et al. 2016): one point each for
respiratory rate >= 22/min, systolic pressure <= 100 mm[Hg] and altered mentation; positive at 2 or more."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

INPUTS = ("respiratory_rate", "systolic_bp", "consciousness")


@dataclass(frozen=True)
class QsofaScore:
    total: int  # 0-3
    positive: bool  # total >= 2
    components: dict[str, int]  # points per input present
    missing: list[str]


SCORERS = {
    "respiratory_rate": lambda v: int(v >= 22),
    "systolic_bp": lambda v: int(v <= 100),
    # altered mentation: anything but Alert on ACVPU (a GCS below 15 arrives here as C, processors/vitals.py)
    "consciousness": lambda v: int(str(v).upper() != "A"),
}


def qsofa(inputs: Mapping[str, float | str | bool]) -> QsofaScore | None:
    """Score what is present; report what is missing. None when no input is present at all."""
    components = {name: SCORERS[name](inputs[name]) for name in INPUTS if name in inputs}
    if not components:
        return None
    total = sum(components.values())
    return QsofaScore(total, total >= 2, components, [n for n in INPUTS if n not in inputs])
