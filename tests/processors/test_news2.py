"""NEWS2 against the RCP 2017 chart: every band boundary of both SpO2 scales and every other parameter, the
red score, response bands, missing inputs, and monotonicity (Hypothesis)."""

import pytest
from hypothesis import given, settings, strategies as st

from processors.news2 import INPUTS, clinical_response, news2

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


def spo2_points(value, on_oxygen, scale):
    return news2({**NORMAL, "spo2": value, "on_oxygen": on_oxygen}, scale=scale).components["spo2"]


@pytest.mark.parametrize("value,points", [(70, 3), (83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 0), (96, 0), (97, 0), (100, 0)])
def test_spo2_scale2_on_air(value, points):
    """SpO2 scale 2 on air: <=83:3, 84-85:2, 86-87:1, 88-92:0, >=93 on air:0."""
    assert spo2_points(value, False, 2) == points


@pytest.mark.parametrize("value,points", [(83, 3), (84, 2), (85, 2), (86, 1), (87, 1), (88, 0), (92, 0), (93, 1), (94, 1), (95, 2), (96, 2), (97, 3), (100, 3)])
def test_spo2_scale2_on_oxygen(value, points):
    """SpO2 scale 2 on oxygen: 88-92:0, 93-94:1, 95-96:2, >=97:3 (too much oxygen), the low bands as on air."""
    assert spo2_points(value, True, 2) == points


@pytest.mark.parametrize("value", [85, 90, 93, 97])
def test_scale1_ignores_oxygen_for_spo2(value):
    """On scale 1 the SpO2 points do not depend on oxygen; oxygen scores its own 2."""
    assert spo2_points(value, True, 1) == spo2_points(value, False, 1)


def test_scale2_without_oxygen_input_counts_as_air_and_reports_it():
    """Scale 2 with on_oxygen missing scores a high SpO2 as on air and lists on_oxygen as missing."""
    score = news2({"spo2": 97}, scale=2)
    assert score.components == {"spo2": 0} and "on_oxygen" in score.missing and score.scale == 2


def test_scale2_high_spo2_on_oxygen_is_a_red_score():
    """SpO2 >= 97 % on oxygen on scale 2 scores 3, a red score (with oxygen's 2 the total is 5: medium)."""
    score = news2({**NORMAL, "spo2": 98, "on_oxygen": True}, scale=2)
    assert (score.components["spo2"], score.total, score.red_score, score.band) == (3, 5, True, "medium")


def test_unknown_scale_is_refused():
    """Only scales 1 and 2 exist."""
    with pytest.raises(ValueError):
        news2(NORMAL, scale=3)


@pytest.mark.parametrize("name,value,points", [
    ("respiratory_rate", 20.4, 0), ("respiratory_rate", 20.5, 2), ("systolic_bp", 90.4, 3), ("systolic_bp", 90.5, 2),
    ("heart_rate", 90.4, 0), ("heart_rate", 90.5, 1), ("spo2", 95.5, 0), ("temperature_c", 38.04, 0), ("temperature_c", 38.05, 1),
])
def test_values_between_bands_read_to_the_chart_precision(name, value, points):
    """Values between two whole-number bands are read to the nearest whole number (temperature to 0.1)."""
    assert score_of(name, value) == points


@pytest.mark.parametrize("inputs,total,band,red", [
    ({}, 0, "low", False),
    ({"respiratory_rate": 21, "heart_rate": 91, "temperature_c": 38.1}, 4, "low", False),  # 2 + 1 + 1
    ({"consciousness": "C"}, 3, "low-medium", True),
    ({"consciousness": "V", "heart_rate": 91}, 4, "low-medium", True),
    ({"respiratory_rate": 21, "heart_rate": 111, "temperature_c": 38.1}, 5, "medium", False),  # 2 + 2 + 1
    ({"consciousness": "P", "respiratory_rate": 21}, 5, "medium", True),
    ({"respiratory_rate": 21, "heart_rate": 111, "systolic_bp": 105, "temperature_c": 38.1}, 6, "medium", False),
    ({"respiratory_rate": 21, "heart_rate": 111, "systolic_bp": 100}, 6, "medium", False),
    ({"respiratory_rate": 21, "heart_rate": 111, "systolic_bp": 100, "temperature_c": 38.1}, 7, "high", False),
    ({"respiratory_rate": 25, "on_oxygen": True, "heart_rate": 111}, 7, "high", True),
])
def test_response_band_boundaries(inputs, total, band, red):
    """RCP 2017: 0-4 low; a 3 in any single parameter with total <= 4 low-medium; 5-6 medium; >= 7 high."""
    score = news2({**NORMAL, **inputs})
    assert (score.total, score.band, score.red_score) == (total, band, red)


def test_clinical_response_follows_band_and_zero_total():
    """Score 0 asks 12-hourly monitoring, 1-4 4-6-hourly, red score and medium hourly, high continuous."""
    assert "12-hourly" in clinical_response(0, "low") and "4-6-hourly" in clinical_response(3, "low")
    assert "hourly" in clinical_response(3, "low-medium") and "urgent" in clinical_response(5, "medium")
    assert "continuous" in clinical_response(9, "high")


# centre of each numeric parameter's 0-point range: moving away from it never scores fewer points
CENTRES = {"respiratory_rate": 16, "systolic_bp": 165, "heart_rate": 70.5, "temperature_c": 37.05}


def worsen(name, value, step, scale):
    if name == "on_oxygen":
        return True
    if name == "consciousness":
        return value if value != "A" else "V"
    if name == "spo2":
        centre = 90 if scale == 2 else 1000  # scale 1: lower is worse; scale 2: away from 88-92
        return value - step if value < centre else value + step
    return value - step if value < CENTRES[name] else value + step


@pytest.mark.parametrize("name", INPUTS)
@pytest.mark.parametrize("scale", [1, 2])
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    inputs=st.fixed_dictionaries({
        # uniform draws over each chart's span (Hypothesis's integers lean to the ends), steps of a few units
        "respiratory_rate": st.sampled_from(range(0, 41)), "spo2": st.sampled_from(range(75, 101)), "on_oxygen": st.booleans(),
        "systolic_bp": st.sampled_from(range(60, 251)), "heart_rate": st.sampled_from(range(25, 161)),
        "consciousness": st.sampled_from("ACVPU"), "temperature_c": st.sampled_from([t / 10 for t in range(330, 421)]),
    }),
    step=st.one_of(st.integers(0, 10), st.floats(0, 40)),
)
def test_property_worsening_one_input_never_lowers_total(inputs, name, step, scale):
    """Hypothesis: moving any one input further from normal (or onto oxygen, or off Alert) never lowers NEWS2."""
    worse = {**inputs, name: worsen(name, inputs[name], step, scale)}
    assert news2(worse, scale=scale).total >= news2(inputs, scale=scale).total
