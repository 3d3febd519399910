"""MSH-3, SFT, OBX-18, PRT-10/16-22 and FT1-34/35 -> Device."""

from fhir_mappers.devices import application_device, charged_item, equipment_device, participation_device, software_device
from fhir_mappers.parse import parse_er7
from tests.fhir_mappers.segments import PATIENT, PID, by_ref, mapped, of, seg

PRT_DEVICE = ("PRT||AD||EQUIP||||||PUMP-7^BIOMED^1.2.840.1^ISO|20260101|20260102||||00643169001763^^2.51.1.1^ISO|20140401|20220712|"
              "LOT-9|SER-3||706172005^Ventilator^SCT")


def test_the_sending_application_is_a_device_owned_by_the_facility():
    msh = parse_er7("MSH|^~\\&|LABSYS^1.2.3.4^ISO|FAC|R|RF|20260101||ORU^R01|M1|P|2.5")[0]
    device = application_device(msh, {"resourceType": "Organization", "id": "o"})
    assert device["identifier"] == [{"value": "LABSYS"}, {"value": "urn:oid:1.2.3.4", "system": "urn:ietf:rfc:3986"}]
    assert device["owner"] == {"reference": "urn:uuid:o"}
    assert application_device(parse_er7("MSH|^~\\&||FAC|R|RF|20260101||ORU^R01|M1|P|2.5")[0], None) is None


def test_software_segment():
    """SFT-1 vendor (manufacturer and owner), -2 version, -3 product name, -4 binary id, -6 install date (the version's,
    the guide's R5 cross-version extension); none without product or vendor."""
    device, vendor = software_device(seg("SFT|Orion Health^L^77|2.4.3|Rhapsody|RAP-1|Integration engine|20070725"))
    assert device["manufacturer"] == "Orion Health" and device["owner"] == {"reference": f"urn:uuid:{vendor[0]['id']}"}
    assert device["deviceName"] == [{"name": "Rhapsody", "type": "manufacturer-name"}]
    assert device["version"] == [{"value": "2.4.3", "extension": [
        {"url": "http://hl7.org/fhir/5.0/StructureDefinition/extension-Device.version.installDate", "valueDateTime": "2007-07-25"}]}]
    assert device["modelNumber"] == "RAP-1" and "note" not in device
    assert software_device(seg("SFT||2.4.3")) == (None, [])


def test_equipment_of_an_observation():
    """OBX-18: each valued EI repetition identifies the instrument; the same EI names the same Device wherever it appears."""
    device = equipment_device("AN-12^LAB^2.16.1^ISO~^^1.3.6^ISO~MOD-3")
    assert device["identifier"] == [{"value": "AN-12", "system": "urn:oid:2.16.1"}, {"value": "MOD-3"}]
    assert device["id"] == equipment_device("AN-12^LAB^2.16.1^ISO")["id"]
    assert equipment_device("") is None and equipment_device("^^1.3.6^ISO") is None


def test_participating_device_with_its_udi():
    """PRT-10 ids, -16 UDI (an identifier typed UDI and the udiCarrier), -17/-18 dates, -19 lot, -20 serial, -22 type."""
    device = participation_device(seg(PRT_DEVICE))
    assert device["identifier"][0] == {"value": "PUMP-7", "system": "urn:oid:1.2.840.1"}
    assert device["identifier"][1] == {"value": "00643169001763", "system": "urn:oid:2.51.1.1",
                                       "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "UDI"}]}}
    assert device["udiCarrier"] == [{"deviceIdentifier": "00643169001763", "issuer": "urn:oid:2.51.1.1"}]
    assert (device["manufactureDate"], device["expirationDate"], device["lotNumber"], device["serialNumber"]) == (
        "2014-04-01", "2022-07-12", "LOT-9", "SER-3")
    assert device["type"]["coding"][0]["code"] == "706172005"
    assert participation_device(seg("PRT||AD||AD|77^House")) is None


def test_item_charged_for():
    """FT1-34 item number and -35 model number: a Device used by the patient."""
    device = charged_item(seg("FT1|1|T1||20191122||CG|71045^X^C4" + "|" * 27 + "Item-12345^^L|Model-9"), PATIENT)
    assert device["identifier"] == [{"value": "Item-12345"}] and device["modelNumber"] == "Model-9" and device["patient"] == PATIENT


def test_observation_points_at_its_equipment():
    m = mapped(PID, "OBR|1|P1|F1|24323-8^Panel^LN", "OBX|1|NM|2823-3^Potassium^LN||4.1|mmol/L|||||F|||||||AN-12^LAB", kind="ORU^R01^ORU_R01")
    observation = of(m, "Observation")[0]
    assert by_ref(m, observation["device"])["identifier"] == [{"value": "AN-12", "system": "urn:clinstream:id:LAB"}]
