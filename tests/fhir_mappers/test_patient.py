"""PID fields beyond identity: alternate ids, SSN, driver's license, marital status, language, multiple birth."""

from fhir_mappers.patient import language_concept, marital_status
from tests.fhir_mappers.segments import mapped, of

PID = ("PID|1||12345^^^FAC&2.16.840.1.1&ISO^MR|ALT-9^^^OLDSYS|Doe^Jane||19700412|F|||||||ara^^HL70296^eng^English-us^HL70296|"
       "M^Married||A777^^^FAC^AN|123-45-6789|DLN-42^MI^20300131||||Y|2")


def test_patient_carries_the_other_pid_fields():
    patient = of(mapped(PID), "Patient")[0]
    by_value = {i["value"]: i for i in patient["identifier"]}
    assert patient["identifier"][0]["value"] == "12345"  # the MRN stays first: readers key the Patient by it
    assert "ALT-9" in by_value  # PID-4
    assert by_value["123-45-6789"]["system"] == "http://hl7.org/fhir/sid/us-ssn"
    assert by_value["123-45-6789"]["type"]["coding"][0]["code"] == "SS"
    licence = by_value["DLN-42"]
    assert licence["type"]["coding"][0]["code"] == "DL" and licence["period"] == {"end": "2030-01-31"}
    assert patient["maritalStatus"]["coding"] == [{"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "M"}]
    assert patient["communication"] == [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "ar"},
                                                                 {"system": "urn:ietf:bcp:47", "code": "en"}],
                                                      "text": "English-us"}, "preferred": True}]
    assert patient["multipleBirthInteger"] == 2


def test_marital_status_follows_the_guide_and_keeps_unknown_codes():
    assert marital_status("A")["coding"][0]["code"] == "L"  # separated
    assert marital_status("U")["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v3-NullFlavor", "code": "UNK"}
    assert marital_status("X^Other^LOCAL")["coding"][0]["code"] == "X"  # not table 0002: the sender's coding
    assert marital_status("") is None


def test_language_codes_become_bcp47():
    assert language_concept("spa")["coding"] == [{"system": "urn:ietf:bcp:47", "code": "es"}]
    assert language_concept("en^English")["coding"] == [{"system": "urn:ietf:bcp:47", "code": "en"}]
    assert language_concept("xyz^Klingon^LOCAL")["coding"][0]["code"] == "xyz"  # unknown: kept as sent
    assert language_concept("") is None


def test_twin_without_birth_order_is_a_boolean():
    pid = "PID|1||12345^^^FAC^MR||Doe^Jane||19700412|F||||||||||||||||N"
    assert of(mapped(pid), "Patient")[0]["multipleBirthBoolean"] is False
