"""qSOFA (Sepsis-3): each criterion's boundary, positivity, missing inputs, monotonicity (Hypothesis)."""

import pytest
from hypothesis import given, settings, strategies as st

from processors.qsofa import INPUTS, qsofa

NORMAL = {"respiratory_rate": 16, "systolic_bp": 125, "consciousness": "A"}


@pytest.mark.parametrize("value,points", [(21, 0), (21.9, 0), (22, 1), (30, 1)])
def test_respiratory_rate_boundary(value, points):
    """Respiratory rate >= 22/min scores 1."""
    assert qsofa({**NORMAL, "respiratory_rate": value}).components["respiratory_rate"] == points


@pytest.mark.parametrize("value,points", [(80, 1), (100, 1), (100.1, 0), (101, 0)])
def test_systolic_boundary(value, points):
    """Systolic pressure <= 100 mm[Hg] scores 1."""
    assert qsofa({**NORMAL, "systolic_bp": value}).components["systolic_bp"] == points


@pytest.mark.parametrize("value,points", [("A", 0), ("a", 0), ("C", 1), ("V", 1), ("P", 1), ("U", 1)])
def test_altered_mentation(value, points):
    """Anything but Alert is altered mentation (1 point)."""
    assert qsofa({**NORMAL, "consciousness": value}).components["consciousness"] == points


@pytest.mark.parametrize("inputs,total,positive", [
    (NORMAL, 0, False),
    ({**NORMAL, "respiratory_rate": 22}, 1, False),
    ({**NORMAL, "respiratory_rate": 22, "systolic_bp": 100}, 2, True),
    ({"respiratory_rate": 24, "systolic_bp": 90, "consciousness": "V"}, 3, True),
])
def test_total_and_positive(inputs, total, positive):
    """The total counts criteria met; qSOFA is positive at 2 or more."""
    score = qsofa(inputs)
    assert (score.total, score.positive) == (total, positive)


def test_missing_inputs_reported():
    """Absent inputs are listed, never counted as normal silently; nothing at all gives None."""
    score = qsofa({"respiratory_rate": 25})
    assert score.missing == ["systolic_bp", "consciousness"] and score.total == 1
    assert qsofa({}) is None


@pytest.mark.parametrize("name", INPUTS)
@settings(max_examples=200, derandomize=True, database=None, deadline=None)
@given(
    inputs=st.fixed_dictionaries({"respiratory_rate": st.integers(0, 60), "systolic_bp": st.integers(40, 250),
                                  "consciousness": st.sampled_from("ACVPU")}),
    step=st.floats(0, 60),
)
def test_property_worsening_one_input_never_lowers_total(inputs, name, step):
    """Hypothesis: a faster breathing rate, a lower systolic pressure or losing Alert never lowers qSOFA."""
    worse = {"respiratory_rate": inputs["respiratory_rate"] + step, "systolic_bp": inputs["systolic_bp"] - step,
             "consciousness": "V" if inputs["consciousness"] == "A" else inputs["consciousness"]}[name]
    assert qsofa({**inputs, name: worse}).total >= qsofa(inputs).total
