"""AL1 -> an active AllergyIntolerance; HL7nnnn coding systems -> the v2 table's code system URI."""

from fhir_mappers.datatypes import codeable, system_uri
from tests.fhir_mappers.segments import PID, by_ref, mapped, of


def test_listed_allergy_is_active():
    allergy = of(mapped(PID, "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives|20210824"), "AllergyIntolerance")[0]
    assert allergy["clinicalStatus"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}


def test_hl7_table_names_are_v2_code_systems():
    assert system_uri("HL70005") == "http://terminology.hl7.org/CodeSystem/v2-0005"
    assert codeable("N^Not Hispanic or Latino^HL70189")["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0189"
    assert system_uri("HL7nnnn").startswith("urn:clinstream:codesystem:")  # FHIR-Converter's placeholder is no table


ALTERNATE = "http://hl7.org/fhir/StructureDefinition/alternate-codes"


def test_allergy_follows_the_guides_al1_map():
    """AL1-2 category and type, AL1-4 criticality with the sender's code kept, AL1-6 onset, reactions repeated."""
    allergy = of(mapped(PID, "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives~Rash|20210824"), "AllergyIntolerance")[0]
    assert allergy["category"] == ["medication"] and allergy["type"] == "allergy"
    assert allergy["_category"][0]["extension"][0]["valueCodeableConcept"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0127", "code": "DA"}
    assert allergy["criticality"] == "high"
    assert allergy["_criticality"]["extension"][0] == {"url": ALTERNATE, "valueCodeableConcept": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0128", "code": "SV"}]}}
    assert allergy["onsetDateTime"] == "2021-08-24"
    assert [m["text"] for m in allergy["reaction"][0]["manifestation"]] == ["Hives", "Rash"]


def test_allergen_types_and_severities_without_a_fhir_equivalent():
    """The guide's AllergenType and AllergySeverity maps: an animal allergy is biologic, a miscellaneous allergy has
    no category, a contraindication is no allergy, and a moderate severity names no criticality but is kept."""
    animal = of(mapped(PID, "AL1|1|AA|CAT^Cat dander|MI"), "AllergyIntolerance")[0]
    assert animal["category"] == ["biologic"] and animal["criticality"] == "low"
    misc = of(mapped(PID, "AL1|1|MA|X^Latex|MO^Moderate^HL70128"), "AllergyIntolerance")[0]
    assert "category" not in misc and misc["type"] == "allergy" and "criticality" not in misc
    assert misc["_criticality"]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "MO"
    contraindication = of(mapped(PID, "AL1|1|MC|X^Latex"), "AllergyIntolerance")[0]
    assert not {"category", "type", "criticality", "_criticality"} & contraindication.keys()


IAM = ("IAM|1|FA^Food allergy^HL70127|12345^Peanut^L~|SV||A^Add^HL70206|56789^App^1.2.3^ISO||SE^Side effect||201805||202010051600|"
       "Doe^Rosa|SPO^Spouse||C^Confirmed||||||99^Smith^Adam^^^^^^NPI&2.16.840.1.113883.4.6&ISO|202010101600+0215||"
       "202010151600|91935009^Allergy to peanut^SCT")


def test_iam_is_an_allergy_with_its_own_status_reporter_and_recorder():
    """ADT^A60: the IAM's codes (IAM-27 a second coding), id, onset, verification, who reported it (a spouse: a
    RelatedPerson asserter) and who first recorded it (the recorder), its note and its IAR reaction."""
    m = mapped(PID, IAM, "NTE|1||Seen in clinic.||99^Smith^Adam|202010101600", "IAR|34567^Rash^L|MI^Mild|AL|Antihistamine",
               kind="ADT^A60^ADT_A60")
    assert m.unmapped_segments == []
    allergy = of(m, "AllergyIntolerance")[0]
    assert [c["code"] for c in allergy["code"]["coding"]] == ["12345", "91935009"]
    assert allergy["identifier"] == [{"value": "56789", "system": "urn:oid:1.2.3"}]
    assert allergy["category"] == ["food"] and allergy["criticality"] == "high"
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "active"
    assert allergy["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert allergy["onsetDateTime"] == "2018-05" and allergy["recordedDate"] == "2020-10-10T16:00:00+02:15"
    spouse = by_ref(m, allergy["asserter"])
    assert spouse["resourceType"] == "RelatedPerson" and spouse["name"][0]["family"] == "Doe"
    assert spouse["relationship"][0]["coding"][0]["code"] == "SPS"
    assert by_ref(m, allergy["recorder"])["identifier"][0]["value"] == "99"
    assert allergy["note"][0]["text"] == "Seen in clinic." and allergy["note"][0]["time"].startswith("2020-10-10T16:00")
    assert allergy["reaction"] == [{"manifestation": [{"coding": [{"code": "34567", "system": "urn:clinstream:codesystem:L",
                                                                    "display": "Rash"}], "text": "Rash"}],
                                    "severity": "mild", "note": [{"text": "Antihistamine"}]}]


def test_iam_withdrawn_inactivated_or_reported_by_the_patient():
    fields = IAM.split("|")
    deleted = "|".join(fields[:6] + ["D^Delete^HL70206"] + fields[7:])
    allergy = of(mapped(PID, deleted, kind="ADT^A60^ADT_A60"), "AllergyIntolerance")[0]
    assert allergy["verificationStatus"]["coding"][0]["code"] == "entered-in-error" and "clinicalStatus" not in allergy
    inactivated = "|".join(fields[:15] + ["SEL"] + fields[16:21] + ["", "20230101"] + fields[23:])
    allergy = of(mapped(PID, inactivated, kind="ADT^A60^ADT_A60"), "AllergyIntolerance")[0]
    assert allergy["clinicalStatus"]["coding"][0]["code"] == "inactive"
    assert by_ref(mapped(PID, inactivated, kind="ADT^A60^ADT_A60"), allergy["asserter"])["resourceType"] == "Patient"


def test_iar_without_an_allergy_stays_unmapped():
    assert mapped(PID, "IAR|34567^Rash^L|MI", kind="ADT^A60^ADT_A60").unmapped_segments == ["IAR"]
    assert mapped(PID, IAM, "IAR||MI", kind="ADT^A60^ADT_A60").unmapped_segments == ["IAR"]  # R4 needs a manifestation
