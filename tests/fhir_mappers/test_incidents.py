"""PDA -> cause-of-death Condition, indicator Observations and Procedures; ACC -> the injury-incident Observation."""

from fhir_mappers.accidents import accident
from fhir_mappers.death import death
from tests.fhir_mappers.segments import ENCOUNTER, PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

PDA = ("PDA|I21^Acute myocardial infarction^I10|ICCU^Room1^Bed25^GHH|Y|20211102123000+0115|005454^DeathCert^Robin^B|Y|"
       "20211102103000+0115^20211102113000+0115|002324^Autopsy^John^K|N")
ACC = ("ACC|20140317|E813^Motor vehicle collision^I9C|Route 50 intersection|VA^Virginia^HL70347|Y|N|10535^Goldberg^Ludwig|"
       "vehicle accident||Y|Route 50&Fairfax^VA^^^20324||5348")


def codes(resource):
    return [c["code"] for c in resource["code"]["coding"]]


def test_death_segment():
    """PDA: 1 cause (Condition), 3/6/9 indicators (Observations, table 0136), 4/5 certification and 7/8 autopsy
    (Procedures with their performers), 2 the place (Locations, innermost last)."""
    own, shared, place = death(seg(PDA), 4, "FAC|M1", "FAC", PATIENT, ENCOUNTER)
    kinds = [(r["resourceType"], codes(r)[0]) for r in own]
    assert kinds == [("Condition", "I21"), ("Observation", "death-certificate"), ("Observation", "autopsy"),
                     ("Observation", "coroner"), ("Procedure", "death-certification"), ("Procedure", "autopsy-performed")]
    assert all(r["subject"] == PATIENT and r["encounter"] == ENCOUNTER for r in own)
    answers = [r["valueCodeableConcept"]["coding"][0]["code"] for r in own if r["resourceType"] == "Observation"]
    assert answers == ["Y", "Y", "N"]
    certification, autopsy = own[4], own[5]
    assert certification["performedDateTime"] == "2021-11-02T12:30:00+01:15" and certification["status"] == "completed"
    assert autopsy["performedPeriod"] == {"start": "2021-11-02T10:30:00+01:15", "end": "2021-11-02T11:30:00+01:15"}
    doctors = {r["name"][0]["family"]: r for r in shared if r["resourceType"] == "Practitioner"}
    assert certification["performer"][0]["actor"] == ref_to(doctors["DeathCert"])
    assert autopsy["performer"][0]["actor"] == ref_to(doctors["Autopsy"])
    assert [r["name"] for r in place] == ["GHH", "ICCU", "Room1", "Bed25"] and all(r in shared for r in place)


def test_death_indicators_only():
    """Only what the segment says is made: a bare coroner indicator is one Observation; a value outside table 0136 is text."""
    own, shared, place = death(seg("PDA||||||||| X"), 1, "k", "FAC", PATIENT, None)
    assert [codes(r) for r in own] == [["coroner"]] and own[0]["valueCodeableConcept"] == {"text": "X"}
    assert shared == place == [] and "encounter" not in own[0]


def test_accident_segment():
    """ACC: 1 effective, 2 code with 8 as its text, 3/11 a Location, 4 state and 5/6/10 indicators as components,
    7 performer, 13 identifier."""
    found, shared = accident(seg(ACC), 3, "FAC|M1", PATIENT, ENCOUNTER)
    assert codes(found) == ["injury-incident"] and found["status"] == "final" and found["encounter"] == ENCOUNTER
    assert found["effectiveDateTime"] == "2014-03-17" and found["identifier"] == [{"value": "5348"}]
    assert found["valueCodeableConcept"]["coding"][0]["code"] == "E813" and found["valueCodeableConcept"]["text"] == "vehicle accident"
    parts = {(c["code"].get("coding") or [{"code": c["code"].get("text")}])[0]["code"]: c["valueCodeableConcept"] for c in found["component"]}
    assert parts["Auto Accident State"]["coding"][0]["code"] == "VA"
    assert {k: v["coding"][0]["code"] for k, v in parts.items() if k != "Auto Accident State"} == {"AJRI": "Y", "ADI": "N", "PNI": "Y"}
    clerk, place = shared
    assert found["performer"] == [ref_to(clerk)] and clerk["name"][0]["family"] == "Goldberg"
    assert place["name"] == "Route 50 intersection"
    assert place["address"] == {"line": ["Route 50", "Fairfax", "VA"], "postalCode": "20324"}
    assert found["extension"][0]["valueReference"] == ref_to(place)
    bare, _ = accident(seg("ACC|20140317|||||||slipped on ice"), 1, "k", PATIENT, None)
    assert bare["valueString"] == "slipped on ice" and "component" not in bare and "extension" not in bare


def test_messages_map_pda_and_acc():
    """In a message both segments leave the unmapped report; the place of death is a completed Encounter location."""
    m = mapped(PID, PV1, ACC, PDA, kind="ADT^A03^ADT_A03")
    assert "PDA" not in m.unmapped_segments and "ACC" not in m.unmapped_segments
    observed = {codes(r)[0] for r in of(m, "Observation")}
    assert observed == {"injury-incident", "death-certificate", "autopsy", "coroner"}
    visit = of(m, "Encounter")[0]
    assert visit["location"][-1]["status"] == "completed" and by_ref(m, visit["location"][-1]["location"])["name"] == "Bed25"
    assert mapped(ACC, PDA, kind="BAR^P01^BAR_P01").unmapped_segments == ["ACC", "PDA"]  # no patient to belong to
