"""PL -> a chain of Locations, and the Encounter pointing at the innermost one."""

from fhir_mappers import hl7v2_to_fhir
from fhir_mappers.locations import locations


def test_each_filled_component_is_a_location_part_of_the_one_above():
    """Facility <- building <- floor <- point of care <- room <- bed, with the facility's OID as identifier."""
    chain = locations("4E&1.2.3&ISO^401^B^GENHOSP&2.16.840.1&ISO^^^Main^Floor4", "MSHFAC")
    assert [(loc["name"], loc["physicalType"]["coding"][0]["code"]) for loc in chain] == [
        ("GENHOSP", "si"), ("Main", "bu"), ("Floor4", "lvl"), ("4E", "wa"), ("401", "ro"), ("B", "bd")]
    assert all(inner["partOf"] == {"reference": f"urn:uuid:{outer['id']}"} for outer, inner in zip(chain, chain[1:]))
    assert "partOf" not in chain[0]
    assert chain[0]["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1"}]


def test_the_same_bed_in_another_room_is_another_location():
    """Ids follow the path from the facility: bed A of 401 and bed A of 402 differ, bed A of 401 twice is one."""
    a, b = locations("4E^401^A^GENHOSP", "X")[-1], locations("4E^402^A^GENHOSP", "X")[-1]
    assert a["id"] != b["id"] and a["id"] == locations("4E^401^A^GENHOSP", "X")[-1]["id"]
    assert locations("", "X") == [] and locations("^^^", "X") == []


def test_the_encounter_points_at_the_bed_and_lists_prior_and_pending_places():
    """PV1-3 is where the patient is (active), PV1-6 where they were (completed), PV1-42 where they go (planned)."""
    pv1 = [b""] * 44
    pv1[:4] = [b"PV1", b"1", b"I", b"4E^401^A^GENHOSP"]
    pv1[6], pv1[19], pv1[42] = b"ICU^1^1^GENHOSP", b"V1^^^GENHOSP^VN", b"3W^301^B^GENHOSP"
    raw = b"MSH|^~\\&|A|GENHOSP|C|D|20260101||ADT^A02|X1|P|2.5\rPID|1||123^^^H^MR||Doe^J\r" + b"|".join(pv1) + b"\r"
    bundle = hl7v2_to_fhir(raw).bundle
    by_id = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    encounter = next(r for r in by_id.values() if r["resourceType"] == "Encounter")
    stays = [(by_id[v["location"]["reference"].removeprefix("urn:uuid:")]["name"], v["status"]) for v in encounter["location"]]
    assert stays == [("A", "active"), ("1", "completed"), ("B", "planned")]


def test_every_pl_component_is_an_hd():
    """Room, bed, building and floor are HDs like point of care and facility: the namespace names the place, a
    universal id identifies it."""
    chain = locations("4E^ROOM1&2.16.840.1.113883.4.642.1.1108&ISO^BED1^FAC1^^^BLD1&1.2&L^FLOOR1", "X")
    assert [loc["name"] for loc in chain] == ["FAC1", "BLD1", "FLOOR1", "4E", "ROOM1", "BED1"]
    assert chain[4]["identifier"] == [{"system": "urn:ietf:rfc:3986", "value": "urn:oid:2.16.840.1.113883.4.642.1.1108"}]
    assert chain[1]["identifier"] == [{"value": "1.2"}] and "identifier" not in chain[5]


def test_location_description_is_on_the_point_of_care():
    """PL-9 (location description) is Location.description of the point of care (PL-1), as the guide's PL map has it
    ([1].description); with no point of care, of the innermost Location rather than dropped."""
    chain = locations("4E^401^B^GENHOSP^^^Main^Floor4^East wing\\T\\ window bed", "X")
    assert [loc.get("description") for loc in chain] == [None, None, None, "East wing& window bed", None, None]
    assert locations("^^^GENHOSP^^^Main^^Annex entrance", "X")[-1]["description"] == "Annex entrance"
    assert all("description" not in loc for loc in locations("4E^401^B^GENHOSP", "X"))
    assert locations("^^^^^^^^Nowhere", "X") == []  # a description alone names no place
    pv1 = b"PV1|1|I|4E^401^A^GENHOSP^^^^^Step-down unit by the nurses' station\r"
    raw = b"MSH|^~\\&|A|GENHOSP|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||123^^^H^MR||Doe^J\r" + pv1
    ward = next(e["resource"] for e in hl7v2_to_fhir(raw).bundle["entry"] if e["resource"].get("name") == "4E")
    assert ward["description"] == "Step-down unit by the nurses' station"
