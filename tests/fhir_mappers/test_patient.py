"""PID fields beyond identity: alternate ids, SSN, driver's license, marital status, language, multiple birth; DB1 disability."""

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


DB1 = "DB1|1|PT|DB123^4^M11^t&1.3.6.1.4.1.44750.1.2.2&ISO^MR^UH^19241011^19241012~12345^^^FAC&2.16.840.1.1&ISO^MR|Y|20210830|20210930|20211015|20210829"


def test_disability_completes_the_patient():
    """DB1 (PT: the patient's own) -> Patient: 3 identifiers (not repeated; assigner from CX-4), 4 indicator, 5/6 period,
    7/8 return-to-work and unable-to-work dates in one extension; the segment is no longer unmapped."""
    m = mapped(PID, "PV1|1|I", DB1)
    patient = of(m, "Patient")[0]
    assert m.unmapped_segments == []
    values = [i["value"] for i in patient["identifier"]]
    assert values.count("12345") == 1 and "DB123" in values
    extra = next(i for i in patient["identifier"] if i["value"] == "DB123")
    assert extra["system"] == "urn:oid:1.3.6.1.4.1.44750.1.2.2" and extra["type"]["coding"][0]["code"] == "MR"
    assert extra["period"] == {"start": "1924-10-11", "end": "1924-10-12"}
    assigner = next(e["resource"] for e in m.bundle["entry"] if e["fullUrl"] == extra["assigner"]["reference"])
    assert assigner["resourceType"] == "Organization"
    [ext] = [x for x in patient["extension"] if x["url"] == "urn:clinstream:extension:disability"]
    assert ext["extension"] == [{"url": "indicator", "valueBoolean": True},
                                {"url": "period", "valuePeriod": {"start": "2021-08-30", "end": "2021-09-30"}},
                                {"url": "returnToWork", "valueDate": "2021-10-15"}, {"url": "unableToWork", "valueDate": "2021-08-29"}]


def test_disability_of_someone_else_or_another_patient_stays_unmapped():
    """DB1-2 GT/IN/AP is the guarantor's, an insured's or an associated party's: not the Patient's. A DB1 after a
    second PID (BAR^P02 carries several patients) belongs to that patient, which is not mapped."""
    m = mapped(PID, "DB1|1|GT|G-1|Y|20210830")
    assert m.unmapped_segments == ["DB1"] and "G-1" not in [i["value"] for i in of(m, "Patient")[0]["identifier"]]
    m = mapped(PID, "DB1|1|PT||N", "PID|2||999^^^FAC^MR||Roe^Rick", "DB1|1|PT|R-7|Y", kind="BAR^P02^BAR_P02")
    patient = of(m, "Patient")[0]
    assert m.unmapped_segments == ["PID", "DB1"] and "R-7" not in [i["value"] for i in patient["identifier"]]
    assert patient["extension"][-1] == {"url": "urn:clinstream:extension:disability", "extension": [{"url": "indicator", "valueBoolean": False}]}
    assert mapped(PID, "DB1|1|PT").unmapped_segments == ["DB1"]  # says nothing


def pid_with(**fields: str) -> str:
    """A PID with the given fields (f6="...") set: the rest as in a minimal one."""
    parts = ["PID", "1", "", "12345^^^FAC^MR", "", "Doe^Jane", "", "19700412", "F"] + [""] * 32
    for name, value in fields.items():
        parts[int(name[1:])] = value
    return "|".join(parts).rstrip("|")


EXT = "http://hl7.org/fhir/StructureDefinition/"
US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"


def test_pid_extensions_follow_the_guide():
    """6 mother's maiden name, 17 religion, 23 birth place, 26/39 citizenship, 28 nationality, 35/36 species and breed."""
    m = mapped(pid_with(f6="Smith^Angela", f17="1013^Christian^HL70006", f23="St. Francis Hospital", f26="US^United States^ISO3166_1",
                        f28="CA^Canada^ISO3166_1", f35="125097000^Goat^SCT", f36="4880003^Beagle^SCT", f39="TR1^Tribe^L"))
    assert m.unmapped_fields == []
    ext = of(m, "Patient")[0]["extension"]
    by_url: dict = {}
    for e in ext:
        by_url.setdefault(e["url"], []).append(e)
    assert by_url[EXT + "patient-mothersMaidenName"] == [{"url": EXT + "patient-mothersMaidenName", "valueString": "Smith"}]
    assert by_url[EXT + "patient-religion"][0]["valueCodeableConcept"]["coding"][0]["code"] == "1013"
    assert by_url[EXT + "patient-birthPlace"][0]["valueAddress"] == {"text": "St. Francis Hospital"}
    assert [e["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] for e in by_url[EXT + "patient-citizenship"]] == ["US", "TR1"]
    assert by_url[EXT + "patient-nationality"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "CA"
    animal = by_url[EXT + "patient-animal"][0]["extension"]
    assert [(p["url"], p["valueCodeableConcept"]["coding"][0]["code"]) for p in animal] == [("species", "125097000"), ("breed", "4880003")]


def test_race_and_ethnicity_are_us_core_extensions():
    """CDC codes (table 0005, 0189) become OMB categories or detailed codings, always with the text US Core requires;
    the old letters of table 0189 stand for their CDC codes; a local code keeps only its text."""
    patient = of(mapped(pid_with(f10="2106-3^White^HL70005~2029-7^Asian Indian^CDCREC~W^Whiteish^L", f22="H^Hispanic^HL70189")), "Patient")[0]
    race, ethnicity = patient["extension"]
    assert race["url"] == US_CORE + "us-core-race"
    assert race["extension"] == [
        {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"}},
        {"url": "detailed", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2029-7", "display": "Asian Indian"}},
        {"url": "text", "valueString": "White, Asian Indian, Whiteish"}]
    assert ethnicity["url"] == US_CORE + "us-core-ethnicity"
    assert ethnicity["extension"][0]["valueCoding"]["code"] == "2135-2"


def test_other_pid_fields_telecom_alias_county_and_death_indicator():
    """PID-40 phones (the same number in PID-13 once), PID-9 alias names, PID-12 county as the address's district, PID-30."""
    m = mapped(pid_with(f9="Roe^Janet", f11="1 Oak St^^Springfield^IL^62701", f12="SANGAMON", f13="^PRN^PH^^1^555^1234567",
                        f30="N", f40="^PRN^PH^^1^555^1234567~^WPN^PH^^1^555^7654321"))
    patient = of(m, "Patient")[0]
    assert [n["family"] for n in patient["name"]] == ["Doe", "Roe"]
    assert patient["address"][0]["district"] == "SANGAMON"
    assert [t["use"] for t in patient["telecom"]] == ["home", "work"]
    assert patient["deceasedBoolean"] is False
    assert m.unmapped_fields == []
