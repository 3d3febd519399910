"""Whole messages: ADT, ORU and MDM to valid FHIR R4 Bundles; bad input to precise reasons; the corpus."""

import base64
import json

import pytest

from fhir_mappers import HL7MappingError, hl7v2_to_fhir, validate_r4_bundle
from tests.conftest import corpus

MSH = "MSH|^~\\&|APP|FAC|CLINSTREAM|CLINSTREAM|20260101103000+0000||{kind}|{mid}|P|2.5.1"
PID = "PID|1||12345^^^FAC^MR~999^^^SSA^SS||Doe^Jane^A||19700412|F|||1 Oak St^^Springfield^IL^62701||^PRN^PH^^1^555^1234567"
PV1 = "PV1|1|I|4W^401^A^FAC|||||1001^Adams^Helen^^^Dr|||||||||||V100^^^FAC^VN|||||||||||||||||||||||||20260101090000+0000"


def msg(kind: str, *segments: str, mid: str = "M1") -> bytes:
    return "\r".join([MSH.format(kind=kind, mid=mid), *segments]).encode()


def resources(mapped, kind):
    return [e["resource"] for e in mapped.bundle["entry"] if e["resource"]["resourceType"] == kind]


@pytest.mark.parametrize("event,status", [("A01", "in-progress"), ("A04", "in-progress"), ("A08", "in-progress"), ("A03", "finished")])
def test_adt(event, status):
    """ADT A01/A03/A04/A08: Patient, Encounter with status, Location, Practitioner; the Bundle validates."""
    m = hl7v2_to_fhir(msg(f"ADT^{event}^ADT_A01", f"EVN|{event}|20260101103000", PID, PV1, "ZPI|1|custom"))
    validate_r4_bundle(m.bundle)
    assert m.message_type == f"ADT^{event}" and m.patient_key == "FAC|12345" and m.encounter_key == "FAC|V100"
    patient = resources(m, "Patient")[0]
    assert patient["name"][0] == {"family": "Doe", "given": ["Jane", "A"]} and patient["birthDate"] == "1970-04-12" and patient["gender"] == "female"
    encounter = resources(m, "Encounter")[0]
    assert encounter["status"] == status and encounter["class"]["code"] == "IMP" and encounter["period"]["start"] == "2026-01-01T09:00:00+00:00"
    assert m.bundle["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    assert m.unmapped_segments == ["ZPI"]
    assert m.bundle["entry"][0]["resource"]["extension"][0]["valueString"] == "ZPI|1|custom"


def test_oru_vitals_and_text_results():
    """ORU: an Observation per OBX with code, value, unit, range, interpretation, time; DiagnosticReport
    points to them; TX results stay as text; NTE becomes a note."""
    m = hl7v2_to_fhir(msg("ORU^R01^ORU_R01", PID, PV1, "OBR|1|P1|F1|85353-1^Vital signs^LN|||20260101100000+0000||||||||||||||||||F",
                          "OBX|1|NM|8867-4^Heart rate^LN||118|/min^/min^UCUM|60-100|H|||F|||20260101100500+0000",
                          "OBX|2|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F",
                          "OBX|3|TX|11529-5^Surgical path report^LN||Benign tissue\\.br\\No malignancy~Second line||||||F",
                          "NTE|1||Hemolysed sample"))
    validate_r4_bundle(m.bundle)
    hr, k, text = resources(m, "Observation")
    assert hr["valueQuantity"] == {"value": 118.0, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}
    assert hr["referenceRange"][0]["low"]["value"] == 60 and hr["interpretation"][0]["coding"][0]["code"] == "H"
    assert hr["effectiveDateTime"] == "2026-01-01T10:05:00+00:00" and hr["category"][0]["coding"][0]["code"] == "vital-signs"
    assert k["effectiveDateTime"] == "2026-01-01T10:00:00+00:00" and k["interpretation"][0]["coding"][0]["code"] == "HH"
    assert text["valueString"] == "Benign tissue\nNo malignancy\nSecond line" and text["note"] == [{"text": "Hemolysed sample"}]
    report = resources(m, "DiagnosticReport")[0]
    assert len(report["result"]) == 3 and report["status"] == "final"


def test_result_note_names_its_author_and_time():
    """NTE-5 entered by (XCN) and NTE-6 entered at -> the note's authorReference (a Practitioner) and time."""
    m = hl7v2_to_fhir(msg("ORU^R01^ORU_R01", PID, "OBR|1|P1|F1|24323-8^Panel^LN",
                          "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH|||F",
                          "NTE|1||Called to Dr Lee||MLEE^ATTEND^AARON^A^^^MD|202010101500+0215"))
    validate_r4_bundle(m.bundle)
    (note,) = resources(m, "Observation")[0]["note"]
    (author,) = [p for p in resources(m, "Practitioner") if p["identifier"][0]["value"] == "MLEE"]
    assert note == {"text": "Called to Dr Lee", "authorReference": {"reference": f"urn:uuid:{author['id']}"},
                    "time": "2020-10-10T15:00:00+02:15"}
    assert author["name"][0]["family"] == "ATTEND"


def test_interpretation_flags_are_coded_elements():
    """OBX-8 repeats a CWE: each repetition's code is the interpretation, not the whole component string."""
    m = hl7v2_to_fhir(msg("ORU^R01^ORU_R01", PID, "OBR|1|P1|F1|24323-8^Panel^LN",
                          "OBX|1|NM|2823-3^Potassium^LN||6.9|mmol/L|3.5-5.1|HH^Critical high^HL70078~A|||F"))
    validate_r4_bundle(m.bundle)
    assert [i["coding"][0]["code"] for i in resources(m, "Observation")[0]["interpretation"]] == ["HH", "A"]


def test_mdm_note_is_a_document():
    """MDM^T02: the OBX text lines become one DocumentReference attachment; no Observations."""
    m = hl7v2_to_fhir(msg("MDM^T02^MDM_T02", "EVN|T02|20260101103000", PID, PV1,
                          "TXA|1|PN^Progress note|TX|20260101103000+0000|1001^Adams^Helen|||||||DOC1|||||AU",
                          "OBX|1|TX|11506-3^Progress note^LN|1|Patient denies chest pain.||||||F",
                          "OBX|2|TX|11506-3^Progress note^LN|2|Assessment: sepsis \\T\\ AKI.||||||F"))
    validate_r4_bundle(m.bundle)
    assert not resources(m, "Observation")
    doc = resources(m, "DocumentReference")[0]
    assert base64.b64decode(doc["content"][0]["attachment"]["data"]).decode() == "Patient denies chest pain.\nAssessment: sepsis & AKI."
    assert doc["docStatus"] == "final" and doc["masterIdentifier"]["value"] == "DOC1" and doc["date"] == "2026-01-01T10:30:00+00:00"


def test_mdm_document_authenticator_identifier_security_and_title():
    """TXA (guide's TXA[DocumentReference]): 10 authenticator, 16 file name an identifier, 18 confidentiality a v3
    security label (R restricted), 25 description."""
    m = hl7v2_to_fhir(msg("MDM^T02^MDM_T02", PID, PV1, "TXA|1|PN^Progress note|TX|20260101103000+0000|1001^Adams^Helen|||||2002^Baker^Bo||DOC1"
                          "||||54302-DEX|AU|R|AV||||||Discharge summary", "OBX|1|TX|11506-3^Progress note^LN|1|Fine.||||||F"))
    validate_r4_bundle(m.bundle)
    doc = resources(m, "DocumentReference")[0]
    by_url = {e["fullUrl"]: e["resource"] for e in m.bundle["entry"]}
    assert by_url[doc["authenticator"]["reference"]]["name"][0]["family"] == "Baker"
    assert doc["identifier"] == [{"value": "54302-DEX"}] and doc["description"] == "Discharge summary"
    assert doc["securityLabel"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R",
                                                 "display": "restricted"}]}]


def test_mdm_document_date_is_its_origination_and_the_activity_its_period():
    """The guide's TXA map: TXA-6 (origination, with a time) is the DocumentReference's date; TXA-4 (the activity documented)
    the period of the service (context.period), and the date when TXA-6 is missing; TXA-3 TX is the text attachment."""
    m = hl7v2_to_fhir(msg("MDM^T02^MDM_T02", PID, PV1, "TXA|1|PN^Progress note|TX|20260101090000+0000|1001^Adams^Helen|20260101103000+0000",
                          "OBX|1|TX|11506-3^Progress note^LN|1|Fine.||||||F"))
    doc = resources(m, "DocumentReference")[0]
    assert doc["date"] == "2026-01-01T10:30:00+00:00" and doc["context"]["period"] == {"start": "2026-01-01T09:00:00+00:00"}
    assert not {"TXA-3", "TXA-4", "TXA-6"} & set(m.unmapped_fields)
    m = hl7v2_to_fhir(msg("MDM^T02^MDM_T02", PID, PV1, "TXA|1|PN^Progress note|AP|20260101090000+0000|1001^Adams^Helen|20260102",
                          "OBX|1|TX|11506-3^Progress note^LN|1|Fine.||||||F"))
    assert resources(m, "DocumentReference")[0]["date"] == "2026-01-01T09:00:00+00:00"
    assert {"TXA-3", "TXA-6"} <= set(m.unmapped_fields)  # a pointer presentation, a date without a time: reported, kept


def test_mdm_embedded_document_is_its_own_attachment():
    """An ED line of an MDM (a PDF) is an attachment of its own beside the text lines (the guide's OBX[DocumentReference]),
    no longer read as a line of the note's text."""
    m = hl7v2_to_fhir(msg("MDM^T02^MDM_T02", PID, PV1, "TXA|1|DS^Discharge summary|TX|20260101090000+0000",
                          "OBX|1|TX|18842-5^Discharge summary^LN|1|Line one.||||||F",
                          "OBX|2|ED|18842-5^Discharge summary^LN|2|^application^pdf^Base64^JVBERi0xLjQK||||||F"))
    validate_r4_bundle(m.bundle)
    content = resources(m, "DocumentReference")[0]["content"]
    assert base64.b64decode(content[0]["attachment"]["data"]).decode() == "Line one."
    assert content[1]["attachment"] == {"contentType": "application/pdf", "data": "JVBERi0xLjQK"}


def test_framing_bom_and_separators():
    """MLLP framing, a UTF-8 BOM and LF or CRLF separators give the same Bundle as plain CR."""
    plain = msg("ADT^A01", PID, PV1)
    expected = hl7v2_to_fhir(plain).bundle
    for variant in (b"\x0b" + plain + b"\x1c\r", b"\xef\xbb\xbf" + plain, plain.replace(b"\r", b"\n"), plain.replace(b"\r", b"\r\n")):
        assert hl7v2_to_fhir(variant).bundle == expected


def test_latin1_with_msh18():
    """A Latin-1 message that says so in MSH-18 decodes; without MSH-18 it is rejected with a reason."""
    head = "MSH|^~\\&|APP|FAC|R|R|20260101||ADT^A08|M9|P|2.5||||||8859/1"
    body = "\rPID|1||1^^^FAC^MR||M\xfcller^J\xf6rg"
    m = hl7v2_to_fhir((head + body).encode("latin-1"))
    assert resources(m, "Patient")[0]["name"][0]["family"] == "Müller"
    with pytest.raises(HL7MappingError, match="not valid UTF-8"):
        hl7v2_to_fhir(msg("ADT^A08", "PID|1||1^^^FAC^MR||M\xfcller").decode().encode("latin-1"))


@pytest.mark.parametrize("raw,reason", [
    (b"", "empty"),
    (b"PID|1||123^^^X^MR", "not MSH"),
    (b"MSH|^~\\&|A|B|C|D|2026||ORU^R01", "MSH-10"),
    (b"MSH|^~\\&|A|B|C|D|2026||ORU^R01|X|P|2.5\rOBX|1|NM|1^x^LN||5", "no PID"),
    (b"MSH|^~\\&|A|B|C|D|2026|||X|P|2.5", "MSH-9"),
    (b"MSH|^~\\&|A|B|C|D|2026||ADT^A01|X|P|2.5\rP\x00D|1", "segment 2"),
    (b"MSH", "encoding characters"),
    (b"MSH|@#$%|A|B|C|D|2026||ADT@A01|X|P|2.5", "non-standard encoding"),
])
def test_bad_input_is_rejected_with_a_reason(raw, reason):
    """Malformed messages raise HL7MappingError whose reason says what is wrong."""
    with pytest.raises(HL7MappingError, match=reason):
        hl7v2_to_fhir(raw)


def test_ids_are_deterministic_and_namespaced():
    """The same message maps to identical JSON; the same MRN at two facilities gives two Patients."""
    a = hl7v2_to_fhir(msg("ADT^A01", PID, PV1))
    assert json.dumps(a.bundle, sort_keys=True) == json.dumps(hl7v2_to_fhir(msg("ADT^A01", PID, PV1)).bundle, sort_keys=True)
    other = hl7v2_to_fhir(msg("ADT^A01", PID.replace("^^^FAC^MR", "^^^OTHER^MR"), PV1))
    assert resources(a, "Patient")[0]["id"] != resources(other, "Patient")[0]["id"]


def test_corpus_converts_and_validates():
    """Every corpus message converts to a valid R4 Bundle or is rejected with a reason; none crashes;
    all ADT A01/A03/A04/A08, ORU^R01 and MDM^T02 samples convert."""
    folder = corpus("hl7v2") / "messages"
    converted, rejected = [], []
    for path in sorted(folder.glob("*.hl7")):
        try:
            mapped = hl7v2_to_fhir(path.read_bytes())
        except HL7MappingError:
            rejected.append(path.name)
            continue
        validate_r4_bundle(mapped.bundle)
        converted.append(path.name)
    required = [n for n in converted + rejected if n.startswith(("ADT-A01", "ADT-A03", "ADT-A04", "ADT-A08", "ORU-R01", "MDM-T02"))]
    assert required and not set(required) & set(rejected)
    print(f"corpus: {len(converted)} converted, {len(rejected)} rejected of {len(converted) + len(rejected)}")
    assert len(converted) == 139


def test_splitter_agrees_with_python_hl7_on_the_corpus():
    """Every field of every corpus segment reads the same through clinstream's splitter as through python-hl7."""
    import hl7

    from fhir_mappers.parse import decode, parse_er7

    checked = 0
    for path in sorted((corpus("hl7v2") / "messages").glob("*.hl7")):
        text = decode(path.read_bytes())
        ours, reference = parse_er7(text), hl7.parse(text)
        assert len(ours) == len(reference)
        for mine, theirs in zip(ours, reference):
            for n in range(len(theirs)):
                assert mine[n] == str(theirs[n]), (path.name, str(theirs[0]), n)
                checked += 1
    assert checked > 5000


def test_a_diagnosis_before_the_patient_is_kept_not_dropped():
    """A DG1 with no PID before it has no patient to point at: it is listed as unmapped, not lost."""
    from fhir_mappers import hl7v2_to_fhir

    raw = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A08|X1|P|2.5\rEVN|A08\rDG1|1||I10^Hypertension^I10\rPID|1||123^^^H^MR||Doe^J\r"
    mapped = hl7v2_to_fhir(raw)
    assert mapped.unmapped_segments == ["DG1"]
    assert not [e for e in mapped.bundle["entry"] if e["resource"]["resourceType"] == "Condition"]
