"""Patient administration segments: NK1, GT1, IN1/IN2, PR1, MRG, PD1, PID-18/21 and MSH facilities to FHIR."""

from fhir_mappers.coverage import coverage
from fhir_mappers.procedures import procedure
from fhir_mappers.related import guarantor, next_of_kin, patient_contact, relationship
from tests.fhir_mappers.segments import PATIENT, PV1, by_ref, mapped, of, seg

PID = "PID|1||12345^^^FAC&2.16.840.1.1&ISO^MR||Doe^Jane||19700412|F||||||||||A777^^^FAC^AN|||Mom9^^^FAC^MR"


def test_next_of_kin_is_a_related_person():
    """NK1 -> RelatedPerson with name, v3 relationship, address, phone, identifier, sex, birth date and patient."""
    person, _ = next_of_kin(seg("NK1|1|Doe^John^Q|SPO^Spouse^HL70063|1 Oak St^^Springfield^IL^62701|^PRN^PH^^1^555^1234567|"
                                "|C|20200101|||||||M|19690302|||||||||||||||||E55^^^FAC^EI||||SSN-1"), 3, "FAC|M1", PATIENT)
    assert person["name"] == [{"family": "Doe", "given": ["John", "Q"]}]
    assert person["relationship"][0] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "SPS"}], "text": "Spouse"}
    assert person["relationship"][1]["coding"][0]["code"] == "C"
    assert person["address"][0]["city"] == "Springfield" and person["telecom"][0]["value"] == "+1 (555) 1234567"
    assert [i["value"] for i in person["identifier"]] == ["E55", "SSN-1"]
    assert person["gender"] == "male" and person["birthDate"] == "1969-03-02" and person["period"] == {"start": "2020-01-01"}
    assert person["patient"] == PATIENT


def test_next_of_kin_is_also_a_patient_contact():
    """NK1 -> Patient.contact (the guide's NK1[Patient]): NK1-3 and NK1-7 relationships, first name and address,
    NK1-5/6/40/41 telecom (the business phone work), gender, period and the NK1-13 employer, as next_of_kin names it."""
    nk1 = seg("NK1|1|Doe^John^Q~Dee^Johnny|SPO^Spouse^HL70063|1 Oak St^^Springfield^IL^62701~2 Elm St|^PRN^PH^^1^555^1234567|"
              "^^PH^^^555^7654321|C^Emergency Contact^HL70131|20200101|20201231||||Acme Corp^^AC1||M" + "|" * 25 + "^^^x@y.org")
    contact = patient_contact(nk1)
    assert contact["relationship"] == [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "SPS"}], "text": "Spouse"},
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C", "display": "Emergency Contact"}]}]
    assert contact["name"] == {"family": "Doe", "given": ["John", "Q"]} and contact["address"]["line"] == ["1 Oak St"]
    assert contact["telecom"] == [{"system": "phone", "value": "+1 (555) 1234567", "use": "home"},
                                  {"system": "phone", "value": "(555) 7654321", "use": "work"}, {"system": "email", "value": "x@y.org"}]
    assert contact["gender"] == "male" and contact["period"] == {"start": "2020-01-01", "end": "2020-12-31"}
    _, orgs = next_of_kin(nk1, 3, "FAC|M1", PATIENT)
    assert contact["organization"] == {"reference": f"urn:uuid:{orgs[0]['id']}"} and orgs[0]["name"] == "Acme Corp"
    assert patient_contact(seg("NK1|1||SPO|||||20200101")) is None  # pat-1: a contact must name someone or something


def test_adt_patient_has_its_next_of_kin_as_contacts():
    """In a whole message each NK1 is a RelatedPerson and a Patient.contact; the contact's organization is in the Bundle."""
    m = mapped(PID, "NK1|1|Doe^Mary|MTH^Mother", "NK1|2||EMP||||||||||Acme Corp", "NK1|3|||||||20200101", PV1)
    patient = of(m, "Patient")[0]
    assert [c.get("name", {}).get("family") for c in patient["contact"]] == ["Doe", None]
    assert patient["contact"][0]["relationship"][0]["coding"][0]["code"] == "MTH"
    assert by_ref(m, patient["contact"][1]["organization"])["name"] == "Acme Corp"
    assert len(of(m, "RelatedPerson")) == 4 and m.unmapped_segments == []  # the three NK1 and the PID-21 mother


def test_unknown_relationship_keeps_the_v2_code():
    """A table 0063 code without a v3 RoleCode equivalent is kept as sent, under the v2-0063 system."""
    assert relationship("WRD")["coding"] == [{"system": "http://terminology.hl7.org/CodeSystem/v2-0063", "code": "WRD"}]


def test_relationship_keeps_the_alternate_code():
    """NK1-3's alternate code (CWE-4) is a second coding, mapped the same way; a repeat of the first is not."""
    assert relationship("EMC^Emergency^HL70063^CHD")["coding"] == [
        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "ECON"},
        {"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "CHILD"}]
    assert len(relationship("SPO^Spouse^HL70063^SPO")["coding"]) == 1


def test_guarantor_self_person_or_organisation():
    """GT1-11 SEL makes the patient the guarantor; a named person is a RelatedPerson; GT1-21 alone an Organization."""
    assert guarantor(seg("GT1|1||Doe^Jane||||||||SEL"), 4, "k", PATIENT) == (PATIENT, [])
    party, found = guarantor(seg("GT1|1|G1^^^FAC|Roe^Rick|||||19600101|M||FTH"), 4, "k", PATIENT)
    assert found[0]["resourceType"] == "RelatedPerson" and party["reference"] == f"urn:uuid:{found[0]['id']}"
    assert found[0]["relationship"][0]["coding"][0]["code"] == "FTH" and found[0]["birthDate"] == "1960-01-01"
    party, found = guarantor(seg("GT1|1||||||||||||||||||||Acme Corp"), 4, "k", PATIENT)
    assert found == [{"resourceType": "Organization", "id": found[0]["id"], "name": "Acme Corp"}]


def test_insurance_is_a_coverage_with_its_payor():
    """IN1/IN2 -> Coverage: policy number, subscriber id, period, plan and group classes, relationship, payor Organization, insured."""
    in1 = seg("IN1|1|PLAN1^Gold Plan|INS9^^^&2.16.840.1.5&ISO|Acme Health|9 Pay St^^Austin^TX|||GRP7|Group Seven|||20250101|20251231|"
              "|HMO|Roe^Rick|SPO|19600101|1 Oak St^^Springfield|||||||||||||||||POL-42|||||||M||||||SUB-1")
    in2 = seg("IN2||123-45-6789||||||MCD-8")
    cover, related = coverage(in1, in2, 5, "k", PATIENT)
    assert cover["status"] == "active" and cover["beneficiary"] == PATIENT and cover["subscriberId"] == "SUB-1"
    assert [i["value"] for i in cover["identifier"]] == ["POL-42", "MCD-8"]
    assert cover["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert [(c["type"]["coding"][0]["code"], c["value"], c.get("name")) for c in cover["class"]] == [("plan", "PLAN1", "Gold Plan"), ("group", "GRP7", "Group Seven")]
    assert cover["relationship"]["coding"][0]["code"] == "spouse" and cover["type"]["coding"][0]["code"] == "HMO"
    payor = next(r for r in related if r["resourceType"] == "Organization")
    assert cover["payor"] == [{"reference": f"urn:uuid:{payor['id']}"}]
    assert payor["name"] == "Acme Health" and payor["identifier"][0] == {"value": "INS9", "system": "urn:oid:2.16.840.1.5"}
    insured = next(r for r in related if r["resourceType"] == "RelatedPerson")
    assert cover["subscriber"]["reference"] == f"urn:uuid:{insured['id']}" and insured["name"][0]["family"] == "Roe"
    assert {i["value"] for i in insured["identifier"]} == {"SUB-1", "123-45-6789"} and insured["gender"] == "male"


def test_self_insured_subscriber_is_the_patient():
    """IN1-17 SEL: the patient is the subscriber and no RelatedPerson is made."""
    cover, related = coverage(seg("IN1|1|P|I1|Acme|||||||||||||SEL"), None, 5, "k", PATIENT)
    assert cover["subscriber"] == PATIENT and cover["relationship"]["coding"][0]["code"] == "self"
    assert [r["resourceType"] for r in related] == ["Organization"]


def test_procedure():
    """PR1 -> Procedure: code with PR1-4 as text, performed time, status unknown (the guide's default), performers, identifier."""
    proc, related = procedure(seg("PR1|1||71045^Xray chest^C4|Chest X-ray one view|20191122103000+0100|D|||||9^Cutter^Sam|||"
                                  "|I10^Cough^I10C||||P-7||||||PARENT-1"), 2, "k", PATIENT, {"reference": "urn:uuid:e"})
    assert proc["code"]["coding"][0] == {"code": "71045", "system": "http://www.ama-assn.org/go/cpt", "display": "Xray chest"}
    assert proc["code"]["text"] == "Chest X-ray one view" and proc["status"] == "unknown"
    assert proc["performedDateTime"] == "2019-11-22T10:30:00+01:00" and proc["encounter"] == {"reference": "urn:uuid:e"}
    assert proc["identifier"] == [{"value": "P-7"}] and proc["reasonCode"][0]["coding"][0]["code"] == "I10"
    surgeon = next(r for r in related if r["resourceType"] == "Practitioner")
    assert proc["performer"] == [{"function": {"text": "Surgeon"}, "actor": {"reference": f"urn:uuid:{surgeon['id']}"}}]
    parent = next(r for r in related if r["resourceType"] == "Procedure")
    assert parent["identifier"] == [{"value": "PARENT-1"}] and proc["partOf"] == [{"reference": f"urn:uuid:{parent['id']}"}]


def test_adt_message_maps_the_administration_segments():
    """A whole ADT: NK1, GT1, IN1, PR1 and PD1 become resources, PID-18 an Account, PID-21 the mother; none stays unmapped."""
    m = mapped(PID, "PD1|||Clinic One^^C1|77^House^Greg", "NK1|1|Doe^Mary|MTH", PV1, "PR1|1||P1^Proc^C4||20250101",
               "GT1|1||Roe^Rick||||||||FTH||20250101|20251231", "IN1|1|PL|I1|Acme||||||||||||||SEL")
    assert m.unmapped_segments == []
    patient = of(m, "Patient")[0]
    assert by_ref(m, patient["identifier"][0]["assigner"])["identifier"] == [
        {"value": "FAC"}, {"value": "urn:oid:2.16.840.1.1", "system": "urn:ietf:rfc:3986",
                           "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0301", "code": "ISO"}]}}]
    clinic, doctor = (by_ref(m, g) for g in patient["generalPractitioner"])
    assert clinic["name"] == "Clinic One" and clinic["identifier"] == [{"value": "C1"}] and doctor["name"][0]["family"] == "House"
    account = of(m, "Account")[0]
    assert account["identifier"][0]["value"] == "A777" and account["subject"] == [{"reference": f"urn:uuid:{patient['id']}"}]
    assert by_ref(m, account["guarantor"][0]["party"])["name"][0]["family"] == "Roe"
    assert account["guarantor"][0]["period"] == {"start": "2025-01-01", "end": "2025-12-31"}
    assert account["coverage"] == [{"coverage": {"reference": f"urn:uuid:{of(m, 'Coverage')[0]['id']}"}}]
    relations = sorted(p["relationship"][0]["coding"][0]["code"] for p in of(m, "RelatedPerson"))
    assert relations == ["FTH", "MTH", "MTH"]  # the guarantor, NK1's mother and PID-21's mother identifier
    assert of(m, "Procedure")[0]["encounter"] == {"reference": f"urn:uuid:{of(m, 'Encounter')[0]['id']}"}


def test_merge_links_the_retired_record():
    """MRG-1 -> a retired Patient carrying the old identifier; the surviving Patient replaces it, and it is replaced-by."""
    m = mapped(PID, "MRG|OLD1^^^FAC^MR", kind="ADT^A40^ADT_A39")
    survivor, retired = of(m, "Patient")
    assert retired["identifier"][0]["value"] == "OLD1" and retired["active"] is False
    assert survivor["link"] == [{"other": {"reference": f"urn:uuid:{retired['id']}"}, "type": "replaces"}]
    assert retired["link"] == [{"other": {"reference": f"urn:uuid:{survivor['id']}"}, "type": "replaced-by"}]


def test_segments_of_a_second_patient_stay_unmapped():
    """An NK1 after a second PID belongs to that other patient: it is kept verbatim, not pinned on the first."""
    m = mapped(PID, "PID|2||999^^^FAC^MR||Other^Olga", "NK1|1|Other^Oscar|SPO", kind="ADT^A17^ADT_A17")
    assert m.unmapped_segments == ["PID", "NK1"] and not any(p.get("name") for p in of(m, "RelatedPerson"))


def test_message_header_sender_receiver_organizations():
    """MSH-4 and MSH-6 become Organizations referenced as MessageHeader.sender and destination.receiver."""
    m = mapped(PID)
    header = m.bundle["entry"][0]["resource"]
    sender, receiver = by_ref(m, header["sender"]), by_ref(m, header["destination"][0]["receiver"])
    assert [i["value"] for i in sender["identifier"]] == ["FAC", "urn:oid:1.2.3"]
    assert receiver["identifier"] == [{"value": "RFAC"}]


def test_the_retired_patient_gets_the_id_its_own_messages_gave_it():
    """MRG-1 lists an SS before the MR: the retired Patient is keyed by the MR, as a PID with those ids would be."""
    from fhir_mappers import hl7v2_to_fhir

    old = b"MSH|^~\\&|A|H|C|D|20260101||ADT^A01|M1|P|2.5\rPID|1||999-11-2222^^^SSA^SS~OLD1^^^H^MR||Doe^J\r"
    merge = (b"MSH|^~\\&|A|H|C|D|20260102||ADT^A40|M2|P|2.5\rPID|1||NEW1^^^H^MR||Doe^J\r"
             b"MRG|999-11-2222^^^SSA^SS~OLD1^^^H^MR\r")
    first_id = next(e["resource"]["id"] for e in hl7v2_to_fhir(old).bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    retired = [e["resource"] for e in hl7v2_to_fhir(merge).bundle["entry"]
               if e["resource"]["resourceType"] == "Patient" and e["resource"].get("active") is False]
    assert [r["id"] for r in retired] == [first_id]


def test_procedure_location_is_its_treating_unit():
    """PR1-23 (treating organizational unit, PL) -> Procedure.location, the innermost Location of its chain."""
    proc, related = procedure(seg("PR1|1||71045^Xray chest^C4||20191122103000+0100" + "|" * 18 + "OT^201"), 2, "k", PATIENT, None, "FAC")
    chain = [r for r in related if r["resourceType"] == "Location"]
    assert [loc["name"] for loc in chain] == ["OT", "201"] and proc["location"] == {"reference": f"urn:uuid:{chain[-1]['id']}"}
    assert "location" not in procedure(seg("PR1|1||71045^Xray chest^C4"), 2, "k", PATIENT, None)[0]


def test_next_of_kin_language():
    """NK1-20 primary language -> RelatedPerson.communication (the guide's NK1 map), BCP 47 as the patient's."""
    fields = ["NK1", "1", "Doe^John", "SPO"] + [""] * 16 + ["spa^Spanish^HL70296"]
    person, _ = next_of_kin(seg("|".join(fields)), 3, "FAC|M1", PATIENT)
    assert person["communication"] == [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es"}], "text": "Spanish"}}]
