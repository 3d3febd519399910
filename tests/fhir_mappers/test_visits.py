"""PV2 -> Encounter details; PV1-54 -> EpisodeOfCare; DG1 -> Encounter.diagnosis and the episode's diagnoses."""

from fhir_mappers.encounter import PLANNED_END, PLANNED_START, visit_details
from fhir_mappers.episodes import episode_of_care
from tests.fhir_mappers.segments import PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

PV2 = "PV2|||140004^Chronic pharyngitis^SCT|||||20260102080000+0000|20260105||3|Checkup|12188^Hippocrates^Harold" + "|" * 12 + "2^^^3" + "|" * 13 + "C^Car^HL70430"


def test_pv2_adds_to_the_encounter():
    """PV2: 3 admit reason, 8/9 expected admit and discharge (R5 planned dates as extensions), 11 length of stay,
    13 referral source, 25 visit priority, 38 mode of arrival."""
    encounter = {"resourceType": "Encounter"}
    related = visit_details(seg(PV2), encounter)
    assert encounter["reasonCode"][0]["coding"][0]["code"] == "140004"
    assert encounter["length"] == {"value": 3.0, "unit": "d", "system": "http://unitsofmeasure.org", "code": "d"}
    assert encounter["participant"] == [{"type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                               "code": "REF", "display": "referrer"}]}], "individual": ref_to(related[0])}]
    assert related[0]["name"][0]["family"] == "Hippocrates"
    assert [c["code"] for c in encounter["priority"]["coding"]] == ["UR", "EL"]
    assert encounter["extension"] == [
        {"url": PLANNED_START, "valueDateTime": "2026-01-02T08:00:00+00:00"}, {"url": PLANNED_END, "valueDateTime": "2026-01-05"},
        {"url": "http://hl7.org/fhir/StructureDefinition/encounter-modeOfArrival",
         "valueCoding": {"code": "C", "system": "http://terminology.hl7.org/CodeSystem/v2-0430", "display": "Car"}}]
    empty = {"resourceType": "Encounter"}
    assert visit_details(seg("PV2"), empty) == [] and empty == {"resourceType": "Encounter"}


def test_pv2_only_joins_the_mapped_visit():
    """A PV2 after the PV1 that made the Encounter is mapped; one with no PV1 before it stays unmapped."""
    m = mapped(PID, PV1, PV2)
    assert "PV2" not in m.unmapped_segments and of(m, "Encounter")[0]["reasonCode"][0]["coding"][0]["code"] == "140004"
    assert mapped(PID, PV2).unmapped_segments == ["PV2"]


def test_episode_of_care_with_the_visit_diagnoses():
    """PV1-54 is the episode; each DG1 is an Encounter diagnosis (DG1-6 A: admission, F: discharge; DG1-15 rank) and
    one of the episode's."""
    pv1 = PV1 + "|" * 35 + "EOC124^^^EP&2.16.1&ISO^MR"
    m = mapped(PID, pv1, "DG1|1||I10^Hypertension^I10|||A|||||||||1", "DG1|2||E11^Diabetes^I10|||F", "DG1|3||R05^Cough^I10|||W")
    encounter, episode = of(m, "Encounter")[0], of(m, "EpisodeOfCare")[0]
    first, second, third = of(m, "Condition")
    assert episode["identifier"][0]["value"] == "EOC124" and episode["status"] == "active" and episode["patient"] == encounter["subject"]
    assert by_ref(m, episode["identifier"][0]["assigner"])["identifier"][1]["value"] == "urn:oid:2.16.1"
    assert encounter["episodeOfCare"] == [ref_to(episode)]
    uses = [(d["condition"], d.get("use", {}).get("coding", [{}])[0].get("code"), d.get("rank")) for d in encounter["diagnosis"]]
    assert uses == [(ref_to(first), "AD", 1), (ref_to(second), "DD", None), (ref_to(third), None, None)]
    assert [d.get("role") for d in episode["diagnosis"]] == [d.get("use") for d in encounter["diagnosis"]]
    assert episode_of_care(seg(PV1), PATIENT, []) == (None, [])
