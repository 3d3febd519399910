"""Score inputs out of FHIR Observations: LOINC codes, unit conversion, oxygen, consciousness (ACVPU, AVPU
SNOMED CT, GCS), and the coded diagnosis that selects NEWS2's SpO2 scale 2."""

import pytest

from processors.vitals import INPUT_CODES, scale2_condition, score_readings, vital_readings


def obs(code, *, status="final", oid="o1", **value):
    return {"resourceType": "Observation", "id": oid, "status": status, "effectiveDateTime": "2024-05-01T10:00:00Z",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]}, **value}


def read(*observations):
    return [(r.name, r.value) for r in score_readings({"resourceType": "Bundle", "entry": [{"resource": o} for o in observations]})]


def qty(value, unit=None):
    return {"valueQuantity": {"value": value, **({"unit": unit, "code": unit} if unit else {})}}


# the LOINC meaning of each code, checked against LOINC's names when the table was written
EXPECTED_CODES = {
    "9279-1": "respiratory_rate", "59408-5": "spo2", "2708-6": "spo2", "8480-6": "systolic_bp", "8867-4": "heart_rate",
    "8310-5": "temperature_c", "8331-1": "temperature_c", "3151-8": "on_oxygen", "3150-0": "on_oxygen", "19994-3": "on_oxygen",
    "67775-7": "consciousness", "80288-4": "consciousness", "9269-2": "consciousness", "6690-2": "wbc", "26464-8": "wbc",
    "764-1": "bands_pct", "26508-2": "bands_pct", "2019-8": "paco2",
}


def test_loinc_table_is_the_reviewed_one():
    """Every input code is one reviewed here (26507-4, an absolute band count, is deliberately not a percentage)."""
    assert INPUT_CODES == EXPECTED_CODES


def test_units_are_converted_to_each_inputs_own():
    """°F -> °C, kPa -> mm[Hg], cells/mm3 -> 10^9/L, a fraction SpO2 -> %."""
    assert read(obs("8310-5", **qty(101.3, "[degF]")), obs("2019-8", **qty(4.0, "kPa")), obs("6690-2", **qty(15600, "/mm3")),
                obs("59408-5", **qty(0.94, "1"))) == [("temperature_c", 38.5), ("paco2", 30.0), ("wbc", 15.6), ("spo2", 94.0)]


def test_unknown_unit_spelling_is_read_as_the_inputs_own_and_a_wrong_kind_is_skipped():
    """'bpm' or no unit: taken as sent; a WBC in mg/dL is not a count and is skipped."""
    assert read(obs("8867-4", **qty(88, "bpm")), obs("8480-6", **qty(120)), obs("6690-2", **qty(9, "mg/dL"))) == [
        ("heart_rate", 88.0), ("systolic_bp", 120.0)]


@pytest.mark.parametrize("code,value,on", [("3151-8", qty(0, "L/min"), False), ("3151-8", qty(2, "L/min"), True),
                                           ("3150-0", qty(21, "%"), False), ("3150-0", qty(28, "%"), True),
                                           ("3150-0", qty(0.21, "1"), False), ("19994-3", qty(0.4), True)])
def test_supplemental_oxygen_from_flow_or_fio2(code, value, on):
    """Oxygen flow > 0 or FiO2 above room air's 21 % (as a percentage or a fraction) is supplemental oxygen."""
    assert read(obs(code, **value)) == [("on_oxygen", on)]


@pytest.mark.parametrize("value,letter", [
    ({"valueCodeableConcept": {"coding": [{"system": "urn:x", "code": "V"}]}}, "V"),
    ({"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "450847001"}]}}, "P"),
    ({"valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA0000-0", "display": "Responds to voice"}]}}, "V"),
    ({"valueCodeableConcept": {"text": "New confusion"}}, "C"),
    ({"valueString": "Alert"}, "A"),
])
def test_acvpu_answers(value, letter):
    """ACVPU letters, AVPU SNOMED CT findings, displays and text all give the letter."""
    assert read(obs("67775-7", **value)) == [("consciousness", letter)]


@pytest.mark.parametrize("value,letter", [(qty(15), "A"), (qty(14), "C"), ({"valueInteger": 6}, "C")])
def test_gcs_below_15_is_not_alert(value, letter):
    """GCS 15 is Alert; below 15 reads as C, the mildest not-alert level (3 NEWS2 points, 1 qSOFA point)."""
    assert read(obs("9269-2", **value)) == [("consciousness", letter)]


def test_cancelled_and_uncoded_observations_are_skipped():
    """Cancelled or entered-in-error Observations and other codes give no reading."""
    assert read(obs("8867-4", status="cancelled", **qty(150)), obs("8867-4", status="entered-in-error", **qty(150)),
                obs("26507-4", **qty(1.2, "10*3/uL"))) == []


def condition(code, system="http://hl7.org/fhir/sid/icd-10-cm", verification="confirmed", clinical="active", **coding):
    return {"resource": {"resourceType": "Condition", "id": "c1",
                         "verificationStatus": {"coding": [{"code": verification}]},
                         "clinicalStatus": {"coding": [{"code": clinical}]},
                         "code": {"coding": [{"system": system, "code": code, **coding}]}}}


PREFIXES = ["J96.02", "J96.12", "J96.22", "J96.92"]


@pytest.mark.parametrize("entry,found", [
    (condition("J96.12"), "J96.12"),
    (condition("J9622"), "J9622"),  # HL7 feeds often drop the dot
    (condition("J96.01"), None),  # hypoxic failure: scale 1
    (condition("J96.02", verification="refuted"), None),
    (condition("J96.02", verification="entered-in-error"), None),
    (condition("J96.02", clinical="resolved"), None),
    (condition("J96.02", userSelected=False), None),  # the coder's guess from note text
    (condition("J96.02", system="http://snomed.info/sct"), None),
])
def test_scale2_condition(entry, found):
    """A clinician-coded, current hypercapnic respiratory failure selects scale 2; nothing else does."""
    assert scale2_condition({"resourceType": "Bundle", "entry": [entry]}, PREFIXES) == found


def test_scale2_prefixes_are_a_site_setting():
    """A site on ICD-10-GM sets its own codes (J96.01 type II there); no prefixes means scale 1 for all."""
    bundle = {"resourceType": "Bundle", "entry": [condition("J96.01", system="http://hl7.org/fhir/sid/icd-10")]}
    assert scale2_condition(bundle, ["J96.01"]) == "J96.01"
    assert scale2_condition(bundle, []) is None


def test_vital_readings_leave_the_laboratory_inputs_out():
    """vital_readings gives the NEWS2 inputs only; score_readings adds WBC, bands and PaCO2."""
    bundle = {"resourceType": "Bundle", "entry": [{"resource": obs("8867-4", **qty(80))}, {"resource": obs("6690-2", **qty(14, "10*9/L"))}]}
    assert [r.name for r in vital_readings(bundle)] == ["heart_rate"]
    assert [r.name for r in score_readings(bundle)] == ["heart_rate", "wbc"]
