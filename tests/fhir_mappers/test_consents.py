"""CON -> Consent."""

from fhir_mappers.consents import consent
from tests.fhir_mappers.segments import PATIENT, PID, PV1, mapped, of, seg

CON = "CON|1|001^Release of Information^HL70496|FORM-2|CN-7^HOSP|HIPAA Privacy Form|For patient privacy|||||A|20080131|20080131160000+0000|20080201|20090201||||||||||Smith^Robert|1"


def test_consent_segment():
    """CON: 2 type (category; 001 is about disclosure, so privacy scope), 4 form number, 5/6 policy text, 11 status,
    13 decision time, 14/15 provision period, 24/25 consenter (1: the patient)."""
    resource, related = consent(seg(CON), 2, "FAC|M1", PATIENT)
    assert resource["status"] == "active" and resource["patient"] == PATIENT and resource["performer"] == [PATIENT] and related == []
    assert resource["scope"]["coding"][0]["code"] == "patient-privacy"
    assert resource["category"][0]["coding"][0]["code"] == "001"
    assert resource["policyRule"] == {"text": "HIPAA Privacy Form\nFor patient privacy"}
    assert resource["identifier"] == [{"value": "CN-7", "system": "urn:clinstream:id:HOSP"}]
    assert resource["dateTime"] == "2008-01-31T16:00:00+00:00"
    assert resource["provision"] == {"period": {"start": "2008-02-01", "end": "2009-02-01"}}


def test_consent_given_for_the_patient_by_a_parent():
    """A consenter other than the patient is a RelatedPerson with the table 0548 relationship; a procedure consent is treatment."""
    resource, related = consent(seg("CON|1|002^Medical Procedure|||Consent to surgery||||||R|||||||||||||Doe^John|2"), 2, "k", PATIENT)
    assert resource["scope"]["coding"][0]["code"] == "treatment" and resource["status"] == "rejected"
    assert resource["performer"] == [{"reference": f"urn:uuid:{related[0]['id']}"}]
    assert related[0]["name"] == [{"family": "Doe", "given": ["John"]}] and related[0]["patient"] == PATIENT
    assert related[0]["relationship"][0]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0548", "code": "2"}


def test_consent_without_a_policy_stays_unmapped():
    """R4 requires a policy or policy rule: a CON naming none is kept verbatim."""
    assert consent(seg("CON|1|001||||||||||A"), 2, "k", PATIENT) == (None, [])
    m = mapped(PID, PV1, "CON|1|001||||||||||A", kind="MDM^T02^MDM_T02")
    assert m.unmapped_segments == ["CON"] and not of(m, "Consent")
    assert of(mapped(PID, PV1, CON, kind="MDM^T02^MDM_T02"), "Consent")[0]["status"] == "active"
