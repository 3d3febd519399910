"""The PID and PV1 mappers' cache (message.SegmentCache): a message whose patient or visit was seen before maps exactly
as it would have as the first, and what later steps add to one message's Patient or Encounter reaches no other."""

import json
import random

from clinstream.synthetic import generate
from fhir_mappers import datatypes, hl7v2_to_fhir, message
from tests.fhir_mappers.segments import MSH, PID, PV1, by_ref, mapped, of
from tests.fhir_mappers.test_participants import PRT, ROL


def as_text(raw: bytes | str) -> str:
    m = hl7v2_to_fhir(raw)
    return json.dumps([m.bundle, m.unmapped_segments, m.unmapped_fields, m.patient_key, m.encounter_key, m.sent_at])


def test_warm_mapping_is_the_fresh_mapping():
    """Each message mapped with every cache empty, then all of them twice over in shuffled orders with the caches
    warm: the same Bundles and unmapped reports, byte for byte, while most PIDs and PV1s were hits."""
    raw = [m.value for m in generate(400, seed=11).messages if m.topic == "hl7v2"]
    expected = []
    for r in raw:
        datatypes.clear_caches()
        expected.append(as_text(r))
    datatypes.clear_caches()
    order = list(range(len(raw))) * 2
    random.Random(5).shuffle(order)
    for i in order:
        assert as_text(raw[i]) == expected[i], f"message {i} differs once its patient or visit was cached"
    assert len(message._PATIENTS._entries) < len(raw) / 2  # the feed repeats its patients: the cache was used


def test_what_one_message_adds_to_a_cached_patient_stays_in_it():
    """A ROL after PD1 makes a general practitioner of the Patient, a PRT after PV1 a participant of the Encounter: the
    next message with the same PID and PV1 and neither segment has neither, and the first one mapped again has both."""
    datatypes.clear_caches()
    with_roles = mapped(PID, "PD1", ROL, PV1, PRT)
    plain = mapped(PID, "PD1", PV1)
    again = mapped(PID, "PD1", ROL, PV1, PRT)
    assert "generalPractitioner" in of(with_roles, "Patient")[0] and "generalPractitioner" not in of(plain, "Patient")[0]
    participants = len(of(with_roles, "Encounter")[0].get("participant", []))
    assert len(of(plain, "Encounter")[0].get("participant", [])) == participants - 1
    assert json.dumps(again.bundle) == json.dumps(with_roles.bundle)


def test_one_cached_visit_serves_each_event_with_its_status():
    """The PV1 is cached without the event, whose status is set on every call: admitted, then discharged (A03), then
    updated (A08) with the same PV1."""
    datatypes.clear_caches()
    statuses = [of(mapped(PID, PV1, kind=f"ADT^{event}^ADT_A01"), "Encounter")[0]["status"] for event in ("A01", "A03", "A08")]
    assert statuses == ["in-progress", "finished", "in-progress"]


def test_unmapped_fields_of_a_cached_segment_are_reported_again():
    """A PID field no mapper reads is reported on every message, not only the one that filled the cache."""
    datatypes.clear_caches()
    pid = PID + "||||||||||||||||||||||||||extra-field-62"
    reports = [hl7v2_to_fhir("\r".join([MSH.format(kind="ADT^A08^ADT_A01"), pid, PV1])).unmapped_fields for _ in range(2)]
    assert reports[0] == reports[1] and any(name.startswith("PID-") for name in reports[0])


def test_a_shared_resource_another_segment_adds_to_is_copied_not_changed():
    """The attending doctor of a cached PV1 is a final, shared Practitioner; a PRT naming the same doctor with an
    address adds it to this message's copy, and the next message with the PV1 alone has a doctor without one."""
    datatypes.clear_caches()
    doctor = "1001^Adams^Helen^^^Dr"
    pv1 = "PV1|1|I|4W^401^A^FAC||||" + doctor + "||||||||||||V100^^^FAC^VN"
    prt = "PRT|1|AD||AT^Attending Provider^HL70912|" + doctor + "|||||||||1 Main St^^Springfield^IL"
    first, with_address, alone = mapped(PID, pv1), mapped(PID, pv1, prt), mapped(PID, pv1)
    assert [len(of(m, "Practitioner")) for m in (first, with_address, alone)] == [1, 1, 1]
    assert of(with_address, "Practitioner")[0]["address"][0]["city"] == "Springfield"
    assert "address" not in of(alone, "Practitioner")[0] and of(alone, "Practitioner")[0] == of(first, "Practitioner")[0]


def test_message_parties_and_the_sending_application_are_shared_and_final():
    """MSH-4/6 Organizations and the MSH-3 Device are kept final and shared by the Bundles of one sender (a change raises
    rather than reach another Bundle); MSH-17 reaches the sender, and where no sender takes it, it is reported unmapped
    on every message, as on the first."""
    datatypes.clear_caches()
    msh = "MSH|^~\\&|APP|FAC^1.2.3^ISO|RCV|RFAC|20260101103000+0000||ADT^A01^ADT_A01|M{n}|P|2.8|||||USA"
    first, second = (hl7v2_to_fhir("\r".join([msh.format(n=n), PID, PV1])) for n in (1, 2))
    def parties(m):
        header = m.bundle["entry"][0]["resource"]
        return [by_ref(m, header["sender"]), by_ref(m, header["destination"][0]["receiver"]), *of(m, "Device")]

    assert len(parties(first)) == 3 and [id(r) for r in parties(first)] == [id(r) for r in parties(second)]
    sender = parties(first)[0]
    assert sender["address"] == [{"country": "USA"}]
    try:
        sender["name"] = "changed"
    except TypeError:
        pass
    else:
        raise AssertionError("a shared sender Organization could be changed")
    no_sender = "MSH|^~\\&|APP||RCV|RFAC|20260101103000+0000||ADT^A01^ADT_A01|M3|P|2.8|||||USA"
    reports = [hl7v2_to_fhir("\r".join([no_sender, PID, PV1])).unmapped_fields for _ in range(2)]
    assert reports[0] == reports[1] and "MSH-17" in reports[0]
