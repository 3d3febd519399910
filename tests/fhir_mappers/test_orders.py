"""Orders, pharmacy, scheduling and problems: ORC/OBR/SPM, RXA/RXR, RXO/RXE/RXC/RXD, SCH/AIS/AIL/AIP, PRB."""

from fhir_mappers import hl7v2_to_fhir, validate_r4_bundle
from fhir_mappers.conditions import problem
from fhir_mappers.orders import request_status, specimen
from fhir_mappers.parse import Segment

MSH = "MSH|^~\\&|APP|FAC|CLINSTREAM|CLINSTREAM|20260101103000+0000||{kind}|M1|P|2.5.1"
PID = "PID|1||12345^^^FAC^MR||Doe^Jane||19700412|F"
PV1 = "PV1|1|O|CLINIC^1^^FAC||||||||||||||||V100^^^FAC^VN"
ORC = "ORC|NW|PL100^EHR|FI200^LAB||||||20260101100000+0000|||1001^Adams^Helen"
OBR = "OBR|1|PL100^EHR|FI200^LAB|24331-1^Lipid panel^LN|||20260101093000+0000"
OBX = "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|<200||||F"
SPM = "SPM|1|SP-1&EHR^SP-9&LAB||BLD^Whole blood|||||||||||||20260101091500+0000|20260101094500+0000||Y"


def seg(text: str) -> Segment:
    return Segment(text, "|")


def bundle(kind: str, *segments: str):
    mapped = hl7v2_to_fhir("\r".join([MSH.format(kind=kind), *segments]).encode())
    validate_r4_bundle(mapped.bundle)
    return mapped


def of(mapped, kind):
    return [e["resource"] for e in mapped.bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_order_to_service_request():
    """ORM: ORC+OBR make one ServiceRequest with placer/filler ids, status from ORC-1, code, authoredOn, subject, encounter."""
    m = bundle("ORM^O01^ORM_O01", PID, PV1, ORC, OBR)
    (request,) = of(m, "ServiceRequest")
    assert request["status"] == "active" and request["intent"] == "order"
    assert [(i["value"], i["type"]["coding"][0]["code"]) for i in request["identifier"]] == [("PL100", "PLAC"), ("FI200", "FILL")]
    assert request["code"]["coding"][0] == {"code": "24331-1", "system": "http://loinc.org", "display": "Lipid panel"}
    assert request["authoredOn"] == "2026-01-01T10:00:00+00:00"
    assert request["subject"]["reference"] == f"urn:uuid:{of(m, 'Patient')[0]['id']}"
    assert request["encounter"]["reference"] == f"urn:uuid:{of(m, 'Encounter')[0]['id']}"
    assert "ORC" not in m.unmapped_segments


def test_order_requester_is_role_of_practitioner():
    """ORC-12 becomes the requester: a PractitionerRole (OP) pointing at the Practitioner named in the XCN."""
    m = bundle("ORM^O01^ORM_O01", PID, ORC, OBR)
    (request,) = of(m, "ServiceRequest")
    (role,) = of(m, "PractitionerRole")
    assert request["requester"]["reference"] == f"urn:uuid:{role['id']}"
    doctor = next(p for p in of(m, "Practitioner") if f"urn:uuid:{p['id']}" == role["practitioner"]["reference"])
    assert doctor["name"][0]["family"] == "Adams" and role["code"][0]["coding"][0]["code"] == "OP"


def test_order_status_prefers_orc5():
    """ORC-5 order status wins over ORC-1: HD is on-hold, CM completed; an uninformative ORC-1 alone is unknown."""
    assert request_status(seg("ORC|NW||||HD")) == "on-hold"
    assert request_status(seg("ORC|SC||||CM")) == "completed"
    assert request_status(seg("ORC|RE")) == "unknown"
    assert request_status(seg("ORC|CA")) == "active"  # a cancel *request* does not cancel the order yet


def test_result_report_based_on_request_with_specimen():
    """ORU: the DiagnosticReport points basedOn at the OBR's ServiceRequest; SPM becomes the Specimen of both."""
    m = bundle("ORU^R01^ORU_R01", PID, OBR, OBX, SPM)
    (request,) = of(m, "ServiceRequest")
    (report,) = of(m, "DiagnosticReport")
    (spec,) = of(m, "Specimen")
    assert report["basedOn"] == [{"reference": f"urn:uuid:{request['id']}"}]
    assert report["specimen"] == request["specimen"] == [{"reference": f"urn:uuid:{spec['id']}"}]
    assert len(of(m, "Observation")) == 1 and report["result"][0]["reference"] == f"urn:uuid:{of(m, 'Observation')[0]['id']}"


def test_obr_collection_time_makes_specimen_without_spm():
    """Without SPM, OBR-7 still gives the order a Specimen collected at that time."""
    m = bundle("ORM^O01^ORM_O01", PID, ORC, OBR)
    (spec,) = of(m, "Specimen")
    assert spec["collection"] == {"collectedDateTime": "2026-01-01T09:30:00+00:00"}


def test_spm_fields():
    """SPM: placer/filler ids from SPM-2, type on table 0487, collection period SPM-17, receivedTime, availability."""
    spec = specimen(seg(SPM), "k", {"reference": "urn:uuid:p"})
    assert [(i["value"], i["type"]["coding"][0]["code"]) for i in spec["identifier"]] == [("SP-1", "PLAC"), ("SP-9", "FILL")]
    assert spec["type"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0487", "code": "BLD", "display": "Whole blood"}
    assert spec["collection"] == {"collectedDateTime": "2026-01-01T09:15:00+00:00"}
    assert spec["receivedTime"] == "2026-01-01T09:45:00+00:00" and spec["status"] == "available"


def test_order_reason_is_the_dg1_condition():
    """A DG1 inside an order group becomes the ServiceRequest's reasonReference to that Condition."""
    m = bundle("ORM^O01^ORM_O01", PID, ORC, OBR, "DG1|1||I10^Hypertension^I10")
    (request,) = of(m, "ServiceRequest")
    (cond,) = of(m, "Condition")
    assert request["reasonReference"] == [{"reference": f"urn:uuid:{cond['id']}"}]


def test_vxu_immunization():
    """VXU: RXA/RXR -> Immunization with vaccine, date, dose, lot, expiry, completed status, route, site, performers."""
    m = bundle("VXU^V04^VXU_V04", PID,
               "ORC|RE||IZ-1^NDA|||||||||57422^RADON^NICHOLAS",
               "RXA|0|1|20120814||140^Flu, preservative free^CVX|0.5|mL^mL^UCUM||00^New record^NIP001|7832^Lemon^Mike|||||Z0860BB|20121104||||CP|A",
               "RXR|C28161^Intramuscular^NCIT|LD^Left Deltoid^HL70163")
    (imm,) = of(m, "Immunization")
    assert imm["status"] == "completed" and imm["occurrenceDateTime"] == "2012-08-14"
    assert imm["vaccineCode"]["coding"][0] == {"code": "140", "system": "http://hl7.org/fhir/sid/cvx", "display": "Flu, preservative free"}
    assert imm["doseQuantity"] == {"value": 0.5, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
    assert imm["lotNumber"] == "Z0860BB" and imm["expirationDate"] == "2012-11-04" and imm["primarySource"] is True
    assert imm["route"]["coding"][0]["code"] == "C28161"
    assert imm["site"]["coding"][0] == {"code": "LD", "system": "http://terminology.hl7.org/CodeSystem/v2-0163", "display": "Left Deltoid"}
    assert [p["function"]["coding"][0]["code"] for p in imm["performer"]] == ["OP", "AP"]
    assert imm["identifier"][0]["value"] == "IZ-1"
    assert not {"RXA", "RXR", "ORC"} & set(m.unmapped_segments)


def test_refused_immunization_is_not_done():
    """RXA-20 RE (refused) maps to status not-done, with RXA-18 as the reason."""
    m = bundle("VXU^V04^VXU_V04", PID, "|".join(["RXA", "0", "1", "20120814", "", "140^Flu^CVX", "999"] + [""] * 11
                                                      + ["00^Parental decision^NIP002", "", "RE"]))
    (imm,) = of(m, "Immunization")
    assert imm["status"] == "not-done" and imm["statusReason"]["coding"][0]["code"] == "00" and "doseQuantity" not in imm


def test_rde_medication_request_and_dispense():
    """RDE/RDS: RXO and RXE become MedicationRequests with Medications (RXC as ingredient); RXE is basedOn RXO; RXD dispenses."""
    m = bundle("RDS^O13^RDS_O13", PID, "ORC|NW|1163^EPC|||||||20191104062726+0215",
               "RXO|01151327^Doxycycline^NDC|2||TAB^Tablet|||||||6|TAB^Tablet|1",
               "RXE||01151327^Doxycycline^NDC|1||TAB^Tablet|||||6|TAB^Tablet|2|||PN123",
               "RXR|PO^Oral^HL70162",
               "RXC|A|0143^Saline^NDC|3|BG^Bag|5|mg/hr",
               "RXD|1|01151327^Doxycycline^NDC|20201212|10|TAB^Tablet||PN123||After food|99^Smith^Adam")
    placer, filler = of(m, "MedicationRequest")
    assert placer["intent"] == "order" and filler["intent"] == "filler-order" and placer["status"] == "active"
    assert filler["basedOn"] == [{"reference": f"urn:uuid:{placer['id']}"}]
    assert filler["authoredOn"] == "2019-11-04T06:27:26+02:15" and placer["identifier"][0]["value"] == "1163"
    assert [i["value"] for i in filler["identifier"]] == ["1163", "PN123"]
    assert placer["dispenseRequest"] == {"quantity": {"value": 6, "unit": "Tablet"}, "numberOfRepeatsAllowed": 1}
    assert filler["dosageInstruction"][0]["route"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0162"
    meds = {m_["id"]: m_ for m_ in of(m, "Medication")}
    drug = meds[filler["medicationReference"]["reference"][9:]]
    assert drug["code"]["coding"][0]["code"] == "01151327"
    saline = meds[drug["ingredient"][0]["itemReference"]["reference"][9:]]
    assert saline["code"]["coding"][0]["code"] == "0143" and saline["amount"]["numerator"] == {"value": 3, "unit": "Bag"}
    (dispense,) = of(m, "MedicationDispense")
    assert dispense["whenHandedOver"] == "2020-12-12" and dispense["quantity"] == {"value": 10, "unit": "Tablet"}
    assert dispense["authorizingPrescription"] == [{"reference": f"urn:uuid:{filler['id']}"}]
    assert dispense["note"] == [{"text": "After food"}]
    assert not {"RXO", "RXE", "RXR", "RXC", "RXD"} & set(m.unmapped_segments)


def test_siu_appointment():
    """SIU: SCH/TQ1/AIS/AIL/AIP -> Appointment with ids, status, times, type, service, participants, basedOn the AIS order."""
    m = bundle("SIU^S12^SIU_S12",
               "SCH|12345|36996|||||EMERGENCY^Emergency|||||||||||||||||Booked",
               "TQ1|||||||20210924093000+0215|20210924102000+0215",
               PID, "RGS|1",
               "AIS|1|A|76164006^Biopsy of colon^SCT|20210924093000+0215|||50|min",
               "AIL|1||055^Room01^^GH Clinic",
               "AIP|1||1210^GE^Robert|010^Gastroenterologist^L")
    (appt,) = of(m, "Appointment")
    assert appt["status"] == "booked"
    assert [(i["value"], i["type"]["coding"][0]["code"]) for i in appt["identifier"]] == [("12345", "PLAC"), ("36996", "FILL")]
    assert appt["start"] == "2021-09-24T09:30:00+02:15" and appt["end"] == "2021-09-24T10:20:00+02:15"
    assert appt["appointmentType"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": "EMERGENCY", "display": "Emergency"}
    assert appt["serviceType"][0]["coding"][0]["code"] == "76164006"
    actors = {p["actor"]["reference"] for p in appt["participant"]}
    # the appointment is at the innermost of the AIL's Locations (the last of its chain)
    expected = {f"urn:uuid:{of(m, kind)[-1]['id']}" for kind in ("Patient", "Location", "Practitioner")}
    assert actors == expected and all(p["status"] == "accepted" for p in appt["participant"])
    (request,) = of(m, "ServiceRequest")
    assert appt["basedOn"] == [{"reference": f"urn:uuid:{request['id']}"}] and request["code"]["coding"][0]["code"] == "76164006"
    assert m.unmapped_segments == ["RGS"]


def test_siu_equipment_is_a_booked_device_and_resources_have_their_start():
    """AIG (general resource: equipment) -> a Device participant of AIG-4's type, keyed by the sending facility (its
    codes are the scheduler's own); AIG-8, AIL-6 and AIP-6 -> each participant's period.start."""
    aig = "AIG|1|A|5001^EVIS X12 Video Colonoscope^L^5002^Video|101^Equipment^L||||20210924093000+0215"
    m = bundle("SIU^S12^SIU_S12", "SCH|12345|36996", PID, aig,
               "AIL|1||055^Room01^^GH Clinic|||20210924094000+0215", "AIP|1||1210^GE^Robert|||20210924095000+0215")
    (appt,) = of(m, "Appointment")
    (device,) = [d for d in of(m, "Device") if d.get("deviceName")]
    assert device["identifier"] == [{"value": "5001"}, {"value": "5002"}]
    assert device["deviceName"] == [{"name": "EVIS X12 Video Colonoscope", "type": "user-friendly-name"}]
    by_actor = {p["actor"]["reference"]: p for p in appt["participant"]}
    booked = by_actor[f"urn:uuid:{device['id']}"]
    assert booked["type"][0]["coding"][0]["code"] == "101" and booked["period"] == {"start": "2021-09-24T09:30:00+02:15"}
    assert by_actor[f"urn:uuid:{of(m, 'Location')[-1]['id']}"]["period"]["start"] == "2021-09-24T09:40:00+02:15"
    assert by_actor[f"urn:uuid:{of(m, 'Practitioner')[0]['id']}"]["period"]["start"] == "2021-09-24T09:50:00+02:15"
    assert "AIG" not in m.unmapped_segments
    other_site = hl7v2_to_fhir("\r".join([MSH.format(kind="SIU^S12^SIU_S12").replace("|FAC|", "|OTHER|"), "SCH|12345|36996", PID, aig]).encode())
    assert [d["id"] for d in of(other_site, "Device") if d.get("deviceName")] != [device["id"]]


def test_siu_contacts_and_enterer_are_supporting_information_and_duration_in_minutes():
    """SCH-12..15 placer contact (person, phone, address, location), SCH-16..19 filler contact, SCH-20..22 entered by
    (table 0443 EP) -> PractitionerRoles the Appointment's supportingInformation names; SCH-9/10 -> minutesDuration."""
    fields = {1: "12345", 2: "36996", 9: "90", 10: "s", 12: "9941339109^Smith^Adam", 13: "(608)271-9000^^PH",
              14: "115 MAIN ST^^GOODTOWN^KY^42010", 20: "9^DENT^COREY", 21: "(610)271-9000^^PH", 22: "^^^FACILITY3"}
    sch = "|".join(["SCH", *(fields.get(n, "") for n in range(1, 23))])
    m = bundle("SIU^S12^SIU_S12", sch, PID, "AIP|1||1210^GE^Robert")
    (appt,) = of(m, "Appointment")
    assert appt["minutesDuration"] == 2  # 90 seconds, to the nearest minute
    by_id = {f"urn:uuid:{e['resource']['id']}": e["resource"] for e in m.bundle["entry"]}
    roles = [by_id[r["reference"]] for r in appt["supportingInformation"]]
    assert [r["code"][0]["coding"][0]["code"] for r in roles] == ["placer-contact", "EP"]  # no filler contact sent
    placer, enterer = (by_id[r["practitioner"]["reference"]] for r in roles)
    assert placer["name"][0]["family"] == "Smith" and placer["address"][0]["city"] == "GOODTOWN"
    assert [t["value"] for t in roles[0]["telecom"]] == ["(608)271-9000"]
    assert enterer["name"][0]["family"] == "DENT" and by_id[roles[1]["location"][0]["reference"]]["resourceType"] == "Location"


def test_siu_notes_are_the_appointments_comment_and_the_services_notes():
    """NTE after the SCH (a TQ1 between) -> Appointment.comment; after an AIS -> its ServiceRequest's notes; after an
    AIG, AIL or AIP (no R4 element holds a note on one booked resource) -> kept verbatim; an NTE after the PID is
    not the appointment's."""
    m = bundle("SIU^S12^SIU_S12", "SCH|12345|36996", "TQ1|||||||20210924093000+0215|20210924102000+0215",
               "NTE|1||Booked for emergency~second line", PID, "NTE|1||about the patient", "RGS|1",
               "AIS|1|A|X1^Visit^L", "NTE|1||Bowel preparation", "NTE|2||Light meal",
               "AIG|1|A|5001^Scope^L", "NTE|1||Check the scope", "AIL|1||055^Room01", "NTE|1||Disinfect")
    (appt,) = of(m, "Appointment")
    assert appt["comment"] == "Booked for emergency\nsecond line"
    (request,) = of(m, "ServiceRequest")
    assert request["note"] == [{"text": "Bowel preparation"}, {"text": "Light meal"}]
    assert m.unmapped_segments == ["NTE", "RGS", "NTE", "NTE"]
    assert "about the patient" not in str([appt, request])


def test_scheduling_segments_without_an_sch_are_kept_verbatim():
    m = bundle("SIU^S12^SIU_S12", PID, "AIG|1|A|5001^Scope^L", "AIS|1|A|X1^Visit^L", "NTE|1||a note", "AIL|1||055^Room01", "AIP|1||1210^GE^Robert")
    assert m.unmapped_segments == ["AIG", "AIS", "NTE", "AIL", "AIP"] and not of(m, "Appointment")


def test_siu_cancel_without_times_uses_event_and_ais_duration():
    """SIU S15 with empty SCH-25 is cancelled; without TQ1/SCH-11 the times come from AIS-4 plus the AIS-7 duration."""
    m = bundle("SIU^S15^SIU_S12", "SCH|1|2", PID, "AIS|1|A|X1^Visit^L|20210924093000+0000|||30|min")
    (appt,) = of(m, "Appointment")
    assert appt["status"] == "cancelled" and appt["end"] == "2021-09-24T10:00:00+00:00"
    assert appt["participant"][0]["status"] == "declined" and of(m, "ServiceRequest")[0]["status"] == "revoked"


def test_problem_condition():
    """PRB -> problem-list-item Condition with code, instance id, recorded and onset dates, status; DE is entered-in-error."""
    subject = {"reference": "urn:uuid:p"}
    cond = problem(seg("PRB|AD|20040629164600|596.5^BLADDER DYSFUNCTION^I9|26744|||20040629|||||||ACTIVE||20040601"), 3, "k", subject)
    assert cond["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert cond["code"]["coding"][0]["code"] == "596.5" and cond["identifier"] == [{"value": "26744"}]
    assert cond["clinicalStatus"]["coding"][0]["code"] == "active"
    assert cond["recordedDate"] == "2004-06-29" and cond["onsetDateTime"] == "2004-06-01"
    deleted = problem(seg("PRB|DE|20040629|300.7^HYPOCHONDRIASIS^I9|26806|||||||||Deleted"), 3, "k", subject)
    assert deleted["verificationStatus"]["coding"][0]["code"] == "entered-in-error" and "clinicalStatus" not in deleted


def test_ppr_message_maps_problem():
    """PPR^PC1: the PRB is mapped (not left unmapped) and the Bundle validates."""
    m = bundle("PPR^PC1", PID, "PRB|AD|20040629|596.5^BLADDER DYSFUNCTION^I9|26744")
    assert of(m, "Condition")[0]["code"]["coding"][0]["code"] == "596.5" and "PRB" not in m.unmapped_segments


def test_order_without_patient_is_kept_verbatim():
    """Without a PID there is no subject: the ORC is listed as unmapped instead of being dropped."""
    m = hl7v2_to_fhir("\r".join([MSH.format(kind="ORM^O01"), ORC]).encode())
    assert "ORC" in m.unmapped_segments and not of(m, "ServiceRequest")


def test_replay_gives_identical_bundle():
    """Mapping the same order message twice gives the same Bundle (deterministic ids)."""
    raw = "\r".join([MSH.format(kind="ORM^O01^ORM_O01"), PID, ORC, OBR, SPM])
    assert hl7v2_to_fhir(raw).bundle == hl7v2_to_fhir(raw).bundle


def test_diagnosis_identifier_and_asserter():
    """DG1-20 (diagnosis identifier, an EI with its namespace) -> Condition.identifier; DG1-16 (diagnosing clinician)
    -> asserter, a Practitioner."""
    m = bundle("ADT^A01^ADT_A01", PID, PV1,
               "DG1|1||I10^Hypertension^I10|Hypertension|20260101090000+0000|F|||||||||1|2002^Baker^Ann^^^DR||||DX77^EHR")
    (condition,) = of(m, "Condition")
    assert condition["identifier"] == [{"value": "DX77", "system": "urn:clinstream:id:EHR"}]
    (doctor,) = of(m, "Practitioner")
    assert condition["asserter"] == {"reference": f"urn:uuid:{doctor['id']}"}
    assert doctor["name"][0]["family"] == "Baker"
    assert condition["code"]["coding"][0]["code"] == "I10" and condition["onsetDateTime"].startswith("2026-01-01T09:00")


def test_diagnosis_description_attestation_and_parent():
    """DG1-4 (the sender's description) is the code's text; DG1-19 (attestation) -> condition-assertedDate; DG1-22
    (parent diagnosis) -> a Condition of that identifier, which this one is dueTo; two DG1s of one parent share it."""
    dg1 = "DG1|{n}||I50.9^Heart failure^I10|{text}||F|||||||||1||||20260102080000+0100|DX{n}^EHR||PARENT1^EHR"
    m = bundle("ADT^A01^ADT_A01", PID, PV1, dg1.format(n=1, text="CHF, worse"), dg1.format(n=2, text=""))
    first, second, parent = sorted(of(m, "Condition"), key=lambda c: c["identifier"][0]["value"])
    assert parent["identifier"] == [{"value": "PARENT1", "system": "urn:clinstream:id:EHR"}] and "code" not in parent
    assert parent["subject"] == first["subject"]
    for child in (first, second):
        assert {"url": "http://hl7.org/fhir/StructureDefinition/condition-dueTo",
                "valueReference": {"reference": f"urn:uuid:{parent['id']}"}} in child["extension"]
        assert {"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate",
                "valueDateTime": "2026-01-02T08:00:00+01:00"} in child["extension"]
    assert first["code"]["text"] == "CHF, worse" and first["code"]["coding"][0]["code"] == "I50.9"
    assert second["code"]["text"] == "Heart failure"  # no description: the code's own


def test_diagnosis_parent_without_an_entity_id_is_no_condition():
    """A DG1-22 of namespace only (as the corpus's ADT samples send) names no diagnosis."""
    m = bundle("ADT^A01^ADT_A01", PID, PV1, "DG1|1||I10^Hypertension^I10" + "|" * 19 + "^^1.3.6.1.4.1.44750.1.2.2^ISO")
    (condition,) = of(m, "Condition")
    assert "extension" not in condition


def test_diagnosis_without_identifier_or_clinician_has_neither():
    m = bundle("ADT^A01^ADT_A01", PID, PV1, "DG1|1||I10^Hypertension^I10")
    (condition,) = of(m, "Condition")
    assert "identifier" not in condition and "asserter" not in condition


def test_report_status_identifiers_from_orc_and_interpreter():
    """OBR-25 S (scheduled, no results yet) -> registered; OBR-24 -> category (table 0074); empty OBR-2/3 fall back to the ORC's placer/filler numbers;
    OBR-32 (principal result interpreter, NDL) -> resultsInterpreter, a PractitionerRole of that Practitioner."""
    obr = ("OBR|1|||24331-1^Lipid panel^LN|||20260101093000+0000|||||||||||||||20260101110000+0000||HM|S"
           "|||||||3003&Chen&Wei^^^LAB1^Room1^^FAC")
    m = bundle("ORU^R01^ORU_R01", PID, PV1, "ORC|RE|PL7^EHR|FI8^LAB", obr, OBX)
    (report,) = of(m, "DiagnosticReport")
    assert report["status"] == "registered"
    assert report["category"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "HM"}]}]
    assert [(i["value"], i["system"], i["type"]["coding"][0]["code"]) for i in report["identifier"]] == [
        ("PL7", "urn:clinstream:id:EHR", "PLAC"), ("FI8", "urn:clinstream:id:LAB", "FILL")]  # the EI's namespace, as the order's
    assert report["effectiveDateTime"].startswith("2026-01-01T09:30") and report["issued"].startswith("2026-01-01T11:00")
    by_id = {f"urn:uuid:{r['id']}": r for r in (e["resource"] for e in m.bundle["entry"])}
    (interpreter,) = report["resultsInterpreter"]
    role = by_id[interpreter["reference"]]
    assert role["resourceType"] == "PractitionerRole"
    doctor = by_id[role["practitioner"]["reference"]]
    assert doctor["identifier"][0]["value"] == "3003" and doctor["name"][0]["family"] == "Chen"


def test_report_keeps_its_own_numbers_over_the_orc():
    m = bundle("ORU^R01^ORU_R01", PID, "ORC|RE|PL7^EHR|FI8^LAB", OBR + "||||||||||||||||||F", OBX)
    (report,) = of(m, "DiagnosticReport")
    assert [i["value"] for i in report["identifier"]] == ["PL100", "FI200"]
    assert report["status"] == "final" and "resultsInterpreter" not in report


def test_report_without_result_status_is_unknown():
    """OBR-25 empty: the guide gives no default (it is required in v2), so the report's status is unknown, not final."""
    m = bundle("ORU^R01^ORU_R01", PID, OBR, OBX)
    (report,) = of(m, "DiagnosticReport")
    assert report["status"] == "unknown"


def test_specimen_parents_and_request():
    """SPM-3 repetitions -> parent Specimens (placer id, else filler id) referenced as Specimen.parent, shared by the
    SPMs that name them; a specimen of an order points back at the order's ServiceRequest (Specimen.request)."""
    m = bundle("ORU^R01^ORU_R01", PID, OBR, OBX, "SPM|1|SP-1&EHR||BLD", "SPM|2|SP-2&EHR|BLK-7&LAB~^BOX-1&LAB|BLD")
    (request,) = of(m, "ServiceRequest")
    first, second, *parents = sorted(of(m, "Specimen"), key=lambda s: s["identifier"][0]["value"][:2] != "SP")
    assert "parent" not in first and [p["identifier"][0]["value"] for p in parents] == ["BLK-7", "BOX-1"]
    assert second["parent"] == [{"reference": f"urn:uuid:{p['id']}"} for p in parents]
    assert [p["identifier"][0]["type"]["coding"][0]["code"] for p in parents] == ["PLAC", "FILL"]
    assert first["request"] == second["request"] == [{"reference": f"urn:uuid:{request['id']}"}]


def test_specimen_before_its_orders_is_theirs():
    """OUL^R22 puts the SPM before the OBRs ordered on it: each of those orders and its report names the specimen."""
    m = bundle("OUL^R22^OUL_R22", PID, "SPM|1|SP-1&EHR||BLD", OBR, OBX, "OBR|2|PL101^EHR|FI201^LAB|2345-7^Glucose^LN")
    (spec,) = of(m, "Specimen")
    requests, reports = of(m, "ServiceRequest"), of(m, "DiagnosticReport")
    assert len(requests) == len(reports) == 2
    assert all(r["specimen"] == [{"reference": f"urn:uuid:{spec['id']}"}] for r in requests + reports)
    assert spec["request"] == [{"reference": f"urn:uuid:{r['id']}"} for r in requests]


def test_medication_request_timing_substitution_and_dea_requester():
    """TQ1 -> dosage timing (TQ1-3 code on table 0335, TQ1-7/8 bounds), TQ1-9 priority, TQ1-10/11 instructions; a TQ1 before
    the RXO is the order's, one after the RXE that request's own. RXO-9 -> substitution (table 0161); RXO-14 (the
    ordering provider's DEA number) is the requester when ORC-12 is empty."""
    m = bundle("RDE^O11^RDE_O11", PID, "ORC|NW|1163^EPC", "TQ1|1||TID||||||R",
               "RXO|01151327^Doxycycline^NDC|2||TAB^Tablet|||||G|||||DEA1^Jane^Warn",
               "RXE||01151327^Doxycycline^NDC|1||TAB^Tablet",
               "TQ1|1||P&Post (after)&HL70335||||20191104103000+0215|20191104113000+0215|S|With food|Take slowly")
    placer, filler = of(m, "MedicationRequest")
    assert placer["dosageInstruction"][0]["timing"] == {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0335", "code": "TID"}]}}
    assert placer["priority"] == "routine"
    assert placer["substitution"]["allowedCodeableConcept"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0161", "code": "G", "display": "Allow generic substitutions"}
    role = next(r for r in of(m, "PractitionerRole") if f"urn:uuid:{r['id']}" == placer["requester"]["reference"])
    doctor = next(p for p in of(m, "Practitioner") if f"urn:uuid:{p['id']}" == role["practitioner"]["reference"])
    assert doctor["identifier"][0]["value"] == "DEA1" and "requester" not in filler and "substitution" not in filler
    dosage = filler["dosageInstruction"][0]
    assert dosage["timing"]["code"]["coding"][0] == {"system": "http://terminology.hl7.org/CodeSystem/v2-0335", "code": "P", "display": "Post (after)"}
    assert dosage["timing"]["repeat"] == {"boundsPeriod": {"start": "2019-11-04T10:30:00+02:15", "end": "2019-11-04T11:30:00+02:15"}}
    assert dosage["additionalInstruction"] == [{"text": "With food"}] and dosage["text"] == "Take slowly" and filler["priority"] == "stat"
    assert "TQ1" not in m.unmapped_segments


def test_service_request_timing_note_and_reason():
    """TQ1 -> occurrenceTiming (TQ1-3 on table 0335, TQ1-7/8 bounds) and TQ1-11 a note (guide's TQ1[ServiceRequest]);
    OBR-31 reason for study -> reasonCode."""
    m = bundle("ORM^O01^ORM_O01", PID, ORC, "TQ1|1||Q4H||||20211010|20211110|R||Fasting",
               OBR + "||||||||||||||||||||||||786.09^Dyspnea^I9C~414.8^Ischemia^I9C")
    (request,) = of(m, "ServiceRequest")
    assert request["occurrenceTiming"] == {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0335", "code": "Q4H"}]},
                                           "repeat": {"boundsPeriod": {"start": "2021-10-10", "end": "2021-11-10"}}}
    assert request["priority"] == "routine" and request["note"] == [{"text": "Fasting"}]
    assert [r["coding"][0]["code"] for r in request["reasonCode"]] == ["786.09", "414.8"]


def test_service_request_timing_follows_the_guides_tq1_map():
    """TQ1-2 quantity, 4 explicit times, 6 service duration (when 7/8 give no bounds), 13 occurrence duration, 14 total
    occurrences; a unit that is no unit of time leaves its field to the unmapped report."""
    m = bundle("ORM^O01^ORM_O01", PID, ORC, "TQ1|1|54^&lbs|Q4H|0800~14:30|30^s|2^d&Day&ANS+|||||||15^min&minute&ANS+|5", OBR)
    (request,) = of(m, "ServiceRequest")
    assert request["quantityQuantity"] == {"value": 54, "unit": "lbs"}
    assert request["occurrenceTiming"]["repeat"] == {
        "boundsDuration": {"value": 2, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"},
        "timeOfDay": ["08:00:00", "14:30:00"], "duration": 15, "durationUnit": "min", "countMax": 5}
    assert {"TQ1-2", "TQ1-4", "TQ1-6", "TQ1-13", "TQ1-14"}.isdisjoint(m.unmapped_fields)
    m = bundle("ORM^O01^ORM_O01", PID, ORC, "TQ1|1||Q4H|||2^furlongs|||||||15^fortnights", OBR)
    assert "repeat" not in of(m, "ServiceRequest")[0]["occurrenceTiming"]
    assert "TQ1-6" in m.unmapped_fields


def test_placer_numbers_that_differ_are_both_kept():
    """ORC-2 and OBR-2 should agree; when they do not, both are identifiers (one was silently dropped)."""
    m = bundle("ORM^O01^ORM_O01", PID, "ORC|NW|PL-A^EHR", "OBR|1|PL-B^EHR||2345-7^Glucose^LN")
    assert [i["value"] for i in of(m, "ServiceRequest")[0]["identifier"]] == ["PL-B", "PL-A"]


def test_oul_orc_after_its_obr_is_the_same_order():
    """OUL^R22 order groups are OBR, [ORC]: one ServiceRequest with the ORC's status and group number, which a PRT after
    the ORC joins; elsewhere an ORC after an OBR starts the next order."""
    m = bundle("OUL^R22^OUL_R22", PID, "SPM|1|SP-1&EHR||BLD", OBR, "ORC|SC|||GRP1^EHR|CM", "PRT||AD||OP^Ordering Provider^HL70443|77^Ord^Olga", OBX)
    (request,) = of(m, "ServiceRequest")
    assert request["status"] == "completed" and [i["value"] for i in request["identifier"]] == ["PL100", "FI200", "GRP1"]
    role = next(r for r in of(m, "PractitionerRole") if f"urn:uuid:{r['id']}" == request["requester"]["reference"])
    assert role["code"][0]["coding"][0]["code"] == "OP"
    assert len(of(bundle("ORM^O01^ORM_O01", PID, OBR, "ORC|NW|PL9^EHR", "OBR|2|PL9^EHR||2345-7^Glucose^LN"), "ServiceRequest")) == 2


def test_results_are_based_on_the_order_and_about_its_specimen():
    """Each Observation of an OBR group points at the order's ServiceRequest (basedOn) and its first specimen; OBX-17
    method, OBX-20 body site and OBX-21 instance identifier are mapped (guide's OBX[Observation])."""
    m = bundle("ORU^R01^ORU_R01", PID, OBR, "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|<200||||F||||||OBS^Test method^AS4|||BU^Site^E5|EI21^OII", SPM)
    (request,), (spec,), (obs,) = of(m, "ServiceRequest"), of(m, "Specimen"), of(m, "Observation")
    assert obs["basedOn"] == [{"reference": f"urn:uuid:{request['id']}"}] and obs["specimen"] == {"reference": f"urn:uuid:{spec['id']}"}
    assert obs["method"]["coding"][0]["code"] == "OBS" and obs["bodySite"]["coding"][0]["code"] == "BU"
    assert obs["identifier"] == [{"value": "EI21", "system": "urn:clinstream:id:OII"}]


def test_analysis_time_and_specimen_receipt():
    """OBX-19 (date/time of the analysis) -> the observation-analysis-date-time extension; OBR-14 (specimen received)
    -> the order's Specimen.receivedTime, with no SPM (guide's OBX and OBR[Specimen] maps)."""
    obr = OBR + "|||||||20260101094500+0000"  # OBR-14
    m = bundle("ORU^R01^ORU_R01", PID, obr, "OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|<200||||F|||20260101093000+0000|||||20260101101500+0000")
    (obs,), (spec,) = of(m, "Observation"), of(m, "Specimen")
    assert obs["extension"] == [{"url": "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time",
                                 "valueDateTime": "2026-01-01T10:15:00+00:00"}]
    assert spec["receivedTime"] == "2026-01-01T09:45:00+00:00" and "OBR-14" not in m.unmapped_fields
