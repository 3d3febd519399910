"""Helpers for the mapper tests: hand-written segments parsed, whole messages mapped and validated."""

from fhir_mappers import hl7v2_to_fhir, validate_r4_bundle
from fhir_mappers.parse import parse_er7

MSH = "MSH|^~\\&|APP|FAC^1.2.3^ISO|RCV|RFAC|20260101103000+0000||{kind}|M1|P|2.8"
PID = "PID|1||12345^^^FAC&2.16.840.1.1&ISO^MR||Doe^Jane||19700412|F||||||||||A777^^^FAC^AN"
PV1 = "PV1|1|I|4W^401^A^FAC||||||||||||||||V100^^^FAC^VN"
PATIENT = {"reference": "urn:uuid:p"}
ENCOUNTER = {"reference": "urn:uuid:e"}


def seg(text: str):
    """One parsed segment (behind a throwaway MSH, which the splitter needs first)."""
    return parse_er7("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.8\r" + text)[1]


def mapped(*segments: str, kind: str = "ADT^A01^ADT_A01"):
    m = hl7v2_to_fhir("\r".join([MSH.format(kind=kind), *segments]))
    validate_r4_bundle(m.bundle)
    return m


def of(m, kind):
    return [e["resource"] for e in m.bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_ref(m, reference):
    return next(e["resource"] for e in m.bundle["entry"] if e["fullUrl"] == reference["reference"])


def ref_to(resource):
    return {"reference": f"urn:uuid:{resource['id']}"}
