"""RF1 -> ServiceRequest for the referral."""

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
