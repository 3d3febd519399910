"""Critical laboratory values: a table of LOINC codes with critical low/high limits (a site overrides it
with a YAML file, CLINSTREAM_CRITICAL_LABS_FILE), and the critical flags laboratories send themselves:
HL7 v2 OBX-8 (HH, LL, AA...), which the mappers carry into Observation.interpretation, and FHIR
interpretation codes. Pure: a Bundle in, findings out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from clinstream.exceptions import ClinstreamError
from fhir_mappers.yaml_files import read_yaml
from processors.units import UNITLESS, UnknownUnit, canonical, convert
from processors.vitals import loinc_code, observations


@dataclass(frozen=True)
class CriticalLimit:
    name: str
    loinc: tuple[str, ...]
    unit: str  # UCUM code the limits are in; values in other units are converted
    low: float | None = None  # critical below this (strictly)
    high: float | None = None  # critical above this (strictly)
    molar_mass: float | None = None  # g/mol, to compare mass and substance concentrations


@dataclass(frozen=True)
class CriticalTable:
    limits: tuple[CriticalLimit, ...]
    flags: frozenset[str]  # interpretation / OBX-8 codes that mean critical, upper case

    def by_loinc(self) -> dict[str, CriticalLimit]:
        return {code: row for row in self.limits for code in row.loinc}


@dataclass(frozen=True)
class CriticalFinding:
    name: str
    value: float | str | None
    unit: str | None  # as sent
    limit: str | None  # the limit crossed, in the table's unit ("< 2.8 mmol/L"); None for a flag alone
    observed_at: str | None
    source: str  # "limit" (the table) or "flag" (the laboratory's own critical flag)
    resource: str  # 'Observation/<id>'
    flag: str | None = None  # the critical flag sent with the value, if any


# Common critical-call values of adult inpatient laboratories. Troponin limits depend on the assay: these
# are the ESC 0 h rule-in values for Elecsys hs-cTnT (52 ng/L) and Architect hs-cTnI (64 ng/L); set yours.
DEFAULT_LIMITS = (
    CriticalLimit("potassium", ("2823-3", "6298-4"), "mmol/L", low=2.8, high=6.2),
    CriticalLimit("sodium", ("2951-2", "2947-0"), "mmol/L", low=120, high=160),
    # 2.8 / 25 mmol/L are 50 / 450 mg/dL
    CriticalLimit("glucose", ("2345-7", "2339-0", "14749-6", "15074-8"), "mmol/L", low=2.8, high=25, molar_mass=180.16),
    CriticalLimit("lactate", ("2524-7", "32693-4"), "mmol/L", high=4, molar_mass=90.08),
    CriticalLimit("troponin_t_hs", ("67151-1",), "ng/L", high=52),
    CriticalLimit("troponin_i_hs", ("89579-7",), "ng/L", high=64),
    CriticalLimit("haemoglobin", ("718-7",), "g/L", low=70, molar_mass=16114),  # 7 g/dL; 4.3 mmol/L
    CriticalLimit("platelets", ("777-3", "26515-7"), "10*9/L", low=20),
    CriticalLimit("inr", ("6301-6", "34714-6"), "{INR}", high=5),
    CriticalLimit("ph", ("2744-1", "11558-4"), "[pH]", low=7.2, high=7.6),
    CriticalLimit("pco2", ("2019-8", "11557-6"), "mm[Hg]", low=20, high=70),  # 2.7 / 9.3 kPa
)
# HL7 v2 table 0078 and FHIR v3 ObservationInterpretation: HH critical high, LL critical low, AA critical
# abnormal; the others are spellings some laboratory systems send for the same thing
DEFAULT_FLAGS = frozenset({"HH", "LL", "AA", "CH", "CL", "CRIT", "CRITICAL", "PANIC"})
DEFAULT_TABLE = CriticalTable(DEFAULT_LIMITS, DEFAULT_FLAGS)


class CriticalLabsError(ClinstreamError):
    """A critical-labs file that cannot be used; the reason names the entry and key."""


_ROW_KEYS = {"loinc", "unit", "low", "high", "molar_mass"}


def _number(entry: str, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CriticalLabsError(f"limits.{entry}.{key}: a number or null")
    return float(value)


def _row(name: str, data: Any, base: CriticalLimit | None) -> CriticalLimit:
    if not isinstance(data, Mapping):
        raise CriticalLabsError(f"limits.{name}: a mapping of {sorted(_ROW_KEYS)}, or null to drop it")
    unknown = set(data) - _ROW_KEYS
    if unknown:
        raise CriticalLabsError(f"limits.{name}: unknown keys {sorted(unknown)}")
    row = base or CriticalLimit(name, (), "")
    if "loinc" in data:
        codes = data["loinc"]
        codes = [codes] if isinstance(codes, str) else codes
        if not isinstance(codes, list) or not codes or not all(isinstance(c, str) and c.strip() for c in codes):
            raise CriticalLabsError(f"limits.{name}.loinc: a LOINC code or a list of them")
        row = replace(row, loinc=tuple(c.strip() for c in codes))
    if "unit" in data:
        unit = str(data["unit"] if data["unit"] is not None else "")
        if canonical(unit) is None and unit.lower() not in UNITLESS:
            raise CriticalLabsError(f"limits.{name}.unit: unknown unit {unit!r}")
        row = replace(row, unit=unit)
    for key in ("low", "high", "molar_mass"):
        if key in data:
            row = replace(row, **{key: _number(name, key, data[key])})
    if not row.loinc:
        raise CriticalLabsError(f"limits.{name}: a new entry needs loinc")
    if row.low is None and row.high is None:
        raise CriticalLabsError(f"limits.{name}: needs low or high (null drops the entry)")
    return row


def load_table(path: Path | None) -> CriticalTable:
    """The default table, with a site's YAML file over it when `path` is set. Format:

        limits:
          potassium: {low: 3.0}                 # change one limit of a default entry
          ammonia: {loinc: [1841-2], unit: umol/L, high: 100}   # a new entry
          pco2: null                            # drop an entry
        flags: [HH, LL, AA]                     # replaces the default critical flags
    """
    if path is None:
        return DEFAULT_TABLE
    try:
        data = read_yaml(path) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CriticalLabsError(f"{path}: {exc}") from None
    if not isinstance(data, Mapping) or set(data) - {"limits", "flags"}:
        raise CriticalLabsError(f"{path}: a mapping with 'limits' and/or 'flags'")
    rows = {row.name: row for row in DEFAULT_LIMITS}
    overrides = data.get("limits") or {}
    if not isinstance(overrides, Mapping):
        raise CriticalLabsError("limits: a mapping of entry name -> limits")
    for name, entry in overrides.items():
        if entry is None:
            rows.pop(str(name), None)
        else:
            rows[str(name)] = _row(str(name), entry, rows.get(str(name)))
    flags = DEFAULT_FLAGS
    if "flags" in data:
        if not isinstance(data["flags"], list) or not all(isinstance(f, str) for f in data["flags"]):
            raise CriticalLabsError("flags: a list of interpretation codes")
        flags = frozenset(f.strip().upper() for f in data["flags"])
    return CriticalTable(tuple(rows.values()), flags)


def _fmt(number: float) -> str:
    return f"{number:g}"


def _crossed(row: CriticalLimit, value: float, unit: str, comparator: str | None) -> str | None:
    """The limit `value` crosses, or None. A value with a unit of another kind is not compared; one with
    no unit, or a spelling not known here, is read in the table's unit."""
    if row.unit.lower() not in UNITLESS and canonical(unit) is not None:
        try:
            value = round(convert(value, unit, row.unit, molar_mass=row.molar_mass), 6)
        except UnknownUnit:
            return None
    # "<0.5" cannot be above a high limit, nor ">30" below a low one
    if row.low is not None and value < row.low and comparator not in (">", ">="):
        return f"< {_fmt(row.low)} {row.unit}"
    if row.high is not None and value > row.high and comparator not in ("<", "<="):
        return f"> {_fmt(row.high)} {row.unit}"
    return None


def _critical_flag(obs: Mapping[str, Any], flags: frozenset[str]) -> str | None:
    for concept in obs.get("interpretation") or []:
        for coding in concept.get("coding", []):
            code = (coding.get("code") or "").strip().upper()
            if code in flags:
                return code
        text = (concept.get("text") or "").strip().upper()
        if text in flags:
            return text
    return None


def _name(obs: Mapping[str, Any], row: CriticalLimit | None) -> str:
    if row is not None:
        return row.name
    code = obs.get("code") or {}
    codings = code.get("coding", [])
    return code.get("text") or next((c.get("display") or c.get("code") for c in codings if c.get("display") or c.get("code")), "") or "unknown"


def critical_findings(bundle: Mapping[str, Any], table: CriticalTable = DEFAULT_TABLE) -> list[CriticalFinding]:
    """One finding per Observation of the Bundle (or a single Observation) whose value crosses a limit
    of the table, or that the laboratory flagged critical; Bundle order."""
    rows = table.by_loinc()
    found = []
    for obs in observations(bundle):
        loinc = loinc_code(obs, rows)
        row = rows.get(loinc) if loinc else None
        quantity = obs.get("valueQuantity") or {}
        value: float | str | None = quantity.get("value")
        unit = quantity.get("code") or quantity.get("unit")
        limit = None
        if row is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            limit = _crossed(row, float(value), unit or "", quantity.get("comparator"))
        flag = _critical_flag(obs, table.flags)
        if limit is None and flag is None:
            continue
        if value is None:
            value = obs.get("valueString") or (obs.get("valueCodeableConcept") or {}).get("text")
        found.append(CriticalFinding(
            name=_name(obs, row), value=value, unit=unit, limit=limit,
            observed_at=obs.get("effectiveDateTime") or obs.get("issued"), source="limit" if limit else "flag",
            resource=f"Observation/{obs.get('id')}", flag=flag,
        ))
    return found
