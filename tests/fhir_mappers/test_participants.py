"""PRT and ROL -> PractitionerRole (and Device), joined to the resource made from the segment they follow."""

from fhir_mappers.participants import attach, participation, role
from fhir_mappers.results import performers
from tests.fhir_mappers.segments import PID, PV1, by_ref, mapped, of, ref_to, seg

PRT = ("PRT|1|AD||AD^Admitting Provider^HL70912|10535^Beethoven^Ludwig^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO|208D00000X^General Practice^NUCCPT|"
       "|Good Health Hospital^L^4544|4E^401^B^GHH|PUMP-7|20210223093000+0000|20210224100000+0000||6547 Drums St^^Flint^MI^48507|^PRN^PH^^^810^4502369")
ROL = ("ROL|1|AD|PP^Primary Care Provider^HL70443|121^Phoeb^Harold^H|20220101|20220202|||408443003^General practice^SCT||"
       "1 Main St^^Houston^TX|^^Internet^pheob@example.org|CLINIC^^^GHH|Good Health Clinic")


def test_participation_is_a_practitioner_role_and_a_device():
    """PRT: 4 role (coded in v2-0443), 5 person, 6 provider type, 8 organisation, 9 location, 10 device, 11/12 period,
    14 address (the person's), 15 telecom."""
    found = participation(seg(PRT), "FAC")
    actor, by_type = found.actor, {}
    for r in found.made:
        by_type.setdefault(r["resourceType"], []).append(r)
    assert actor["code"] == [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0443", "code": "AD", "display": "Admitting Provider"}]}]
    doctor, org = by_type["Practitioner"][0], by_type["Organization"][0]
    assert actor["practitioner"] == ref_to(doctor) and doctor["name"][0]["family"] == "Beethoven"
    assert doctor["address"][0]["city"] == "Flint"
    assert actor["organization"] == ref_to(org) and org["name"] == "Good Health Hospital"
    assert actor["location"] == [ref_to(by_type["Location"][-1])] and by_type["Location"][-1]["name"] == "B"
    assert actor["specialty"][0]["coding"][0]["code"] == "208D00000X"
    assert actor["period"] == {"start": "2021-02-23T09:30:00+00:00", "end": "2021-02-24T10:00:00+00:00"}
    assert actor["telecom"] == [{"system": "phone", "value": "(810) 4502369", "use": "home"}]
    assert found.device["identifier"] == [{"value": "PUMP-7"}] and found.device in found.made


def test_a_device_alone_makes_no_role():
    found = participation(seg("PRT||AD||EQUIP||||||PUMP-7"), "FAC")
    assert found.actor is None and found.made == [found.device]
    assert participation(seg("PRT|1|AD||AD"), "FAC").made == []


def test_role_segment():
    """ROL: 3 role, 4 person, 5/6 period, 9 provider type (specialty), 11 address, 12 telecom, 13 location, 14 organisation."""
    found = role(seg(ROL), "FAC")
    actor = found.actor
    assert found.code == "PP" and actor["code"][0]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/v2-0443"
    assert actor["specialty"][0]["coding"][0] == {"code": "408443003", "system": "http://snomed.info/sct", "display": "General practice"}
    assert actor["period"] == {"start": "2022-01-01", "end": "2022-02-02"}
    assert actor["telecom"] == [{"system": "email", "value": "pheob@example.org"}]
    names = {r["resourceType"]: r for r in found.made}
    assert names["Organization"]["name"] == "Good Health Clinic" and names["Practitioner"]["address"][0]["city"] == "Houston"
    assert "identifier" not in actor  # ROL-1 holds the segment's sequence number, not a role instance id


def test_same_participation_twice_is_one_role():
    assert participation(seg(PRT), "FAC").actor["id"] == participation(seg(PRT.replace("PRT|1|", "PRT|2|")), "FAC").actor["id"]


def test_attach_by_target():
    """Where a participant goes on each kind of resource; a role the patient's record has no place for stays apart."""
    found = participation(seg(PRT), "FAC")
    actor, device = ref_to(found.actor), ref_to(found.device)
    procedure, charge, observation, request = ({"resourceType": k} for k in ("Procedure", "ChargeItem", "Observation", "ServiceRequest"))
    for target in (procedure, charge):
        attach(found, target)
        assert target["performer"] == [{"actor": actor, "function": found.role}, {"actor": device, "function": found.role}]
    attach(found, observation)
    assert observation["performer"] == [actor] and observation["device"] == device
    attach(found, request)
    assert request["performer"] == [actor, device] and "requester" not in request
    ordering = participation(seg("PRT|1|AD||OP|77^House"), "FAC")
    attach(ordering, request)
    assert request["requester"] == ref_to(ordering.actor)
    copies = participation(seg("PRT|1|AD||RCT|88^Copy^Carl"), "FAC")
    attach(copies, request)
    attach(role(seg("ROL|1|AD|EP|89^Clerk^Cora"), "FAC"), request)
    assert request["performer"] == [actor, device]  # a copy recipient and the data enterer perform nothing
    patient = {"resourceType": "Patient"}
    attach(found, patient)
    assert "generalPractitioner" not in patient
    attach(role(seg(ROL), "FAC"), patient)
    assert patient["generalPractitioner"] == [ref_to(role(seg(ROL), "FAC").actor)]


def test_message_joins_each_participant_to_its_group():
    """A PRT after PV1 is an Encounter participant, a ROL after PD1 a general practitioner, a PRT after OBX a performer
    of the Observation, a ROL after PR1 a performer of the Procedure; none stays unmapped."""
    m = mapped(PID, "PD1", ROL, PV1, PRT, "PR1|1||P1^Proc^C4||20250101", "ROL|2|AD|SURG^Surgeon|55^Cutter^Sam",
               "OBX|1|NM|8867-4^Heart rate^LN||60|/min|||||F", "PRT||AD||RO|66^Observer^Olive")
    assert not {"PRT", "ROL"} & set(m.unmapped_segments)
    encounter, patient, procedure, observation = (of(m, k)[0] for k in ("Encounter", "Patient", "Procedure", "Observation"))
    admitting = by_ref(m, encounter["participant"][-1]["individual"])
    assert admitting["resourceType"] == "PractitionerRole" and admitting["code"][0]["coding"][0]["code"] == "AD"
    assert encounter["participant"][-1]["type"] == admitting["code"]
    assert by_ref(m, patient["generalPractitioner"][0])["code"][0]["coding"][0]["code"] == "PP"
    surgeon = by_ref(m, procedure["performer"][-1]["actor"])
    assert by_ref(m, surgeon["practitioner"])["name"][0]["family"] == "Cutter"
    observer = by_ref(m, observation["performer"][0])
    assert by_ref(m, observer["practitioner"])["name"][0]["family"] == "Observer"
    assert by_ref(m, encounter["participant"][-1]["individual"])["location"]  # the PRT-9 place resolved to Locations


def test_observation_performers():
    """OBX-16 responsible observer (role RO), OBX-23 performing organisation, OBX-25 its medical director (role MDIR)."""
    refs, found = performers(seg("OBX|1|NM|2823-3^K^LN||4.1||||||F|||||31^Obs^Olga|||||||Central Lab^L^CL1|1 Lab Rd|40^Boss^Bob"))
    by_id = {r["id"]: r for r in found}

    def named(reference):
        return by_id[reference["reference"].removeprefix("urn:uuid:")]

    lab, observer, director = (named(r) for r in refs)
    assert lab["resourceType"] == "Organization" and lab["name"] == "Central Lab"
    assert found[0]["address"] == [{"line": ["1 Lab Rd"]}]  # OBX-24, on the performing organisation (the first one named)
    assert observer["code"][0]["coding"][0]["code"] == "RO" and named(observer["practitioner"])["name"][0]["family"] == "Obs"
    assert director["code"][0]["coding"][0]["code"] == "MDIR" and director["organization"] == ref_to(lab)
    assert named(director["practitioner"])["name"][0]["family"] == "Boss"
    assert performers(seg("OBX|1|NM|2823-3^K^LN||4.1||||||F")) == ([], [])
    refs, found = performers(seg("OBX|1|NM|2823-3^K^LN||4.1||||||F||||LAB7^Main lab^CLIA"))  # OBX-15, the producer's id
    assert found == [{"resourceType": "Organization", "id": refs[0]["reference"].removeprefix("urn:uuid:"),
                      "identifier": [{"value": "LAB7", "system": "urn:clinstream:codesystem:CLIA"}], "name": "Main lab"}]


def test_ordering_provider_in_orc_and_prt_is_one_role():
    """ORC-12 and a PRT with role OP naming the same doctor are one PractitionerRole, the ServiceRequest's requester
    (they were two: the ORC's and the PRT's, differing only in how their ids were keyed)."""
    doctor = "77^Order^Olga^^^Dr^^^NPI&2.16.840.1.113883.4.6&ISO"
    m = mapped(PID, PV1, f"ORC|NW|P1|F1|||||||||{doctor}", "OBR|1|P1|F1|24331-1^Lipid panel^LN",
               f"PRT|1|AD||OP^Ordering Provider^HL70443|{doctor}")
    roles = [r for r in of(m, "PractitionerRole") if r["code"][0]["coding"][0]["code"] == "OP"]
    assert len(roles) == 1
    request = of(m, "ServiceRequest")[0]
    assert by_ref(m, request["requester"])["id"] == roles[0]["id"]
    assert by_ref(m, roles[0]["practitioner"])["name"][0]["family"] == "Order"


def test_practitioner_id_authority_is_its_assigner():
    """XCN-9 with a universal id (the guide's XCN[Practitioner] via HD[Organization]) -> an Organization set as the
    Practitioner identifier's assigner, wherever the XCN is (PV1, DG1, EVN, ORC, OBX, PRT); a bare namespace names none.
    Every reference in the Bundle resolves."""
    from fhir_mappers import hl7v2_to_fhir, validate_r4_bundle

    xcn = "1122^Alaz^Mo^^^^^^PERS&1.23&HCD"
    m = hl7v2_to_fhir("\r".join([
        "MSH|^~\\&|APP|FAC|RCV|RFAC|20260101103000+0000||ORU^R01^ORU_R01|M1|P|2.8",
        f"EVN||20260101103000+0000|||{xcn}",
        "PID|1||12345^^^FAC^MR||Doe^Jane", f"PV1|1|I||||||{xcn}|9^Bare^Bo^^^^^^LOCAL",
        "DG1|1||I10^Hypertension^I10" + "|" * 13 + xcn, f"ORC|RE|||||||||||{xcn}",
        "OBR|1|||24331-1^Lipid panel^LN", f"OBX|1|NM|2093-3^Cholesterol^LN||180|mg/dL|||||F|||||{xcn}",
        f"PRT||AD||AD^Admitting Provider^HL70912|{xcn}"]))
    validate_r4_bundle(m.bundle)
    by_url = {e["fullUrl"]: e["resource"] for e in m.bundle["entry"]}
    alaz = [r for r in by_url.values() if r["resourceType"] == "Practitioner" and r["name"][0]["family"] == "Alaz"]
    assert len(alaz) == 1
    authority = by_url[alaz[0]["identifier"][0]["assigner"]["reference"]]
    assert authority["identifier"] == [{"value": "PERS"}, {"value": "1.23", "type": {"coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/v2-0301", "code": "HCD"}]}}]
    bare = next(r for r in by_url.values() if r["resourceType"] == "Practitioner" and r["name"][0]["family"] == "Bare")
    assert "assigner" not in bare["identifier"][0]

    def references(node):
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                yield node["reference"]
            for value in node.values():
                yield from references(value)
        elif isinstance(node, list):
            for value in node:
                yield from references(value)

    assert {r for r in references(m.bundle) if r.startswith("urn:uuid:")} <= set(by_url)
