"""OBX with an ED or RP value -> a DiagnosticReport presenting the document or image (R4 Observations hold none)."""

from fhir_mappers.results import attachment, attachment_report
from tests.fhir_mappers.segments import ENCOUNTER, PATIENT, PID, PV1, by_ref, mapped, of, ref_to, seg

ED = "OBX|2|ED|THUMB^Thumbnail Image^L|1|^IM^JPEG^Base64^VGhpcyBpcyBh||||||S|||20210223093000+0000"
RP = r"OBX|1|RP|SLIDE^Digital Slide^L|1|http://host/view?case=1\T\slide=40^PACS^IM^MRXS||||||F"
ORC = "ORC|SC|ORD-1^EPC"
OBR = "OBR|1|ORD-1^EPC||SCAN^Scan Slide^L|||20210223||||||||||||||||||F"


def test_attachments():
    """ED: type of data (table 0191) and subtype as the MIME type, the data (base64, encoded when sent as text);
    RP: the pointer as url."""
    assert attachment("ED", "^IM^JPEG^Base64^VGhpcyBpcyBh") == {"contentType": "image/jpeg", "data": "VGhpcyBpcyBh"}
    assert attachment("ED", "^TEXT^PLAIN^A^hello") == {"contentType": "text/plain", "data": "aGVsbG8="}
    assert attachment("ED", "^application^pdf^Base64^") == {"contentType": "application/pdf"}
    assert attachment("RP", r"http://host/view?a=1\T\b=2^PACS^IM^MRXS") == {"contentType": "image/mrxs", "url": "http://host/view?a=1&b=2"}


def test_attachment_report():
    """OBX-3 code, -5 presentedForm, -11 status (table 0085), -14 effective."""
    report = attachment_report(seg(ED), 5, "FAC|M1", PATIENT, ENCOUNTER, "2020-01-01")
    assert report["code"]["coding"][0]["code"] == "THUMB" and report["status"] == "partial"
    assert report["subject"] == PATIENT and report["encounter"] == ENCOUNTER
    assert report["effectiveDateTime"] == "2021-02-23T09:30:00+00:00"
    assert report["presentedForm"] == [{"contentType": "image/jpeg", "data": "VGhpcyBpcyBh"}]
    bare = attachment_report(seg("OBX|1|ED"), 5, "k", None, None, None)
    assert bare["status"] == "unknown" and bare["code"] == {"text": "unknown report"} and "presentedForm" not in bare


def test_attachment_obx_in_an_order_is_a_report_not_an_observation():
    """Based on the order's ServiceRequest like the OBR's own report; a PRT after it names its performer."""
    prt = "PRT||AD||AD^Admitting Provider^HL70912|1134^Aly^Zafar"
    m = mapped(PID, PV1, ORC, OBR, "OBX|1|NM|8867-4^heartrate^LN||60|/min|||||F", RP, ED, prt, kind="OUL^R22^OUL_R22")
    reports = of(m, "DiagnosticReport")
    assert [r["code"]["coding"][0]["code"] for r in reports] == ["SLIDE", "THUMB", "SCAN"]
    assert [o["code"]["coding"][0]["code"] for o in of(m, "Observation")] == ["8867-4"]
    request = of(m, "ServiceRequest")[0]
    assert all(r["basedOn"] == [ref_to(request)] for r in reports)
    assert reports[0]["presentedForm"][0]["url"] == "http://host/view?case=1&slide=40"
    assert by_ref(m, reports[1]["performer"][0])["resourceType"] == "PractitionerRole"
    assert reports[2]["result"] == [ref_to(of(m, "Observation")[0])]


def test_a_txa_in_a_lab_message_leaves_its_obx_results():
    """Only in an MDM are the OBX the lines of the document; elsewhere a TXA is a DocumentReference beside the results."""
    txa = "TXA|1|DIS||20101110||20101103"
    m = mapped(PID, PV1, ORC, OBR, txa, "OBX|1|NM|8867-4^heartrate^LN||60|/min|||||F", kind="OUL^R22^OUL_R22")
    assert len(of(m, "Observation")) == 1 and len(of(m, "DocumentReference")) == 1
    m = mapped(PID, PV1, txa, "OBX|1|TX|||Discharge note line", kind="MDM^T02^MDM_T02")
    assert not of(m, "Observation") and len(of(m, "DocumentReference")) == 1


def test_corrupt_base64_is_kept_as_sent_not_published():
    """ED data said to be Base64 that does not decode makes no Attachment (the Bundle would not validate); OBX-5 goes
    to the unmapped report, kept as sent on the MessageHeader."""
    m = mapped(PID, "OBR|1|P1||X^Y", "OBX|1|ED|X^Doc||^application^pdf^Base64^JVB@@ERi0x||||||F", kind="ORU^R01^ORU_R01")
    assert not any("presentedForm" in r for r in of(m, "DiagnosticReport")) and m.unmapped_fields == ["OBX-5"]
