"""RF1 -> ServiceRequest for the referral; PRD -> the PractitionerRoles of its providers."""

from fhir_mappers.providers import provider
from fhir_mappers.referrals import referral
from tests.fhir_mappers.segments import ENCOUNTER, PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

RF1 = ("RF1|P^Pending^HL70283|A^ASAP^HL70280|Med^Medical^HL70281||O^Outpatient^HL70284|R-100^EPIC|20220125|20220210|"
       "20220124093000+0000|R-1^Back pain^C4|X-9^EXT~X-10^EXT|||Patient has a spinal fracture|||||Radiant Health^L^9|"
       "12131^McWilliams^Paul||||Check for metastatic disease")


def test_referral_is_a_service_request():
    """RF1: 1 status, 2 priority, 3/5 categories, 6/11 ids, 7/8 the period it may be acted on, 9 authored,
    10 reason with 14 as its text, 19/20 performers, 24 note."""
    request, related = referral(seg(RF1), 3, "FAC|M1", PATIENT, ENCOUNTER)
    assert request["status"] == "on-hold" and request["intent"] == "order" and request["priority"] == "asap"
    assert request["subject"] == PATIENT and request["encounter"] == ENCOUNTER
    assert [c["coding"][0]["code"] for c in request["category"]] == ["3457005", "Med", "O"]
    assert [i["value"] for i in request["identifier"]] == ["R-100", "X-9", "X-10"]
    assert request["occurrencePeriod"] == {"start": "2022-01-25", "end": "2022-02-10"}
    assert request["authoredOn"] == "2022-01-24T09:30:00+00:00"
    assert request["reasonCode"] == [{"coding": [{"code": "R-1", "system": "http://www.ama-assn.org/go/cpt", "display": "Back pain"}],
                                      "text": "Patient has a spinal fracture"}]
    assert request["performer"] == [ref_to(r) for r in related]
    assert [r["resourceType"] for r in related] == ["Organization", "Practitioner"] and related[0]["name"] == "Radiant Health"
    assert request["note"] == [{"text": "Check for metastatic disease"}]


def test_referral_statuses():
    """Accepted is active; rejected, expired and cancelled revoke the referral; anything else is unknown."""
    statuses = {code: referral(seg(f"RF1|{code}"), 1, "k", PATIENT, None)[0]["status"] for code in ("A", "R", "E", "C", "Q", "")}
    assert statuses == {"A": "active", "R": "revoked", "E": "revoked", "C": "revoked", "Q": "unknown", "": "unknown"}
    bare, _ = referral(seg("RF1|A|||||||||||||Knee pain"), 1, "k", PATIENT, None)
    assert bare["reasonCode"] == [{"text": "Knee pain"}] and "performer" not in bare


def test_ref_message_puts_rf1_before_the_patient():
    """REF^I12 sends RF1 before PID: the referral is still about that patient and is not left unmapped."""
    m = mapped(RF1, PID, PV1, kind="REF^I12^REF_I12")
    request = next(r for r in of(m, "ServiceRequest") if r.get("note"))
    assert by_ref(m, request["subject"])["resourceType"] == "Patient" and "RF1" not in m.unmapped_segments
    assert mapped(RF1, kind="REF^I12^REF_I12").unmapped_segments == ["RF1"]  # no patient to refer


PRD_RP = ("PRD|RP^Referring Provider^HL70286|POWELL^ROBERT^^^DR^MD|1031 HEALTHCARE DRIVE^^ANN ARBOR^MI^99999|"
          "^^^GENERAL FACILITY|^WPN^PH^^^626^5551234||PLN1001^SL^MI^20240112|20200112|20240112|GOOD HEALTH HOSPITAL|"
          "1031 HEALTHCARE DRIVE^^ANN ARBOR^MI^99999||^WPN^PH^^^626^5557889")
PRD_RT = "PRD|RT^Referred to Provider^HL70286|McWILLIAMS^PAUL|||||PLN5010^SL^^20241012"


def test_provider_data_is_a_practitioner_role():
    """PRD: 1 role (table 0286), 2/3/7 the Practitioner (name, its XPN-6 degree a suffix, address, PLN identifier: type
    in table 0338, expiry as period end), 4 location, 5 the role's telecom, 8/9 period, 10/11/13 the provider's
    Organization."""
    actor, named = provider(seg(PRD_RP), "FAC")
    assert actor["code"][0]["coding"][0] == {"code": "RP", "system": "http://terminology.hl7.org/CodeSystem/v2-0286", "display": "Referring Provider"}
    assert actor["period"] == {"start": "2020-01-12", "end": "2024-01-12"}
    assert actor["telecom"] == [{"system": "phone", "value": "(626) 5551234", "use": "work"}]
    kinds = {r["resourceType"]: r for r in named}
    assert set(kinds) == {"PractitionerRole", "Practitioner", "Organization", "Location"} and kinds["PractitionerRole"] is actor
    doctor = kinds["Practitioner"]
    assert actor["practitioner"] == ref_to(doctor) and doctor["name"] == [{"family": "POWELL", "given": ["ROBERT"], "suffix": ["MD"], "prefix": ["DR"]}]
    assert doctor["identifier"] == [{"value": "PLN1001", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0338", "code": "SL"}]},
                                     "period": {"end": "2024-01-12"}}]
    assert doctor["address"][0]["city"] == "ANN ARBOR"
    org = kinds["Organization"]
    assert actor["organization"] == ref_to(org) and org["name"] == "GOOD HEALTH HOSPITAL"
    assert org["address"][0]["line"] == ["1031 HEALTHCARE DRIVE"] and org["telecom"][0]["value"] == "(626) 5557889"
    assert actor["location"] == [ref_to(kinds["Location"])] and kinds["Location"]["name"] == "GENERAL FACILITY"
    assert provider(seg("PRD|RP^Referring Provider^HL70286"), "FAC") == (None, [])  # names nobody


def test_ref_message_joins_its_providers_to_the_referral():
    """The referring provider is the referral's requester, the referred-to provider one of its performers, a primary
    care provider the patient's general practitioner; no PRD stays unmapped, one naming nobody does."""
    m = mapped(RF1, PRD_RP, PRD_RT, "PRD|PP^Primary Care Provider^HL70286|Family^Fred", PID, PV1, kind="REF^I12^REF_I12")
    assert m.unmapped_segments == []
    request = next(r for r in of(m, "ServiceRequest") if r.get("note"))
    requester = by_ref(m, request["requester"])
    assert requester["code"][0]["coding"][0]["code"] == "RP" and by_ref(m, requester["practitioner"])["name"][0]["family"] == "POWELL"
    performers = [by_ref(m, p) for p in request["performer"]]
    assert [p["resourceType"] for p in performers] == ["Organization", "Practitioner", "PractitionerRole"]  # RF1-19/20, then the PRD
    assert by_ref(m, performers[2]["practitioner"])["identifier"][0]["value"] == "PLN5010"
    gp = by_ref(m, of(m, "Patient")[0]["generalPractitioner"][0])
    assert gp["code"][0]["coding"][0]["code"] == "PP" and by_ref(m, gp["practitioner"])["name"][0]["family"] == "Family"
    assert mapped(RF1, "PRD|RT", PID, kind="REF^I12^REF_I12").unmapped_segments == ["PRD"]
