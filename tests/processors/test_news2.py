"""NEWS2 against the RCP 2017 chart (SpO2 scale 1): every band boundary, bands, missing inputs."""

import pytest

from processors.news2 import INPUTS, news2

NORMAL = {"respiratory_rate": 16, "spo2": 97, "on_oxygen": False, "systolic_bp": 125, "heart_rate": 72,
          "consciousness": "A", "temperature_c": 36.8}


def score_of(name, value):
    return news2({**NORMAL, name: value}).components[name]


@pytest.mark.parametrize("value,points", [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)])
def test_respiratory_rate_bands(value, points):
    """Respiration rate: <=8:3, 9-11:1, 12-20:0, 21-24:2, >=25:3."""
    assert score_of("respiratory_rate", value) == points


@pytest.mark.parametrize("value,points", [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)])
def test_spo2_scale1_bands(value, points):
    """SpO2 scale 1: <=91:3, 92-93:2, 94-95:1, >=96:0."""
    assert score_of("spo2", value) == points


@pytest.mark.parametrize("value,points", [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)])
def test_systolic_bands(value, points):
    """Systolic pressure: <=90:3, 91-100:2, 101-110:1, 111-219:0, >=220:3."""
    assert score_of("systolic_bp", value) == points


@pytest.mark.parametrize("value,points", [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2), (131, 3)])
def test_pulse_bands(value, points):
    """Pulse: <=40:3, 41-50:1, 51-90:0, 91-110:1, 111-130:2, >=131:3."""
    assert score_of("heart_rate", value) == points


@pytest.mark.parametrize("value,points", [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1), (39.1, 2)])
def test_temperature_bands(value, points):
    """Temperature: <=35.0:3, 35.1-36.0:1, 36.1-38.0:0, 38.1-39.0:1, >=39.1:2."""
    assert score_of("temperature_c", value) == points


@pytest.mark.parametrize("value,points", [("A", 0), ("C", 3), ("V", 3), ("P", 3), ("U", 3)])
def test_consciousness(value, points):
    """ACVPU: Alert 0, new confusion / voice / pain / unresponsive 3."""
    assert score_of("consciousness", value) == points


def test_oxygen_scores_two():
    """Supplemental oxygen adds 2."""
    assert score_of("on_oxygen", True) == 2 and score_of("on_oxygen", False) == 0


def test_bands():
    """0-4 low, a single 3 makes low-medium, 5-6 medium, >=7 high."""
    assert news2(NORMAL).band == "low"
    assert news2({**NORMAL, "respiratory_rate": 25}).band == "low-medium"
    assert news2({**NORMAL, "respiratory_rate": 22, "heart_rate": 95, "temperature_c": 38.5, "spo2": 95}).band == "medium"
    high = news2({"respiratory_rate": 26, "spo2": 90, "on_oxygen": True, "systolic_bp": 95, "heart_rate": 125,
                  "consciousness": "V", "temperature_c": 39.3})
    assert (high.total, high.band, high.red_score) == (17, "high", True)


def test_missing_inputs_reported():
    """Missing inputs are listed, not scored as healthy silently; nothing at all gives None."""
    partial = news2({"respiratory_rate": 18, "heart_rate": 80})
    assert partial.missing == [n for n in INPUTS if n not in {"respiratory_rate", "heart_rate"}]
    assert news2({}) is None


def test_worse_component_never_lowers_total():
    """Monotone: worsening any one input away from normal never lowers the total."""
    ladders = {
        "respiratory_rate": [16, 21, 25, 30], "spo2": [97, 95, 93, 90], "systolic_bp": [125, 108, 98, 85],
        "heart_rate": [72, 95, 115, 140], "temperature_c": [37.0, 38.5, 39.5],
    }
    for name, values in ladders.items():
        totals = [news2({**NORMAL, name: v}).total for v in values]
        assert totals == sorted(totals), name
