"""AL1 -> an active AllergyIntolerance; HL7nnnn coding systems -> the v2 table's code system URI."""

from fhir_mappers.datatypes import codeable, system_uri
from tests.fhir_mappers.segments import PID, mapped, of


def test_listed_allergy_is_active():
    allergy = of(mapped(PID, "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives|20210824"), "AllergyIntolerance")[0]
    assert allergy["clinicalStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}


def test_hl7_table_names_are_v2_code_systems():
    assert system_uri("HL70005") == "http://terminology.hl7.org/CodeSystem/v2-0005"
    assert codeable("N^Not Hispanic or Latino^HL70189")["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0189"
    assert system_uri("HL7nnnn").startswith("urn:clinstream:codesystem:")  # FHIR-Converter's placeholder is no table
