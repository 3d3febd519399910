"""CTI -> ResearchStudy, AUT -> ClaimResponse, INV -> Substance, RDE^O25 -> a refill-request Task."""

from fhir_mappers.authorizations import authorization
from fhir_mappers.studies import research_study
from fhir_mappers.substances import substance
from tests.fhir_mappers.segments import PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

AUT = "AUT|PPO|HC02|HIIC(MI State Code)|20220110|20220310|HL71001111111111|175|2|1|20220310||||||||||||||||||comment|X"
INV = ("INV|SI1234^Substance_ID^HL70451|OK^OK Status^HL70383|RC^Reagent Calibrator^HL70384|CONT1234^Container_ID^LabID|||50|"
       "30|25||ML^Mili Litre^UCUM|20210131||||TST_ID12|MFG_Lot 12|SUPL_ID 18^Test^XYZ")
CTI = "CTI|RSID1234^SPONSOR|1^Phase_ID1^HL70396|V2^Visit 2"
ORC = "ORC|NW|ORD-1^EPC"
OBR = "OBR|1|ORD-1^EPC||24331-1^Lipid panel^LN"
RXE = "RXE||0143963401^NICARDIPINE 40 MG/200 ML^NDC|5||43^mg/hr"


def test_authorization_segment():
    """AUT: 2/3 insurer, 4/5 pre-authorization period, 6 id, 7 benefit limit, 8/9 treatment counts, 10 created, 28 note."""
    claim, shared = authorization(seg(AUT), 3, "FAC|M1", PATIENT, "2026-01-01")
    insurer = shared[0]
    assert claim["insurer"] == ref_to(insurer) and insurer["name"] == "HIIC(MI State Code)" and insurer["identifier"] == [{"value": "HC02"}]
    assert (claim["status"], claim["use"], claim["outcome"], claim["patient"]) == ("active", "preauthorization", "complete", PATIENT)
    assert claim["created"] == "2022-03-10" and claim["preAuthPeriod"] == {"start": "2022-01-10", "end": "2022-03-10"}
    assert claim["identifier"] == [{"value": "HL71001111111111"}] and claim["total"][0]["amount"] == {"value": 175.0}
    assert [(a["category"]["coding"][0]["code"], a["value"]) for a in claim["item"][0]["adjudication"]] == [("RNT", 2.0), ("ANT", 1.0)]
    assert claim["processNote"] == [{"text": "comment"}]
    undated, _ = authorization(seg("AUT|PPO||Acme Health"), 1, "k", PATIENT, "2026-01-01T10:30:00+00:00")
    assert undated["created"] == "2026-01-01T10:30:00+00:00" and "item" not in undated
    assert authorization(seg("AUT|PPO|||20220110"), 1, "k", PATIENT, "2026-01-01") == (None, [])  # no insurer: R4 requires one


def test_ref_message_maps_aut_before_the_patient():
    m = mapped("RF1|P", AUT, PID, PV1, kind="REF^I12^REF_I12")
    claim = of(m, "ClaimResponse")[0]
    assert by_ref(m, claim["patient"])["resourceType"] == "Patient" and "AUT" not in m.unmapped_segments
    assert mapped(AUT, kind="REF^I12^REF_I12").unmapped_segments == ["AUT"]


def test_study_segment():
    """CTI: 1 sponsor study id, 2 phase, 3 scheduled time point; no study id, no study."""
    study = research_study(seg(CTI))
    assert study["status"] == "active" and study["identifier"] == [{"value": "RSID1234", "system": "urn:clinstream:id:SPONSOR"}]
    assert study["phase"]["coding"][0]["code"] == "1" and study["description"] == "Scheduled time point: Visit 2"
    assert research_study(seg("CTI||1^Phase_ID1^HL70396")) is None


def test_orders_name_their_study():
    """The order's ServiceRequest (supportingInfo) or MedicationRequest (supportingInformation) names the trial;
    a CTI with no order before it is left unmapped."""
    m = mapped(PID, PV1, ORC, OBR, CTI, kind="ORM^O01^ORM_O01")
    request = of(m, "ServiceRequest")[0]
    assert [by_ref(m, r)["resourceType"] for r in request["supportingInfo"]] == ["ResearchStudy"] and "CTI" not in m.unmapped_segments
    m = mapped(PID, PV1, ORC, RXE, CTI, kind="RDE^O11^RDE_O11")
    assert of(m, "MedicationRequest")[0]["supportingInformation"] == [ref_to(of(m, "ResearchStudy")[0])]
    m = mapped(PID, PV1, CTI, kind="ORM^O01^ORM_O01")
    assert m.unmapped_segments == ["CTI"] and not of(m, "ResearchStudy")


def test_inventory_segment():
    """INV: 1 code, 2 status, 3 category, 4 container, 8 current quantity in 11 units, 12 expiry, 16-18 identifiers."""
    found = substance(seg(INV), 5, "FAC|M1")
    assert found["code"]["coding"][0]["code"] == "SI1234" and found["status"] == "active"
    assert found["category"][0]["coding"][0]["code"] == "RC"
    assert [i["value"] for i in found["identifier"]] == ["TST_ID12", "MFG_Lot 12", "SUPL_ID 18"]  # lot, manufacturer, supplier
    assert found["instance"] == [{"identifier": {"value": "CONT1234", "system": "urn:clinstream:id:LabID"},
                                  "quantity": {"value": 30, "unit": "Mili Litre", "system": "http://unitsofmeasure.org", "code": "ML"},
                                  "expiry": "2021-01-31"}]
    assert substance(seg("INV||EE"), 1, "k") is None


def test_inventory_is_the_additive_of_the_specimen_container():
    m = mapped(PID, "SPM|1|S-1&L||SKBP^Biopsy, Skin^HL70487", "SAC||S-1", INV, kind="OUL^R22^OUL_R22")
    specimen, found = of(m, "Specimen")[0], of(m, "Substance")[0]
    assert specimen["container"] == [{"additiveReference": ref_to(found)}] and "INV" not in m.unmapped_segments


def test_refill_authorization_request_is_a_task():
    """RDE^O25: a requested Task focused on each MedicationRequest, for its patient and visit; RDE^O11 makes none."""
    m = mapped(PID, PV1, ORC, RXE, kind="RDE^O25^RDE_O25")
    task, request = of(m, "Task")[0], of(m, "MedicationRequest")[0]
    assert task["focus"] == ref_to(request) and task["for"] == request["subject"] and task["encounter"] == request["encounter"]
    assert (task["status"], task["intent"], task["code"]["coding"][0]["code"]) == ("requested", "order", "refill-authorization-request")
    assert not of(mapped(PID, PV1, ORC, RXE, kind="RDE^O11^RDE_O11"), "Task")
