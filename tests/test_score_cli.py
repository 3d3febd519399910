"""`clinstream score news2|qsofa|sirs`: flat JSON and FHIR input on stdin, JSON out, errors without tracebacks."""

import json

import pytest
from typer.testing import CliRunner

from clinstream.cli import app

runner = CliRunner()
AT = "2024-05-01T10:00:00Z"


def score(which, payload, *args):
    result = runner.invoke(app, ["score", which, *args], input=payload if isinstance(payload, str) else json.dumps(payload))
    return result.exit_code, (json.loads(result.stdout) if result.exit_code == 0 else result.output)


def observation(code, value, unit=None, at=AT, oid=None):
    return {"resourceType": "Observation", "id": oid or code, "status": "final", "effectiveDateTime": at,
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "valueQuantity": {"value": value, **({"unit": unit, "code": unit} if unit else {})}}


def test_flat_news2_with_scale_2_and_missing_inputs():
    """Flat keys: NEWS2 total, components per input, band, red score, scale from spo2_scale; missing ones listed."""
    code, out = score("news2", {"respiratory_rate": 23, "spo2": 97, "on_oxygen": True, "spo2_scale": 2, "heart_rate": 95,
                                "consciousness": "a"})
    assert code == 0
    assert out["components"] == {"respiratory_rate": 2, "spo2": 3, "on_oxygen": 2, "heart_rate": 1, "consciousness": 0}
    assert (out["total"], out["band"], out["red_score"], out["scale"]) == (8, "high", True, 2)
    assert out["missing"] == ["systolic_bp", "temperature_c"] and out["inputs"]["consciousness"] == "A"


def test_flat_qsofa_and_sirs():
    """qSOFA and SIRS print total, components, positive; SIRS also its criteria."""
    code, q = score("qsofa", {"respiratory_rate": 24, "systolic_bp": 98, "consciousness": "A"})
    assert code == 0 and (q["total"], q["positive"], q["missing"]) == (2, True, [])
    code, s = score("sirs", {"temperature_c": 38.4, "heart_rate": 88, "paco2": 30, "wbc": 13.5, "bands_pct": None})
    assert code == 0 and (s["total"], s["positive"]) == (3, True)
    assert s["criteria"] == {"temperature": 1, "heart_rate": 0, "respiratory": 1, "white_cells": 1}
    assert s["missing"] == ["respiratory_rate", "bands_pct"]


def test_fhir_bundle_uses_the_workers_extraction():
    """A Bundle: LOINC codes, °F and kPa converted, the latest reading per input, GCS < 15 as not alert,
    and a coded J96.22 Condition selecting SpO2 scale 2."""
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in [
        observation("9279-1", 18, at="2024-05-01T08:00:00Z", oid="rr-old"), observation("9279-1", 26, oid="rr-new"),
        observation("59408-5", 91, "%"), observation("3151-8", 0, "L/min"), observation("8480-6", 118, "mm[Hg]"),
        observation("8867-4", 112, "/min"), observation("8310-5", 101.5, "[degF]"), observation("9269-2", 13),
        observation("2019-8", 4.0, "kPa"), observation("6690-2", 3.1, "10*3/uL"),
        {"resourceType": "Condition", "id": "c", "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "J96.22"}]}},
    ]]}
    code, n = score("news2", bundle)
    assert code == 0 and n["scale"] == 2 and n["inputs"]["temperature_c"] == 38.61 and n["inputs"]["respiratory_rate"] == 26
    assert n["components"] == {"respiratory_rate": 3, "spo2": 0, "on_oxygen": 0, "systolic_bp": 0, "heart_rate": 2,
                               "consciousness": 3, "temperature_c": 1}
    assert n["observed_at"]["respiratory_rate"] == AT and n["missing"] == []
    code, n1 = score("news2", bundle, "--spo2-scale", "1")
    assert n1["components"]["spo2"] == 3 and n1["scale"] == 1
    code, s = score("sirs", bundle)
    assert s["inputs"]["paco2"] == 30.0 and s["components"]["paco2"] == 1 and s["total"] == 4


def test_single_observation_and_nothing_scorable():
    """A bare Observation is scored; input with nothing scorable gives total null and every input missing."""
    code, q = score("qsofa", observation("8480-6", 95, "mm[Hg]"))
    assert code == 0 and q["components"] == {"systolic_bp": 1} and q["missing"] == ["respiratory_rate", "consciousness"]
    code, empty = score("news2", {})
    assert code == 0 and empty["total"] is None and len(empty["missing"]) == 7


@pytest.mark.parametrize("which,payload,args,message", [
    ("news2", {"pulse": 80}, [], "unknown keys"),
    ("news2", {"consciousness": "X"}, [], "consciousness"),
    ("news2", {"spo2_scale": 3}, [], "spo2_scale"),
    ("news2", {"on_oxygen": "yes"}, [], "on_oxygen"),
    ("sirs", {"wbc": "high"}, [], "wbc"),
    ("news2", "not json", [], "invalid input"),
    ("news2", {"resourceType": "Patient"}, [], "Bundle or Observation"),
    ("apache", {}, [], "news2, qsofa, sirs"),
    ("news2", {}, ["--spo2-scale", "3"], "1 or 2"),
])
def test_bad_input_exits_2_with_the_reason(which, payload, args, message):
    """Bad input or arguments exit 2 and say what is wrong."""
    code, out = score(which, payload, *args)
    assert code == 2 and message in out
