"""Unit conversion: UCUM codes and feed spellings for temperature, pressure, counts, concentrations."""

import pytest

from processors.units import UnknownUnit, canonical, convert, is_unit_of


@pytest.mark.parametrize("unit", ["[degF]", "degF", "°F", "F", "deg F", "Fahrenheit"])
def test_fahrenheit_spellings_convert_to_celsius(unit):
    """98.6 °F is 37 °C whatever the spelling."""
    assert convert(98.6, unit, "Cel") == pytest.approx(37.0)


def test_temperature_both_ways_and_kelvin():
    """Cel -> [degF] and K -> Cel; Celsius spellings are Cel."""
    assert convert(100, "Cel", "[degF]") == pytest.approx(212)
    assert convert(310.15, "K", "Cel") == pytest.approx(37.0)
    assert canonical("°C") == canonical("degC") == canonical("cel") == "Cel"


def test_kpa_and_mmhg():
    """1 kPa = 7.50062 mm[Hg]; 4.3 kPa is the SIRS PaCO2 threshold, about 32 mm[Hg]."""
    assert convert(1, "kPa", "mm[Hg]") == pytest.approx(7.50062, abs=1e-5)
    assert convert(4.3, "kPa", "mmHg") == pytest.approx(32.25, abs=0.01)
    assert convert(40, "mm Hg", "kPa") == pytest.approx(5.333, abs=1e-3)
    assert canonical("torr") == "mm[Hg]"


@pytest.mark.parametrize("value,unit", [(8.0, "10*3/uL"), (8.0, "10*9/L"), (8.0, "x10^9/L"), (8.0, "K/uL"), (8000, "/mm3"),
                                        (8000, "cells/uL"), (8.0, "G/L")])
def test_cell_counts_are_one_quantity(value, unit):
    """10^3/uL, 10^9/L, G/L and 10^3 cells/mm3 are the same count; cells/uL is a thousandth."""
    assert convert(value, unit, "10*9/L") == pytest.approx(8.0)


def test_giga_per_litre_is_not_grams_per_litre():
    """Case matters for G/L (a count) against g/L (a mass concentration)."""
    assert canonical("G/L") == "10*9/L" and canonical("g/L") == "g/L"
    with pytest.raises(UnknownUnit):
        convert(150, "g/L", "10*9/L")


def test_glucose_mass_and_substance():
    """Glucose: 180.16 mg/dL is 10 mmol/L; 450 mg/dL is about 25 mmol/L; needs the molar mass."""
    assert convert(180.16, "mg/dL", "mmol/L", molar_mass=180.16) == pytest.approx(10.0)
    assert convert(450, "mg/dl", "mmol/L", molar_mass=180.16) == pytest.approx(24.98, abs=0.01)
    assert convert(2.8, "mmol/L", "mg/dL", molar_mass=180.16) == pytest.approx(50.4, abs=0.1)
    with pytest.raises(UnknownUnit):
        convert(100, "mg/dL", "mmol/L")


def test_lactate_and_haemoglobin():
    """Lactate 36 mg/dL is 4.0 mmol/L; haemoglobin 7 g/dL is 70 g/L and 4.3 mmol/L (per haem) about 69 g/L."""
    assert convert(36, "mg/dL", "mmol/L", molar_mass=90.08) == pytest.approx(4.0, abs=0.01)
    assert convert(7, "g/dL", "g/L") == pytest.approx(70)
    assert convert(4.3, "mmol/L", "g/L", molar_mass=16114) == pytest.approx(69.3, abs=0.1)


def test_mass_concentrations_and_milliequivalents():
    """ng/mL = ug/L = 1000 ng/L; pg/mL = ng/L; mEq/L = mmol/L for monovalent ions."""
    assert convert(0.05, "ng/mL", "ng/L") == pytest.approx(50)
    assert convert(14, "pg/mL", "ng/L") == pytest.approx(14)
    assert convert(6.5, "mEq/L", "mmol/L") == pytest.approx(6.5)


def test_fraction_and_percent():
    """UCUM's dimensionless 1 is a fraction: 0.21 is 21 %."""
    assert convert(0.21, "1", "%") == pytest.approx(21)
    assert convert(40, "%", "1") == pytest.approx(0.4)


def test_unknown_units_raise():
    """An unknown spelling, or units of different kinds, raise UnknownUnit; is_unit_of says so without raising."""
    with pytest.raises(UnknownUnit):
        convert(1, "furlongs", "mm[Hg]")
    with pytest.raises(UnknownUnit):
        convert(1, "Cel", "kPa")
    assert canonical(None) is None and canonical("bpm") is None
    assert is_unit_of("kPa", "mm[Hg]") and not is_unit_of("mg/dL", "mm[Hg]")
