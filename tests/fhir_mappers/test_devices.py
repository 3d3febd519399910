"""MSH-3, SFT and OBX-18 -> Device."""

from fhir_mappers.devices import application_device, equipment_device, software_device
from fhir_mappers.parse import parse_er7
from tests.fhir_mappers.segments import PID, by_ref, mapped, of, seg

def test_the_sending_application_is_a_device_owned_by_the_facility():
    msh = parse_er7("MSH|^~\\&|LABSYS^1.2.3.4^ISO|FAC|R|RF|20260101||ORU^R01|M1|P|2.5")[0]
    device = application_device(msh, {"resourceType": "Organization", "id": "o"})
    assert device["identifier"] == [{"value": "LABSYS"}, {"value": "urn:oid:1.2.3.4", "system": "urn:ietf:rfc:3986"}]
    assert device["owner"] == {"reference": "urn:uuid:o"}
    assert application_device(parse_er7("MSH|^~\\&||FAC|R|RF|20260101||ORU^R01|M1|P|2.5")[0], None) is None


def test_software_segment():
    """SFT-1 vendor (manufacturer and owner), -2 version, -3 product name, -4 binary id; none without product or vendor."""
    device, vendor = software_device(seg("SFT|Orion Health^L^77|2.4.3|Rhapsody|RAP-1|Integration engine|20070725"))
    assert device["manufacturer"] == "Orion Health" and device["owner"] == {"reference": f"urn:uuid:{vendor[0]['id']}"}
    assert device["deviceName"] == [{"name": "Rhapsody", "type": "manufacturer-name"}]
    assert device["version"] == [{"value": "2.4.3"}] and device["modelNumber"] == "RAP-1" and "note" not in device
    assert software_device(seg("SFT||2.4.3")) == (None, [])


def test_equipment_of_an_observation():
    """OBX-18: each valued EI repetition identifies the instrument; the same EI names the same Device wherever it appears."""
    device = equipment_device("AN-12^LAB^2.16.1^ISO~^^1.3.6^ISO~MOD-3")
    assert device["identifier"] == [{"value": "AN-12", "system": "urn:oid:2.16.1"}, {"value": "MOD-3"}]
    assert device["id"] == equipment_device("AN-12^LAB^2.16.1^ISO")["id"]
    assert equipment_device("") is None and equipment_device("^^1.3.6^ISO") is None


def test_observation_points_at_its_equipment():
    m = mapped(PID, "OBR|1|P1|F1|24323-8^Panel^LN", "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F|||||||AN-12^LAB", kind="ORU^R01^ORU_R01")
    observation = of(m, "Observation")[0]
    assert by_ref(m, observation["device"])["identifier"] == [{"value": "AN-12", "system": "urn:clinstream:id:LAB"}]
