"""FHIR R4 input: every accepted Bundle type and bare resources normalized to one shape, references
between entries resolved to fullUrls, rejected inputs with their reasons."""

import base64
import copy
import json

import pytest

from clinstream.envelope import SourceRecord
from clinstream.exceptions import RejectedMessage
from fhir_mappers import validate_r4_bundle
from processors.enrich import with_risk
from processors.fhir_input import parse_fhir
from processors.normalize import normalize
from processors.risk import PatientState, RiskConfig
from processors.vitals import vital_readings

MR = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}
BASE = "http://ehr.example.org/fhir"
AT = "2026-01-01T10:00:00+00:00"


def patient(pid="p1", mrn="123456", system="urn:clinstream:id:GENHOSP"):
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Testperson"}],
            "identifier": [{"system": "http://other.example.org/ssn", "value": "999"},
                           {"type": MR, "system": system, "value": mrn}]}


def heart_rate(oid, subject_ref, value=125, **extra):
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": subject_ref}, "effectiveDateTime": AT,
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}, **extra}


def encounter(eid, subject_ref):
    return {"resourceType": "Encounter", "id": eid, "status": "in-progress", "subject": {"reference": subject_ref},
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"}}


def parse(data):
    return parse_fhir(json.dumps(data).encode())


def rejected(data) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as info:
        parse_fhir(data if isinstance(data, bytes) else json.dumps(data).encode())
    return info.value


def by_type(bundle, resource_type):
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type]


def all_references(bundle):
    from processors.fhir_references import references
    return [r["reference"] for e in bundle["entry"] for r in references(e["resource"])]


# ---------------------------------------------------------------- one per Bundle type


def test_transaction_becomes_collection_with_placeholders_and_conditionals_resolved():
    """POST entries with urn:uuid placeholders, a conditional-update Patient referenced by its
    conditional URL, a DELETE entry: request elements go, the DELETE goes, every reference points at an entry."""
    tx = {"resourceType": "Bundle", "id": "tx-1", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:3f7b7bd1-0a0c-4b7e-9f57-1b1d3c4b5e61",
         "resource": heart_rate("o1", "Patient?identifier=urn:clinstream:id:GENHOSP|123456",
                                encounter={"reference": "urn:uuid:6c1a0e36-2d57-4c39-8a0a-2f0f5ad0b1a2"}),
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": "urn:uuid:6c1a0e36-2d57-4c39-8a0a-2f0f5ad0b1a2",
         "resource": {k: v for k, v in encounter("e1", "Patient?identifier=urn:clinstream:id:GENHOSP|123456").items() if k != "id"},
         "request": {"method": "POST", "url": "Encounter"}},
        {"resource": {k: v for k, v in patient().items() if k != "id"},
         "request": {"method": "PUT", "url": "Patient?identifier=urn:clinstream:id:GENHOSP|123456"}},
        {"request": {"method": "DELETE", "url": "Observation/old"}},
    ]}
    m = parse(tx)
    assert m.message_type == "Bundle/transaction" and m.message_id == "tx-1"
    assert m.bundle["type"] == "collection" and m.bundle["id"] == "tx-1"
    assert [e["resource"]["resourceType"] for e in m.bundle["entry"]] == ["Observation", "Encounter", "Patient"]
    assert all(set(e) == {"fullUrl", "resource"} for e in m.bundle["entry"])
    (pat,) = by_type(m.bundle, "Patient")
    assert pat["fullUrl"].startswith("urn:uuid:") and pat["resource"]["id"] == pat["fullUrl"].removeprefix("urn:uuid:")
    obs, enc = m.bundle["entry"][0]["resource"], m.bundle["entry"][1]["resource"]
    assert obs["subject"]["reference"] == pat["fullUrl"] and enc["subject"]["reference"] == pat["fullUrl"]
    assert obs["encounter"]["reference"] == "urn:uuid:6c1a0e36-2d57-4c39-8a0a-2f0f5ad0b1a2"
    assert enc["id"] == "6c1a0e36-2d57-4c39-8a0a-2f0f5ad0b1a2"  # an id-less POST takes its placeholder's uuid
    assert m.patient_key == "GENHOSP|123456" and m.patient_ref == pat["fullUrl"]
    assert m.encounter_ref == "urn:uuid:6c1a0e36-2d57-4c39-8a0a-2f0f5ad0b1a2" and m.unresolved_references == ()
    validate_r4_bundle(m.bundle)


def test_transaction_put_by_id_names_the_resource():
    """A PUT Patient/p9 entry without resource id is that Patient: relative references to it resolve."""
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": heart_rate("o1", "Patient/p9"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient", "identifier": [{"system": "urn:x", "value": "9"}]},
         "request": {"method": "PUT", "url": "Patient/p9"}},
        {"resource": {"resourceType": "Parameters", "parameter": []}, "request": {"method": "PATCH", "url": "Patient/p2"}},
    ]}
    m = parse(tx)
    (pat,) = by_type(m.bundle, "Patient")
    assert pat["resource"]["id"] == "p9" and len(m.bundle["entry"]) == 2
    assert m.bundle["entry"][0]["resource"]["subject"]["reference"] == pat["fullUrl"]
    assert m.patient_key == "urn:x|9"


def test_batch_keeps_only_entries_with_a_resource_state():
    """GET/DELETE entries carry no resource; POST and PUT entries stay, without `request`."""
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": "Patient?name=x"}},
        {"fullUrl": f"{BASE}/Patient/p1", "resource": patient(), "request": {"method": "PUT", "url": "Patient/p1"}},
        {"fullUrl": f"{BASE}/Observation/o1", "resource": heart_rate("o1", "Patient/p1"), "request": {"method": "PUT", "url": "Observation/o1"}},
    ]}
    m = parse(batch)
    assert m.message_type == "Bundle/batch" and m.bundle["type"] == "collection"
    assert [e["fullUrl"] for e in m.bundle["entry"]] == [f"{BASE}/Patient/p1", f"{BASE}/Observation/o1"]
    assert "request" not in m.bundle["entry"][0]
    assert m.bundle["entry"][1]["resource"]["subject"]["reference"] == f"{BASE}/Patient/p1"
    assert len(m.message_id) == 32  # no id or identifier: the payload's hash


def test_collection_keeps_order_ids_and_timestamp():
    coll = {"resourceType": "Bundle", "id": "c1", "type": "collection", "timestamp": AT, "entry": [
        {"fullUrl": "urn:uuid:aa", "resource": heart_rate("o1", "urn:uuid:bb")},
        {"fullUrl": "urn:uuid:bb", "resource": patient()},
    ]}
    m = parse(coll)
    assert m.bundle["type"] == "collection" and m.bundle["timestamp"] == AT and m.timestamp == AT
    assert [e["fullUrl"] for e in m.bundle["entry"]] == ["urn:uuid:aa", "urn:uuid:bb"]
    assert m.bundle["entry"][0]["resource"]["id"] == "o1"
    assert m.patient_key == "GENHOSP|123456" and m.patient_ref == "urn:uuid:bb"


def test_message_stays_a_message_with_its_header_first():
    header = {"resourceType": "MessageHeader", "id": "h1", "eventCoding": {"system": "urn:x", "code": "vitals"},
              "source": {"endpoint": "urn:x:ehr"}, "focus": [{"reference": "Observation/o1"}]}
    msg = {"resourceType": "Bundle", "id": "msg-7", "type": "message", "timestamp": AT, "entry": [
        {"fullUrl": f"{BASE}/MessageHeader/h1", "resource": header},
        {"fullUrl": f"{BASE}/Observation/o1", "resource": heart_rate("o1", "Patient/p1")},
        {"fullUrl": f"{BASE}/Patient/p1", "resource": patient()},
    ]}
    m = parse(msg)
    assert m.message_type == "Bundle/message" and m.message_id == "msg-7"
    assert m.bundle["type"] == "message" and m.bundle["entry"][0]["resource"]["resourceType"] == "MessageHeader"
    assert m.bundle["entry"][0]["resource"]["focus"] == [{"reference": f"{BASE}/Observation/o1"}]
    assert m.patient_ref == f"{BASE}/Patient/p1" and m.patient_key == "GENHOSP|123456"


def test_searchset_drops_outcomes_keeps_includes_and_search_elements_go():
    search = {"resourceType": "Bundle", "id": "srch", "type": "searchset", "total": 2,
              "link": [{"relation": "next", "url": f"{BASE}/Observation?page=2"}], "entry": [
        {"fullUrl": f"{BASE}/Observation/o1", "resource": heart_rate("o1", "Patient/p1"), "search": {"mode": "match"}},
        {"fullUrl": f"{BASE}/Observation/o2", "resource": heart_rate("o2", "Patient/p1", value=80), "search": {"mode": "match"}},
        {"fullUrl": f"{BASE}/Patient/p1", "resource": patient(), "search": {"mode": "include"}},
        {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "warning", "code": "incomplete"}]},
         "search": {"mode": "outcome"}},
    ]}
    m = parse(search)
    assert m.message_type == "Bundle/searchset" and m.bundle["type"] == "collection"
    assert [e["resource"]["resourceType"] for e in m.bundle["entry"]] == ["Observation", "Observation", "Patient"]
    assert "total" not in m.bundle and "link" not in m.bundle and all("search" not in e for e in m.bundle["entry"])
    assert all_references(m.bundle) == [f"{BASE}/Patient/p1"] * 2
    assert [r.value for r in vital_readings(m.bundle)] == [125.0, 80.0]
    validate_r4_bundle(m.bundle)


def test_document_becomes_collection_and_its_sections_are_narratives():
    composition = {"resourceType": "Composition", "id": "doc1", "status": "final", "date": AT,
                   "type": {"coding": [{"system": "http://loinc.org", "code": "18842-5"}]}, "title": "Discharge summary",
                   "subject": {"reference": "urn:uuid:0d5e0c6e-6a7a-4bdf-9f0f-5f2c54a8c001"},
                   "author": [{"reference": "Practitioner/dr1"}],
                   "section": [{"title": "Course", "text": {"status": "additional",
                                "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Treated for <b>sepsis</b> &amp; AKI.</p></div>'},
                                "section": [{"title": "Plan", "text": {"status": "additional",
                                             "div": '<div xmlns="http://www.w3.org/1999/xhtml">No chest pain.</div>'}}]}]}
    doc = {"resourceType": "Bundle", "type": "document", "timestamp": AT,
           "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:9a3c8d7e-0000-4000-8000-000000000001"},
           "signature": {"type": [{"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}], "when": AT,
                         "who": {"reference": "Practitioner/dr1"}, "data": base64.b64encode(b"sig").decode()},
           "entry": [{"fullUrl": "urn:uuid:0d5e0c6e-6a7a-4bdf-9f0f-5f2c54a8c000", "resource": composition},
                     {"fullUrl": "urn:uuid:0d5e0c6e-6a7a-4bdf-9f0f-5f2c54a8c001", "resource": patient()}]}
    m = parse(doc)
    assert m.message_type == "Bundle/document" and m.message_id == "urn:uuid:9a3c8d7e-0000-4000-8000-000000000001"
    assert m.bundle["type"] == "collection" and "signature" not in m.bundle and m.bundle["identifier"] == doc["identifier"]
    assert m.unresolved_references == ("Practitioner/dr1",)
    env = normalize(json.dumps(doc).encode(), "fhir", source=SourceRecord(topic="t", partition=0, offset=1),
                    received_at=AT, normalized_at=AT, max_bytes=1 << 20)
    assert [(n.id, n.text) for n in env.narratives] == [
        ("Composition/doc1#section[0].text", "Treated for sepsis & AKI."),
        ("Composition/doc1#section[0].section[0].text", "No chest pain."),
    ]
    assert env.patient_key == "GENHOSP|123456"


# ---------------------------------------------------------------- references


@pytest.mark.parametrize("reference,expected", [
    ("urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a", "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a"),  # fullUrl itself
    (f"{BASE}/Patient/p2", f"{BASE}/Patient/p2"),  # absolute, equal to a fullUrl
    (f"{BASE}/Patient/p2/_history/3", f"{BASE}/Patient/p2"),  # version-specific
    ("Patient/p2", f"{BASE}/Patient/p2"),  # relative, against the referencing entry's base
    ("Patient/p3", "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a"),  # relative, by type and id
    ("Patient/p3/_history/1", "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a"),
    ("Patient?identifier=urn:x|mrn-3", "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a"),  # conditional
    ("Patient?identifier=mrn-2", f"{BASE}/Patient/p2"),  # conditional, any system
    ("Patient?_id=p3", "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a"),
])
def test_reference_forms_resolve_to_the_target_fullurl(reference, expected):
    entries = [
        {"fullUrl": f"{BASE}/Observation/o1", "resource": heart_rate("o1", reference)},
        {"fullUrl": f"{BASE}/Patient/p2", "resource": patient("p2", "mrn-2", "urn:x")},
        {"fullUrl": "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000a", "resource": patient("p3", "mrn-3", "urn:x")},
    ]
    m = parse({"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert m.bundle["entry"][0]["resource"]["subject"]["reference"] == expected
    assert m.unresolved_references == ()


@pytest.mark.parametrize("reference", [
    "http://other.example.org/fhir/Patient/p2",  # same type and id on another server: another resource
    "Patient/nobody",
    "Patient?identifier=urn:x|nobody",
    "Patient?name=Testperson",  # needs a server to evaluate
    "Patient?identifier=mrn",  # matches nothing
])
def test_references_to_resources_not_in_the_bundle_stay_as_sent(reference):
    entries = [{"fullUrl": f"{BASE}/Observation/o1", "resource": heart_rate("o1", reference)},
               {"fullUrl": f"{BASE}/Patient/p2", "resource": patient("p2", "mrn-2", "urn:x")}]
    m = parse({"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert m.bundle["entry"][0]["resource"]["subject"]["reference"] == reference
    assert m.unresolved_references == (reference,)


def test_ambiguous_type_and_id_is_not_guessed():
    """Patient/p1 on two servers: a relative reference from a urn:uuid entry has no base to pick one."""
    entries = [{"fullUrl": "urn:uuid:0f0e0d0c-0000-4000-8000-00000000000b", "resource": heart_rate("o1", "Patient/p1")},
               {"fullUrl": "http://a.example.org/fhir/Patient/p1", "resource": patient("p1", "1")},
               {"fullUrl": "http://b.example.org/fhir/Patient/p1", "resource": patient("p1", "2")}]
    m = parse({"resourceType": "Bundle", "type": "collection", "entry": entries})
    assert m.bundle["entry"][0]["resource"]["subject"]["reference"] == "Patient/p1"


def test_references_in_nested_elements_extensions_and_contained_resources_resolve():
    obs = heart_rate("o1", "Patient/p1", contained=[{"resourceType": "Specimen", "id": "s", "subject": {"reference": "Patient/p1"}}],
                     specimen={"reference": "#s"},
                     extension=[{"url": "urn:x:ext", "valueReference": {"reference": "Encounter/e1"}}],
                     performer=[{"reference": "Practitioner/dr", "display": "Dr X"}])
    entries = [{"resource": obs}, {"resource": patient()}, {"resource": encounter("e1", "Patient/p1")}]
    m = parse({"resourceType": "Bundle", "type": "collection", "entry": entries})
    pat_url, enc_url = m.patient_ref, m.encounter_ref
    resolved = m.bundle["entry"][0]["resource"]
    assert resolved["contained"][0]["subject"]["reference"] == pat_url and resolved["specimen"]["reference"] == "#s"
    assert resolved["extension"][0]["valueReference"]["reference"] == enc_url
    assert resolved["performer"] == [{"reference": "Practitioner/dr", "display": "Dr X"}]
    assert m.unresolved_references == ("Practitioner/dr",)


def test_entries_without_fullurl_get_a_deterministic_urn_uuid():
    entries = [{"resource": patient()}, {"resource": heart_rate("o1", "Patient/p1")}]
    first = parse({"resourceType": "Bundle", "type": "collection", "entry": entries})
    again = parse({"resourceType": "Bundle", "type": "collection", "entry": copy.deepcopy(entries), "timestamp": AT})
    urls = [e["fullUrl"] for e in first.bundle["entry"]]
    assert urls == [e["fullUrl"] for e in again.bundle["entry"]] and len(set(urls)) == 2
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert first.bundle["entry"][1]["resource"]["subject"]["reference"] == urls[0]


# ---------------------------------------------------------------- bare resources


@pytest.mark.parametrize("resource,subject_key", [
    (heart_rate("o1", "Patient/p1"), "ref|Patient/p1"),
    ({"resourceType": "Condition", "id": "c1", "subject": {"identifier": {"system": "urn:clinstream:id:GENHOSP", "value": "42"}},
      "code": {"text": "sepsis"}, "note": [{"text": "suspected sepsis"}]}, "GENHOSP|42"),
    ({"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/p7"}, "code": {"text": "penicillin"}}, "ref|Patient/p7"),
    ({"resourceType": "Immunization", "id": "i1", "status": "completed", "vaccineCode": {"text": "flu"},
      "patient": {"reference": f"{BASE}/Patient/p8"}, "occurrenceDateTime": "2025-10-01"}, f"ref|{BASE}/Patient/p8"),
    ({"resourceType": "Coverage", "id": "cov", "status": "active", "beneficiary": {"reference": "Patient/p9"},
      "payor": [{"reference": "Organization/ins"}]}, "ref|Patient/p9"),
    ({"resourceType": "Observation", "id": "o-dev", "status": "final", "code": {"text": "x"},
      "subject": {"reference": "Device/d1"}}, None),  # a Device is not a patient
    ({"resourceType": "Organization", "id": "org", "name": "General Hospital"}, None),
    ({"resourceType": "Practitioner", "id": "dr", "name": [{"family": "Doe"}]}, None),
])
def test_bare_resources_are_wrapped_into_a_collection(resource, subject_key):
    m = parse(resource)
    assert m.message_type == resource["resourceType"] and m.message_id == resource["id"]
    assert m.bundle["type"] == "collection" and len(m.bundle["entry"]) == 1
    entry = m.bundle["entry"][0]
    assert entry["resource"] == resource and entry["fullUrl"].startswith("urn:uuid:")
    assert m.patient_key == subject_key
    validate_r4_bundle(m.bundle)


def test_bare_patient_gives_its_key_and_is_the_patient_ref():
    m = parse(patient())
    assert m.patient_key == "GENHOSP|123456" and m.patient_ref == m.bundle["entry"][0]["fullUrl"]


def test_bare_resource_without_id_gets_one_and_the_payload_hash_as_message_id():
    obs = heart_rate("x", "Patient/p1")
    del obs["id"]
    m = parse(obs)
    entry = m.bundle["entry"][0]
    assert entry["resource"]["id"] == entry["fullUrl"].removeprefix("urn:uuid:") and len(m.message_id) == 32
    assert vital_readings(m.bundle)[0].resource == f"Observation/{entry['resource']['id']}"


# ---------------------------------------------------------------- patient, encounter, time


def test_patient_found_whatever_the_entry_order_and_the_one_pointed_at_wins():
    """Mother and baby: the Observations are about the baby, who comes second."""
    mother, baby = patient("m", "111"), patient("b", "222")
    entries = [{"resource": mother}, {"resource": heart_rate("o1", "Patient/b")}, {"resource": baby},
               {"resource": heart_rate("o2", "Patient/b")}, {"resource": encounter("e1", "Patient/b")},
               {"resource": {"resourceType": "RelatedPerson", "id": "r", "patient": {"reference": "Patient/b"}}}]
    for order in (entries, entries[::-1]):
        m = parse({"resourceType": "Bundle", "type": "collection", "entry": copy.deepcopy(order)})
        assert m.patient_key == "GENHOSP|222"
        assert m.encounter_ref == next(e["fullUrl"] for e in m.bundle["entry"] if e["resource"]["resourceType"] == "Encounter")


def test_transaction_vitals_are_scored_and_risk_resources_point_into_the_bundle():
    """The inference stage's view: NEWS2 from the Observations, RiskAssessment.subject = the Patient entry."""
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": heart_rate("o1", "Patient/p1", value=135), "request": {"method": "POST", "url": "Observation"}},
        {"resource": patient(), "request": {"method": "PUT", "url": "Patient/p1"}}]}
    env = normalize(json.dumps(tx).encode(), "fhir", source=SourceRecord(topic="t", partition=0, offset=1),
                    received_at="2026-01-01T11:00:00+00:00", normalized_at=AT, max_bytes=1 << 20)
    assert env.message_type == "Bundle/transaction" and env.observed_at == AT
    enriched, _, _ = with_risk(env, PatientState(), RiskConfig(), now=AT)
    assert enriched.risk.news2.components == {"heart_rate": 3}
    risk_entries = by_type(enriched.bundle, "RiskAssessment")
    assert risk_entries[0]["resource"]["subject"]["reference"] == by_type(enriched.bundle, "Patient")[0]["fullUrl"]
    assert set(all_references(enriched.bundle)) <= {e["fullUrl"] for e in enriched.bundle["entry"]}
    validate_r4_bundle(enriched.bundle)


# ---------------------------------------------------------------- rejected


@pytest.mark.parametrize("bundle_type,reason", [
    ("history", "history Bundle lists versions"),
    ("transaction-response", "server's reply"),
    ("batch-response", "server's reply"),
    ("foo", "Bundle type 'foo' is not accepted (one of batch, collection, document, message, searchset, transaction)"),
    (None, "Bundle type None is not accepted"),
])
def test_rejected_bundle_types_say_why(bundle_type, reason):
    data = {"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:a", "resource": patient()}]}
    if bundle_type:
        data["type"] = bundle_type
    exc = rejected(data)
    assert exc.kind == "fhir_invalid" and reason in exc.reason


@pytest.mark.parametrize("data,reason", [
    ({"resourceType": "Bundle", "type": "message", "entry": [{"resource": patient()}]}, "a message Bundle must start with a MessageHeader entry"),
    ({"resourceType": "Bundle", "type": "document", "entry": [{"resource": patient()}]}, "a document Bundle must start with a Composition entry"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()}, {"resource": patient()}]},
     "entries 0 and 1 have the same fullUrl"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"fullUrl": "urn:uuid:a", "resource": patient("a")},
                                                                 {"fullUrl": "urn:uuid:a", "resource": patient("b")}]},
     "entries 0 and 1 have the same fullUrl"),
    ({"resourceType": "Bundle", "type": "batch", "entry": [{"request": {"method": "GET", "url": "Patient"}}]},
     "Bundle/batch holds no resource to process"),
    ({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}, "search": {"mode": "outcome"}}]},
     "Bundle/searchset holds no resource to process"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Frobnicator"}}]},
     "entry 0: 'Frobnicator' is not an R4 resource type"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"id": "x"}}]}, "entry 0: resource has no resourceType"),
    ({"resourceType": "Frobnicator", "id": "x"}, "entry 0: 'Frobnicator' is not an R4 resource type"),
    ({"resourceType": "OperationOutcome", "issue": []}, "OperationOutcome is a server's reply"),
    ({"resourceType": "Observation", "id": "x"}, "FHIR R4 validation failed: 1 error(s): entry.0.resource.code: missing"),
    ({k: v for k, v in heart_rate("o", "Patient/p1").items() if k != "status"}, "entry.0.resource.status: model_field_validation.missing"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": patient()},
                                                                 {"resource": {**heart_rate("o", "Patient/p1"), "effectiveDateTime": "yesterday"}}]},
     "FHIR R4 validation failed: 1 error(s): entry.1.resource.effectiveDateTime"),
    (heart_rate("o", "Patient/p1", contained=[{"resourceType": "Nonsense", "id": "n"}]), "resourceType is missing, not a string or not an R4 resource type"),
    ([1, 2], "no resourceType"),
])
def test_invalid_input_is_rejected_with_a_reason(data, reason):
    exc = rejected(data)
    assert exc.kind == "fhir_invalid" and reason in exc.reason


def test_reasons_never_carry_patient_data():
    bad = patient(mrn="SECRET-MRN")
    bad["birthDate"] = "SECRET-DATE"
    exc = rejected({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": bad}]})
    assert "birthDate" in exc.reason and "SECRET" not in exc.reason


def test_not_json_is_fhir_json():
    assert rejected(b"{not json").kind == "fhir_json" and rejected(b"\xff\xfe{}").kind == "fhir_json"
