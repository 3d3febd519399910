"""Unit conversion for score inputs and laboratory limits: UCUM codes and the spellings feeds use for them.

`convert(value, unit, target)` handles temperature, pressure, cell counts, mass and substance concentration
(across the two with a molar mass), percentages and fractions. An unknown unit raises `UnknownUnit`.
"""

from __future__ import annotations

from clinstream.exceptions import ClinstreamError

# canonical UCUM code -> (dimension, factor to the dimension's base unit); temperature is affine, below
_LINEAR: dict[str, tuple[str, float]] = {
    "mm[Hg]": ("pressure", 1.0),
    "kPa": ("pressure", 760 / 101.325),  # 1 kPa = 7.50062 mm[Hg]
    "10*9/L": ("count", 1.0),
    "10*3/uL": ("count", 1.0),  # the same quantity: 10^3 per microlitre = 10^9 per litre
    "10*6/L": ("count", 1e-3),
    "/uL": ("count", 1e-3),  # cells per microlitre (= per mm3)
    "g/L": ("mass", 1.0),
    "g/dL": ("mass", 10.0),
    "mg/dL": ("mass", 1e-2),
    "mg/L": ("mass", 1e-3),
    "ug/L": ("mass", 1e-6),  # = ng/mL
    "ng/L": ("mass", 1e-9),  # = pg/mL
    "mol/L": ("substance", 1e3),
    "mmol/L": ("substance", 1.0),
    "umol/L": ("substance", 1e-3),
    "%": ("fraction", 1.0),
    "1": ("fraction", 100.0),  # UCUM's dimensionless unit: a fraction, 0.21 = 21 %
}
_TEMPERATURE = {"Cel", "[degF]", "K"}

# spellings seen in HL7 v2 OBX-6 and FHIR Quantity.unit, lower-cased, -> canonical code
_ALIASES: dict[str, str] = {
    **{u.lower(): u for u in [*_LINEAR, *_TEMPERATURE]},
    "c": "Cel", "°c": "Cel", "degc": "Cel", "deg c": "Cel", "celsius": "Cel", "cel": "Cel",
    "f": "[degF]", "°f": "[degF]", "degf": "[degF]", "deg f": "[degF]", "fahrenheit": "[degF]",
    "mmhg": "mm[Hg]", "mm hg": "mm[Hg]", "torr": "mm[Hg]",
    "10^9/l": "10*9/L", "x10^9/l": "10*9/L", "x10e9/l": "10*9/L", "10e9/l": "10*9/L", "giga/l": "10*9/L", "/nl": "10*9/L",
    "10^3/ul": "10*3/uL", "x10^3/ul": "10*3/uL", "x10e3/ul": "10*3/uL", "10e3/ul": "10*3/uL", "k/ul": "10*3/uL",
    "thou/ul": "10*3/uL", "10*3/mm3": "10*3/uL", "10^3/mm3": "10*3/uL", "k/mm3": "10*3/uL",
    "/mm3": "/uL", "cells/ul": "/uL", "cells/mm3": "/uL",
    "ug/l": "ug/L", "ng/ml": "ug/L", "µg/l": "ug/L", "ng/l": "ng/L", "pg/ml": "ng/L",
    "meq/l": "mmol/L",  # equal for the monovalent ions this is used with (sodium, potassium)
    "µmol/l": "umol/L", "mg%": "mg/dL", "percent": "%", "pct": "%", "{fraction}": "1",
}
# case matters for these: G/L is giga per litre (a cell count, French laboratories), g/L grams per litre
_EXACT = {**{u: u for u in [*_LINEAR, *_TEMPERATURE]}, "G/L": "10*9/L"}
# dimensionless "units" for values that have none (INR, pH) and rates scored as sent
UNITLESS = {"", "1", "{inr}", "{ratio}", "ratio", "inr", "[ph]", "ph", "{ph}"}


class UnknownUnit(ClinstreamError):
    """A unit this module cannot convert to the one asked for."""


def canonical(unit: str | None) -> str | None:
    """The UCUM code for a spelling, or None when the unit is not known here."""
    if unit is None:
        return None
    text = unit.strip()
    if text in _EXACT:
        return _EXACT[text]
    key = text.lower()
    return _ALIASES.get(key) or _ALIASES.get(key.replace(" ", ""))


def _temperature(value: float, unit: str, target: str) -> float:
    celsius = (value - 32) * 5 / 9 if unit == "[degF]" else value - 273.15 if unit == "K" else value
    return celsius * 9 / 5 + 32 if target == "[degF]" else celsius + 273.15 if target == "K" else celsius


def convert(value: float, unit: str | None, target: str, *, molar_mass: float | None = None) -> float:
    """`value` in `unit` expressed in `target` (a canonical code). Mass and substance concentrations
    convert into each other with `molar_mass` (g/mol): glucose 180.16, lactate 90.08, haemoglobin 16114
    (per haem, the mmol/L that some European laboratories report)."""
    source, goal = canonical(unit), canonical(target)
    if source is None or goal is None:
        raise UnknownUnit(f"unknown unit {unit!r}" if source is None else f"unknown unit {target!r}")
    if source in _TEMPERATURE or goal in _TEMPERATURE:
        if not (source in _TEMPERATURE and goal in _TEMPERATURE):
            raise UnknownUnit(f"cannot convert {source} to {goal}")
        return _temperature(value, source, goal)
    (kind, factor), (goal_kind, goal_factor) = _LINEAR[source], _LINEAR[goal]
    base = value * factor
    if kind != goal_kind:
        if molar_mass is None or {kind, goal_kind} != {"mass", "substance"}:
            raise UnknownUnit(f"cannot convert {source} to {goal}")
        # g/L = mmol/L * g/mol / 1000
        base = base * molar_mass / 1000 if kind == "substance" else base * 1000 / molar_mass
    return base / goal_factor


def is_unit_of(unit: str | None, target: str, *, molar_mass: float | None = None) -> bool:
    """True when `unit` converts to `target`."""
    try:
        convert(1.0, unit, target, molar_mass=molar_mass)
    except UnknownUnit:
        return False
    return True
