"""Fields no mapper reads are kept on the MessageHeader and listed in `unmapped_fields`: nothing is dropped silently."""

from fhir_mappers import hl7v2_to_fhir
from fhir_mappers.header import UNMAPPED_EXTENSION, UNMAPPED_FIELD_EXTENSION
from tests.conftest import corpus
from tests.fhir_mappers.segments import PID, mapped

PID_WITH_EXTRA = PID + "|" * 15 + "|HOSP^Main"  # PID-34, last update facility: the guide maps it nowhere


def kept_fields(m) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for ext in m.bundle["entry"][0]["resource"].get("extension", []):
        if ext["url"].startswith(UNMAPPED_FIELD_EXTENSION + ":"):
            found.setdefault(ext["url"].rpartition(":")[2], []).append(ext["valueString"])
    return found


def test_a_field_no_mapper_reads_is_reported_and_kept_as_sent():
    m = mapped(PID_WITH_EXTRA)
    assert m.unmapped_fields == ["PID-34"]
    assert kept_fields(m) == {"PID-34": ["HOSP^Main"]}


def test_set_ids_separators_and_read_fields_are_not_reported():
    """PID-1/PV1-1 (Set IDs) and MSH-1/2 carry nothing to map; every field the test segments carry is read."""
    assert mapped(PID, "PV1|1|I|4W^401^A^FAC").unmapped_fields == []


def test_a_segment_kept_verbatim_is_not_reported_field_by_field():
    m = mapped(PID, "RGS|1|A|G1", kind="SIU^S12^SIU_S12")
    assert m.unmapped_segments == ["RGS"] and not [f for f in m.unmapped_fields if f.startswith("RGS")]
    assert any(e["url"] == UNMAPPED_EXTENSION and e["valueString"] == "RGS|1|A|G1"
               for e in m.bundle["entry"][0]["resource"]["extension"])


def test_a_value_repeated_in_repeated_segments_is_kept_once():
    obx = "OBX|{n}|TX|11506-3^Progress note^LN|1|line {n}||||||F"
    m = mapped(PID, "TXA|1|PN|TX|20260101", *(obx.format(n=n) for n in (1, 2, 3)), kind="MDM^T02^MDM_T02")
    assert kept_fields(m)["OBX-3"] == ["11506-3^Progress note^LN"]
    assert m.unmapped_fields.count("OBX-3") == 1


def test_an_evn_event_that_contradicts_msh9_is_reported():
    assert "EVN-1" not in mapped("EVN|A01|20260101", PID).unmapped_fields
    assert "EVN-1" in mapped("EVN|A08|20260101", PID).unmapped_fields


def test_the_report_does_not_depend_on_what_the_caches_hold():
    """Mappers cache values by their text, after reading the field: mapping a message again (caches warm) reports the
    same fields. And every reported field of the corpus is kept, with its text, on the MessageHeader."""
    paths = sorted((corpus("hl7v2") / "messages").glob("*.hl7"))
    first = {p.name: hl7v2_to_fhir(p.read_bytes()) for p in paths}
    for p in paths:
        again = hl7v2_to_fhir(p.read_bytes())
        assert again.unmapped_fields == first[p.name].unmapped_fields, p.name
        assert set(kept_fields(again)) == set(again.unmapped_fields), p.name
    assert sum(len(m.unmapped_fields) for m in first.values()) > 100  # the corpus sends far more than anyone maps


def test_a_field_read_but_of_no_use_goes_back_to_the_report():
    """MSH-19 is the MessageHeader's language when it is a language tag; anything else is reported, not dropped."""
    base = "MSH|^~\\&|APP|FAC|RCV|RFAC|20260101103000+0000||ADT^A01^ADT_A01|M1|P|2.8" + "|" * 6
    english = hl7v2_to_fhir(base + "|en-US\r" + PID)
    assert english.bundle["entry"][0]["resource"]["language"] == "en-US" and "MSH-19" not in english.unmapped_fields
    garbled = hl7v2_to_fhir(base + "|English (US)\r" + PID)
    assert "language" not in garbled.bundle["entry"][0]["resource"] and "MSH-19" in garbled.unmapped_fields
    assert kept_fields(garbled)["MSH-19"] == ["English (US)"]


def test_msh17_is_the_senders_country():
    base = "MSH|^~\\&|APP|FAC^1.2.3^ISO|RCV|RFAC|20260101103000+0000||ADT^A01^ADT_A01|M1|P|2.8" + "|" * 4
    m = hl7v2_to_fhir(base + "|USA\r" + PID)
    header = m.bundle["entry"][0]["resource"]
    sender = next(e["resource"] for e in m.bundle["entry"] if e["fullUrl"] == header["sender"]["reference"])
    assert sender["address"] == [{"country": "USA"}] and "MSH-17" not in m.unmapped_fields


def test_a_code_outside_the_mappers_table_is_reported():
    """PID-8 'Z' and OBX-11 'Q' map to nothing a mapper knows: reported, kept as sent, where they vanished before."""
    m = mapped(PID.replace("|F|", "|Z|"), "OBR|1|P1||X^Y", "OBX|1|NM|8867-4^Heart rate^LN||80|/min|||||Q", kind="ORU^R01^ORU_R01")
    assert "gender" not in m.bundle["entry"][1]["resource"]
    assert {"PID-8", "OBX-11"} <= set(m.unmapped_fields) and kept_fields(m)["OBX-11"] == ["Q"]
