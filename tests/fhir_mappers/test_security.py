"""ARV -> security labels and tags on the Patient or Encounter of its segment group."""

from fhir_mappers.security import access_restriction
from tests.fhir_mappers.segments import PID, PV1, mapped, of, seg

ARV_PATIENT = ("ARV|1|A|DEM|PAT|Access restricted to clinicians other than the consulting clinician|"
               "20211118103000+0215^20221118103000+0215|R^restricted^HL70952|NODSCLCD^no disclosure without consent^HL70953||R-77^FAC")
ARV_VISIT = "ARV|1|X|LOC|PHY|No disclosure of patient location|20211118103000+0215^20221118103000+0215"
RANGE = "http://hl7.org/fhir/uv/v2mappings/StructureDefinition/access-restriction-range"
V3 = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def test_access_restriction_labels():
    """ARV: 3 value (table 0717 in v3) carrying 6 its date range, 4 reason, 5 instructions as a display, 7 confidentiality
    (v3 Confidentiality), 8 handling, 10 instance id as a tag."""
    labels, tags = access_restriction(seg(ARV_PATIENT))
    assert labels == [
        {"system": V3, "code": "DEMO", "display": "all demographic information sensitivity",
         "extension": [{"url": RANGE, "valuePeriod": {"start": "2021-11-18T10:30:00+02:15", "end": "2022-11-18T10:30:00+02:15"}}]},
        {"system": V3, "code": "PRS", "display": "patient requested information sensitivity"},
        {"display": "Access restricted to clinicians other than the consulting clinician"},
        {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0953", "code": "NODSCLCD", "display": "no disclosure without consent"},
    ]
    assert tags == [{"code": "R-77", "system": "urn:clinstream:id:FAC"}]
    # a value the vocabulary does not name keeps its table 0717 code; a deleted restriction labels nothing
    assert access_restriction(seg("ARV|1|A|PSY^Psychiatric"))[0] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0717", "code": "PSY", "display": "Psychiatric"}]
    assert access_restriction(seg(ARV_VISIT.replace("|X|", "|D|"))) is None
    assert access_restriction(seg("ARV|1|A")) is None


def test_arv_labels_the_resource_of_its_group():
    """After PID (or PD1, NK1) the Patient, after PV1/PV2 the Encounter; none stays unmapped."""
    m = mapped(PID, ARV_PATIENT, "NK1|1|Doe^John|SPO", "ARV|2|A|LOC|PAT", PV1, "PV2|||R^Reason", ARV_VISIT)
    assert "ARV" not in m.unmapped_segments
    patient, encounter = of(m, "Patient")[0], of(m, "Encounter")[0]
    assert [c.get("code") for c in patient["meta"]["security"]] == ["DEMO", "PRS", None, "R", "NODSCLCD", "LOCIS"]
    assert patient["meta"]["tag"] == [{"code": "R-77", "system": "urn:clinstream:id:FAC"}]
    assert [c.get("code") for c in encounter["meta"]["security"]] == ["LOCIS", "PHY", None]
    assert encounter["meta"]["security"][0]["extension"][0]["valuePeriod"]["end"] == "2022-11-18T10:30:00+02:15"


def test_arv_with_nothing_to_label_stays_unmapped():
    """A deleted restriction, one after a segment outside the patient and visit groups, or after a second patient's PID."""
    assert mapped(PID, ARV_VISIT.replace("|X|", "|D|")).unmapped_segments == ["ARV"]
    assert mapped(PID, "ORC|NW|P1", ARV_VISIT, kind="ORM^O01^ORM_O01").unmapped_segments == ["ARV"]
    m = mapped(PID, "PID|2||999^^^FAC^MR||Roe^Rick", ARV_PATIENT, kind="ADT^A17^ADT_A17")
    assert m.unmapped_segments == ["PID", "ARV"] and "meta" not in of(m, "Patient")[0]
