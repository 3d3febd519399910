"""SIRS (ACCP/SCCM): each criterion's boundaries, criteria combining two inputs, WBC and bands, missing
inputs, monotonicity (Hypothesis)."""

import pytest
from hypothesis import given, settings, strategies as st

from processors.sirs import INPUTS, sirs

NORMAL = {"temperature_c": 37.0, "heart_rate": 72, "respiratory_rate": 16, "paco2": 40, "wbc": 8.0, "bands_pct": 3}


def met(name, value):
    return sirs({**NORMAL, name: value}).components[name]


@pytest.mark.parametrize("value,points", [(35.9, 1), (36.0, 0), (38.0, 0), (38.01, 1), (38.1, 1)])
def test_temperature_boundaries(value, points):
    """Temperature > 38 or < 36 °C meets the criterion; 36.0 and 38.0 do not."""
    assert met("temperature_c", value) == points


@pytest.mark.parametrize("value,points", [(90, 0), (90.5, 1), (91, 1)])
def test_heart_rate_boundary(value, points):
    """Heart rate > 90/min."""
    assert met("heart_rate", value) == points


@pytest.mark.parametrize("value,points", [(20, 0), (21, 1)])
def test_respiratory_rate_boundary(value, points):
    """Respiratory rate > 20/min."""
    assert met("respiratory_rate", value) == points


@pytest.mark.parametrize("value,points", [(31.9, 1), (32, 0)])
def test_paco2_boundary(value, points):
    """PaCO2 < 32 mm[Hg] (4.3 kPa)."""
    assert met("paco2", value) == points


@pytest.mark.parametrize("value,points", [(3.9, 1), (4.0, 0), (12.0, 0), (12.1, 1)])
def test_wbc_boundaries(value, points):
    """WBC > 12 or < 4 x10^9/L."""
    assert met("wbc", value) == points


@pytest.mark.parametrize("value,points", [(10, 0), (11, 1)])
def test_bands_boundary(value, points):
    """Band neutrophils > 10 %."""
    assert met("bands_pct", value) == points


def test_respiratory_criterion_counts_once():
    """RR > 20 and PaCO2 < 32 together meet one criterion, not two."""
    score = sirs({**NORMAL, "respiratory_rate": 28, "paco2": 28})
    assert score.criteria["respiratory"] == 1 and score.total == 1


def test_white_cell_criterion_from_bands_alone():
    """Bands > 10 % meet the white-cell criterion with a normal WBC."""
    score = sirs({**NORMAL, "bands_pct": 15})
    assert score.criteria["white_cells"] == 1 and score.total == 1


@pytest.mark.parametrize("inputs,total,positive", [
    (NORMAL, 0, False),
    ({**NORMAL, "temperature_c": 38.5}, 1, False),
    ({**NORMAL, "temperature_c": 38.5, "heart_rate": 110}, 2, True),
    ({"temperature_c": 35.2, "heart_rate": 120, "respiratory_rate": 26, "wbc": 2.5}, 4, True),
])
def test_total_and_positive(inputs, total, positive):
    """The total counts criteria met (0-4); SIRS at 2 or more."""
    score = sirs(inputs)
    assert (score.total, score.positive) == (total, positive)


def test_missing_inputs_reported():
    """Absent WBC and bands are listed as missing; a criterion with no input is not in `criteria`."""
    score = sirs({"temperature_c": 38.6, "heart_rate": 105})
    assert score.missing == ["respiratory_rate", "paco2", "wbc", "bands_pct"]
    assert score.criteria == {"temperature": 1, "heart_rate": 1} and score.positive
    assert sirs({}) is None


# direction of worsening: +1 up, -1 down, 0 away from the centre of the normal range
DIRECTIONS = {"temperature_c": (0, 37.0), "heart_rate": (1, None), "respiratory_rate": (1, None), "paco2": (-1, None),
              "wbc": (0, 8.0), "bands_pct": (1, None)}


@pytest.mark.parametrize("name", INPUTS)
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    inputs=st.fixed_dictionaries({
        "temperature_c": st.floats(30, 43), "heart_rate": st.integers(20, 220), "respiratory_rate": st.integers(0, 60),
        "paco2": st.floats(10, 100), "wbc": st.floats(0, 60), "bands_pct": st.floats(0, 60),
    }),
    step=st.floats(0, 50),
)
def test_property_worsening_one_input_never_lowers_total(inputs, name, step):
    """Hypothesis: moving any one input further from normal never lowers the SIRS count."""
    direction, centre = DIRECTIONS[name]
    value = inputs[name]
    if direction == 0:
        direction = -1 if value < centre else 1
    assert sirs({**inputs, name: value + direction * step}).total >= sirs(inputs).total
