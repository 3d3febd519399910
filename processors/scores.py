"""NEWS2, qSOFA and SIRS behind one call, for `clinstream score`: inputs from a FHIR Bundle (read with the
worker's own functions) or from a flat JSON object, the result as a plain dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from processors import news2 as news2_module
from processors import qsofa as qsofa_module
from processors import sirs as sirs_module
from processors.news2 import clinical_response, news2
from processors.qsofa import qsofa
from processors.fhir_time import parse_time
from processors.sirs import sirs
from processors.vitals import scale2_condition, score_readings

SCORES = ("news2", "qsofa", "sirs")
NUMERIC = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "temperature_c", "wbc", "bands_pct", "paco2")
FLAT_KEYS = (*NUMERIC, "on_oxygen", "spo2_scale", "consciousness")


def flat_inputs(data: Mapping[str, Any]) -> tuple[dict[str, float | str | bool], int | None]:
    """(inputs, SpO2 scale or None) of a flat JSON object; null means missing. ValueError names a bad key."""
    unknown = sorted(set(data) - set(FLAT_KEYS))
    if unknown:
        raise ValueError(f"unknown keys {unknown}; the keys are {list(FLAT_KEYS)}")
    inputs: dict[str, float | str | bool] = {}
    for key in NUMERIC:
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{key}: a number, not {value!r}")
        inputs[key] = float(value)
    if data.get("on_oxygen") is not None:
        if not isinstance(data["on_oxygen"], bool):
            raise ValueError(f"on_oxygen: true or false, not {data['on_oxygen']!r}")
        inputs["on_oxygen"] = data["on_oxygen"]
    if data.get("consciousness") is not None:
        letter = str(data["consciousness"]).strip().upper()
        if letter not in ("A", "C", "V", "P", "U"):
            raise ValueError(f"consciousness: one of A, C, V, P, U, not {data['consciousness']!r}")
        inputs["consciousness"] = letter
    scale = data.get("spo2_scale")
    if scale is not None and (isinstance(scale, bool) or scale not in (1, 2)):
        raise ValueError(f"spo2_scale: 1 or 2, not {scale!r}")
    return inputs, scale


def bundle_inputs(bundle: Mapping[str, Any], scale2_icd10: Sequence[str]) -> tuple[dict[str, Any], dict[str, str], int | None]:
    """(inputs, observation time per input, 2 or None) of a Bundle or a single Observation: each input's
    latest reading (later in the Bundle wins a tie), scale 2 when a Condition is coded under `scale2_icd10`."""
    if bundle.get("resourceType") == "Observation":
        bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bundle}]}
    if bundle.get("resourceType") != "Bundle":
        raise ValueError(f"a FHIR Bundle or Observation, not {bundle.get('resourceType')!r}")
    latest: dict[str, Any] = {}
    for reading in score_readings(dict(bundle)):
        current = latest.get(reading.name)
        if current is None or reading.observed_at is None or current.observed_at is None \
                or parse_time(reading.observed_at) >= parse_time(current.observed_at):
            latest[reading.name] = reading
    times = {name: r.observed_at for name, r in latest.items() if r.observed_at}
    return {name: r.value for name, r in latest.items()}, times, 2 if scale2_condition(dict(bundle), scale2_icd10) else None


MODULES = {"news2": news2_module, "qsofa": qsofa_module, "sirs": sirs_module}


def score(which: str, inputs: Mapping[str, Any], *, scale: int = 1) -> dict[str, Any]:
    """The score's result as JSON-ready values: total (None with no input at all), components per input,
    missing inputs, the inputs used; band, red score, scale and response for NEWS2; positive (and criteria)
    for qSOFA and SIRS."""
    if which not in MODULES:
        raise ValueError(f"score is one of {list(SCORES)}, not {which!r}")
    result = _result(which, inputs, scale)
    result["inputs"] = {name: inputs[name] for name in MODULES[which].INPUTS if name in inputs}
    return result


def _result(which: str, inputs: Mapping[str, Any], scale: int) -> dict[str, Any]:
    if which == "news2":
        n = news2(inputs, scale=scale)
        if n is None:
            return {"score": which, "total": None, "band": None, "red_score": None, "scale": scale, "response": None,
                    "components": {}, "missing": list(news2_module.INPUTS)}
        return {"score": which, "total": n.total, "band": n.band, "red_score": n.red_score, "scale": n.scale,
                "response": clinical_response(n.total, n.band), "components": n.components, "missing": n.missing}
    if which == "qsofa":
        q = qsofa(inputs)
        if q is None:
            return {"score": which, "total": None, "positive": None, "components": {}, "missing": list(qsofa_module.INPUTS)}
        return {"score": which, "total": q.total, "positive": q.positive, "components": q.components, "missing": q.missing}
    s = sirs(inputs)
    if s is None:
        return {"score": which, "total": None, "positive": None, "components": {}, "criteria": {}, "missing": list(sirs_module.INPUTS)}
    return {"score": which, "total": s.total, "positive": s.positive, "components": s.components, "criteria": s.criteria,
            "missing": s.missing}
