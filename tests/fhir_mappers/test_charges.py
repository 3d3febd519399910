"""FT1 -> ChargeItem."""

from fhir_mappers.charges import charge_item
from tests.fhir_mappers.segments import ENCOUNTER, PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

FT1 = ("FT1|1|12345||20191122|20191123|CG|71045^Xray exam chest 1 view^C4|||2|100.50&USD|50&USD|RAD-1^Radiology^L|||||SE|"
       "29857009^Chest pain^SCT~68235000^Nasal congestion^SCT|99^Smith^Adam|77^House^Greg|||44^Clerk^Cora|71045^Xray chest^C4|26|||"
       "0182-1061-05^ASPIRIN EC^NDC|||Good Health Hospital^L^4544|Ordering Clinic^L^77|Item-12345^^L|Model-12345")
ACCOUNT = {"reference": "urn:uuid:a"}


def test_financial_transaction_is_a_charge_item():
    """FT1-2 id, -4 date, -5 posting date, -7 code, -10 quantity, -11 price, -13 cost center, -19 reasons, -20/-21
    performers, -24 enterer, -25 procedure (the service), -32/-33 facilities, -34 the item (product)."""
    charge, related = charge_item(seg(FT1), 4, "FAC|M1", PATIENT, ENCOUNTER, ACCOUNT)
    by_id = {r["id"]: r for r in related}

    def named(reference):
        return by_id[reference["reference"].removeprefix("urn:uuid:")]

    assert charge["status"] == "unknown" and charge["subject"] == PATIENT and charge["context"] == ENCOUNTER
    assert charge["account"] == [ACCOUNT] and charge["identifier"] == [{"value": "12345"}]
    assert charge["code"]["coding"][0] == {"code": "71045", "system": "http://www.ama-assn.org/go/cpt", "display": "Xray exam chest 1 view"}
    assert charge["occurrenceDateTime"] == "2019-11-22" and charge["enteredDate"] == "2019-11-23"
    assert charge["quantity"] == {"value": 2.0} and charge["priceOverride"] == {"value": 100.5, "currency": "USD"}
    assert named(charge["costCenter"]) | {"id": ""} == {"resourceType": "Organization", "id": "", "identifier": [{"value": "RAD-1"}], "name": "Radiology"}
    assert [r["coding"][0]["code"] for r in charge["reason"]] == ["29857009", "68235000"]
    performed, ordered = charge["performer"]
    assert named(performed["actor"])["name"][0]["family"] == "Smith" and "function" not in performed
    assert named(ordered["actor"])["name"][0]["family"] == "House" and ordered["function"]["coding"][0]["code"] == "OP"
    assert named(charge["enterer"])["name"][0]["family"] == "Clerk"
    procedure = named(charge["service"][0])
    assert procedure["resourceType"] == "Procedure" and procedure["code"]["coding"][0]["code"] == "71045" and procedure["subject"] == PATIENT
    assert named(charge["performingOrganization"])["name"] == "Good Health Hospital"
    assert named(charge["requestingOrganization"])["name"] == "Ordering Clinic"
    assert named(charge["productReference"])["identifier"] == [{"value": "Item-12345"}]


def test_without_an_item_the_drug_is_the_product():
    charge, _ = charge_item(seg(FT1.removesuffix("|Item-12345^^L|Model-12345")), 4, "k", PATIENT, None, None)
    assert charge["productCodeableConcept"]["coding"][0]["code"] == "0182-1061-05" and "productReference" not in charge


def test_a_transaction_period_and_odd_money():
    """FT1-4 as a range is a period; a price in no ISO 4217 currency keeps its value only."""
    charge, _ = charge_item(seg("FT1|1|||20191122^20191124||CG|626.2|||1|120&dollars"), 4, "k", PATIENT, None, None)
    assert charge["occurrencePeriod"] == {"start": "2019-11-22", "end": "2019-11-24"} and charge["priceOverride"] == {"value": 120.0}
    assert charge["code"] == {"coding": [{"code": "626.2"}]}


def test_a_charge_needs_a_code():
    """R4 requires ChargeItem.code: without FT1-7 (or FT1-25) the segment stays unmapped, verbatim."""
    assert charge_item(seg("FT1|1|12345||20191122"), 4, "k", PATIENT, None, None) == (None, [])
    m = mapped(PID, PV1, "FT1|1|12345||20191122", kind="DFT^P03^DFT_P03")
    assert m.unmapped_segments == ["FT1"] and not of(m, "ChargeItem")


def test_dft_message():
    """DFT^P03: each FT1 a ChargeItem on the patient's account and visit, a PRT after it one of its performers."""
    m = mapped(PID, PV1, FT1, "PRT||AD||PP|88^Doc^Dina", "FT1|2|||20191122|20191122|CG|626.2|||1|120&USD", kind="DFT^P03^DFT_P03")
    assert m.unmapped_segments == []
    first, second = of(m, "ChargeItem")
    account, encounter = of(m, "Account")[0], of(m, "Encounter")[0]
    assert first["account"] == second["account"] == [ref_to(account)] and first["context"] == ref_to(encounter)
    assert by_ref(m, first["performer"][-1]["actor"])["code"][0]["coding"][0]["code"] == "PP"
    assert second["code"] == {"coding": [{"code": "626.2"}]} and "performer" not in second


def test_a_drug_charge_is_for_a_medication_dispense():
    """FT1-29 NDC code: a MedicationDispense of the drug the charge is for (a service beside the procedure), with
    FT1-42 the prescription number (a logical reference) and FT1-43 the NDC quantity; no NDC, no dispense."""
    charge, related = charge_item(seg(FT1 + "|||||||PN-12345|5^385049006&Capsule&SCT"), 4, "FAC|M1", PATIENT, ENCOUNTER, None)
    dispense = next(r for r in related if r["resourceType"] == "MedicationDispense")
    assert charge["service"][1] == ref_to(dispense)
    assert dispense["status"] == "unknown" and dispense["subject"] == PATIENT and dispense["context"] == ENCOUNTER
    assert dispense["medicationCodeableConcept"]["coding"][0]["code"] == "0182-1061-05"
    assert dispense["quantity"] == {"value": 5.0, "unit": "Capsule", "code": "385049006", "system": "http://snomed.info/sct"}
    prescription = dispense["authorizingPrescription"][0]
    assert prescription["type"] == "MedicationRequest" and prescription["identifier"]["value"] == "PN-12345"
    charge, related = charge_item(seg("FT1|1|||20191122||CG|71045^Xray^C4"), 4, "k", PATIENT, None, None)
    assert not [r for r in related if r["resourceType"] == "MedicationDispense"] and "service" not in charge
    m = mapped(PID, PV1, FT1, kind="DFT^P03^DFT_P03")
    assert by_ref(m, of(m, "ChargeItem")[0]["service"][1])["resourceType"] == "MedicationDispense"
