"""MSH and EVN -> Provenance of everything the message made."""

from fhir_mappers.parse import parse_er7
from fhir_mappers.provenance import event_provenance, message_provenance
from tests.fhir_mappers.segments import PID, PV1, by_ref, mapped, of, seg

EVN = "EVN|A01|20260101102500+0000||01^Patient request^HL70062|OP1^Oper^Olga|20260101100000+0000|WARD^2.16.9^ISO"
SFT = "SFT|Acme Soft|3.1|Bridge|B77"
TARGETS = [{"resourceType": "Patient", "id": "p"}]


def msh(stamp: str):
    return parse_er7(f"MSH|^~\\&|APP|FAC|R|RF|{stamp}||ADT^A01^ADT_A01|M1|P|2.8")[0]


def test_message_provenance_names_the_sender_the_application_and_everything_made():
    """MSH-7 is when, MSH-4's Organization the author, MSH-3's Device the source, SFT software an assembler;
    the target is every other entry of the Bundle."""
    m = mapped(EVN, PID, PV1, SFT)
    source = next(p for p in of(m, "Provenance") if "entity" in p)
    assert source["recorded"] == source["occurredDateTime"] == "2026-01-01T10:30:00+00:00"
    author, assembler = source["agent"]
    assert author["type"]["coding"][0]["code"] == "author"
    assert author["who"] == m.bundle["entry"][0]["resource"]["sender"]
    application = by_ref(m, source["entity"][0]["what"])
    assert source["entity"][0]["role"] == "source" and application["identifier"][0] == {"value": "APP"}
    assert application["owner"] == author["who"]
    program = by_ref(m, assembler["who"])
    assert assembler["type"]["coding"][0]["code"] == "assembler"
    assert (program["deviceName"], program["version"], program["modelNumber"], program["manufacturer"]) == (
        [{"name": "Bridge", "type": "manufacturer-name"}], [{"value": "3.1"}], "B77", "Acme Soft")
    event = next(p for p in of(m, "Provenance") if "entity" not in p)
    agents = {a["who"]["reference"] for p in (source, event) for a in p["agent"]} | {source["entity"][0]["what"]["reference"],
                                                                                   event["location"]["reference"], program["owner"]["reference"]}
    agents -= {author["who"]["reference"]}  # the sender is also the MessageHeader's: made from MSH, so a target
    made = {e["fullUrl"] for e in m.bundle["entry"] if e["resource"]["resourceType"] != "Provenance"} - agents
    assert {t["reference"] for t in source["target"]} == {t["reference"] for t in event["target"]} == made
    assert {by_ref(m, t)["resourceType"] for t in source["target"]} >= {"MessageHeader", "Patient", "Encounter", "Location"}
    assert source["activity"] == {"text": "ADT^A01^ADT_A01", "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0003", "code": "A01"}]}
    assert "SFT" not in m.unmapped_segments


def test_event_provenance_records_the_operator_reason_and_facility():
    """EVN-2 recorded, EVN-4 reason as a v3 ActReason, EVN-5 the enterer, EVN-6 occurred, EVN-7 the facility's Location."""
    m = mapped(EVN, PID, PV1)
    event = next(p for p in of(m, "Provenance") if "entity" not in p)
    assert event["recorded"] == "2026-01-01T10:25:00+00:00" and event["occurredDateTime"] == "2026-01-01T10:00:00+00:00"
    assert event["reason"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "PATRQT",
                                            "display": "patient requested"}]}]
    assert event["agent"][0]["type"]["coding"][0]["code"] == "enterer"
    assert by_ref(m, event["agent"][0]["who"])["name"][0] == {"family": "Oper", "given": ["Olga"]}
    place = by_ref(m, event["location"])
    assert place["name"] == "WARD" and place["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.9"}]


def test_a_reason_without_an_act_reason_stays_in_table_0062():
    provenance, _ = event_provenance(seg("EVN|A01|20260101102500+0000||02|OP1^Oper"), msh("20260101103000"), "A01", "k", "FAC", TARGETS, None)
    assert provenance["reason"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0062", "code": "02"}]}]


def test_without_an_operator_the_sending_system_recorded_the_event():
    sender = {"resourceType": "Organization", "id": "o"}
    provenance, named = event_provenance(seg("EVN|A01|20260101102500"), msh("20260101103000"), "A01", "k", "FAC", TARGETS, sender)
    assert provenance["agent"] == [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                                                         "code": "author"}]}, "who": {"reference": "urn:uuid:o"}}]
    assert named == [] and "reason" not in provenance and "location" not in provenance
    assert event_provenance(seg("EVN|A01|20260101102500"), msh("20260101103000"), "A01", "k", "FAC", TARGETS, None) == (None, [])


def test_no_provenance_without_an_instant_or_an_agent():
    """R4 requires Provenance.recorded (an instant, so a time with seconds and offset) and an agent."""
    sender = {"resourceType": "Organization", "id": "o"}
    assert message_provenance(msh("20260101"), "A01", "k", TARGETS, sender, None, []) is None
    assert message_provenance(msh("20260101103000"), "A01", "k", TARGETS, None, None, []) is None
    assert message_provenance(msh("20260101103000"), "A01", "k", TARGETS, sender, None, [])["recorded"] == "2026-01-01T10:30:00+00:00"
