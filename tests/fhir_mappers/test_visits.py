"""PV2 -> Encounter details; PV1-54 -> EpisodeOfCare; DG1 -> Encounter.diagnosis and the episode's diagnoses."""

from fhir_mappers.encounter import PLANNED_END, PLANNED_START, encounter as map_encounter, visit_details, visit_status
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


def _pv1(**fields: str) -> str:
    values = [""] * 53
    values[0] = "PV1"
    for name, value in fields.items():
        values[int(name[1:])] = value
    return "|".join(values).rstrip("|")


def test_pv1_fields_the_guide_maps_onto_the_encounter():
    """PV1-4 type (table 0007), -5 pre-admission id with its authority, -9 consulting and -52 other providers, -10 service,
    -13 re-admission (table 0092), -14 admit source, -16 VIP, -19 visit number typed VN with its assigner, -36 discharge
    disposition, -37 discharged-to Location, -38 diet, -50 alternate visit id."""
    pv1 = _pv1(f2="I", f4="E", f5="PRE1^^^T&2.16.1&ISO^ANON", f9="C8^Cole^Lee", f10="SUR", f13="R", f14="Home", f16="VIP^Very Important",
               f19="V9^^^H&2.16.2&ISO^VN", f36="01^Home^L", f37="22&Homes&FDK", f38="VEG^Vegetarian", f50="ALT5^^^H^AN", f52="O1^Other^Olga")
    enc, related = map_encounter(seg(pv1), "A08", "FAC", "k", {"resourceType": "Patient", "id": "p"})
    by_id = {f"urn:uuid:{r['id']}": r for r in related}
    assert enc["type"] == [{"coding": [{"code": "E", "system": "http://terminology.hl7.org/CodeSystem/v2-0007"}]}]
    assert enc["serviceType"] == {"coding": [{"code": "SUR"}]}
    stay = enc["hospitalization"]
    assert stay["preAdmissionIdentifier"]["value"] == "PRE1" and stay["preAdmissionIdentifier"]["type"]["coding"][0]["code"] == "ANON"
    assert by_id[stay["preAdmissionIdentifier"]["assigner"]["reference"]]["identifier"][1]["value"] == "urn:oid:2.16.1"
    assert stay["reAdmission"] == {"coding": [{"code": "R", "system": "http://terminology.hl7.org/CodeSystem/v2-0092"}]}
    assert stay["admitSource"] == {"coding": [{"code": "Home"}]} and stay["specialCourtesy"][0]["coding"][0]["code"] == "VIP"
    assert stay["dischargeDisposition"]["coding"][0]["code"] == "01" and stay["dietPreference"][0]["coding"][0]["code"] == "VEG"
    destination = by_id[stay["destination"]["reference"]]
    assert destination["resourceType"] == "Location" and destination["name"] == "Homes" and destination["identifier"] == [{"value": "22"}]
    visit, alternate = enc["identifier"]
    assert visit["value"] == "V9" and visit["type"]["coding"][0]["code"] == "VN" and visit["assigner"]["reference"] in by_id
    assert alternate["value"] == "ALT5" and alternate["type"]["coding"][0]["code"] == "AN"
    roles = {p["type"][0]["coding"][0]["code"]: by_id[p["individual"]["reference"]]["name"][0]["family"] for p in enc["participant"]}
    assert roles == {"CON": "Cole", "PART": "Other"}


def test_encounter_status_from_event_discharge_time_and_class():
    """Finished once discharged (PV1-45 or A03); cancelled on A11/A27/A38; in progress on events placing the patient in
    the facility; otherwise PV1-2 through the guide's map (P planned, U unknown, others in progress)."""
    assert visit_status(seg(_pv1(f2="P", f45="20260102")), "A08") == "finished"
    assert visit_status(seg(_pv1(f2="I")), "A11") == "cancelled"
    assert visit_status(seg(_pv1(f2="P")), "A02") == "in-progress"
    assert visit_status(seg(_pv1(f2="P", f44="20260101")), "P01") == "planned"
    assert visit_status(seg(_pv1(f2="I")), "T02") == "in-progress"
    assert visit_status(seg(_pv1(f2="U")), "A08") == "unknown"
    assert visit_status(seg(_pv1()), "A08") == "unknown"


def test_encounter_is_billed_to_the_pid18_account():
    """The Account PID-18 makes is Encounter.account."""
    m = mapped(PID, PV1)
    (encounter,), (account,) = of(m, "Encounter"), of(m, "Account")
    assert encounter["account"] == [ref_to(account)]


def test_pv2_prior_pending_location_is_a_planned_encounter_location():
    """PV2-1 -> Encounter.location with status planned (guide's PV2[Encounter]), its Location chain among the resources."""
    encounter = {"resourceType": "Encounter"}
    related = visit_details(seg("PV2|^ROOM1^BED1^FACILITY1"), encounter, "FAC")
    by_id = {f"urn:uuid:{r['id']}": r for r in related}
    (place,) = encounter["location"]
    assert place["status"] == "planned" and by_id[place["location"]["reference"]]["name"] == "BED1"
    assert [r["name"] for r in related] == ["FACILITY1", "ROOM1", "BED1"]
