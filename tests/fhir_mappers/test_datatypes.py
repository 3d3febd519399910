"""HL7 v2 data types to FHIR: timestamps, escapes, names, identifiers, addresses, telecom, codes."""

import pytest

from fhir_mappers.datatypes import address, codeable, dtm, human_name, identifier, person, telecom, unescape


@pytest.mark.parametrize("value,expected", [
    ("2026", "2026"), ("202601", "2026-01"), ("20260115", "2026-01-15"),
    ("202601151030", "2026-01-15T10:30:00+00:00"), ("20260115103005", "2026-01-15T10:30:05+00:00"),
    ("20260115103005.123-0500", "2026-01-15T10:30:05.123-05:00"), ("20260115103005+0130", "2026-01-15T10:30:05+01:30"),
    ("202601151030.5", "2026-01-15T10:30:00.5+00:00"), ("00010101120000+0000", "0001-01-01T12:00:00+00:00"),
    ("0999", "0999"), ("20260230", None), ("2026013112", "2026-01-31T12:00:00+00:00"),
])
def test_dtm_keeps_precision_and_offset(value, expected):
    """Partial precision is kept; a time without an offset takes the default zone (UTC); a year before 1000 keeps its four
    digits, which strftime would drop (an invalid dateTime); an impossible date is none."""
    assert dtm(value) == expected


@pytest.mark.parametrize("value", ["20261301", "20260230", "2026011525", "abc", "", "20260115103005+9900"])
def test_invalid_dtm_is_dropped(value):
    """An impossible timestamp yields None, never an invalid dateTime."""
    assert dtm(value) is None


def test_escapes():
    r"""\F\ \S\ \T\ \R\ \E\ \.br\ and hex escapes decode."""
    assert unescape(r"a\F\b\S\c\T\d\R\e\E\f") == "a|b^c&d~e\\f"
    assert unescape(r"line one\.br\line two") == "line one\nline two"
    assert unescape(r"caf\XE9\ ok") == "café ok"


def test_name_identifier_address_telecom():
    """XPN, CX (with assigning authority and type), XAD and XTN map to their FHIR types."""
    assert human_name("Doe^John^Q^Jr^Dr^^L") == {"family": "Doe", "given": ["John", "Q"], "suffix": ["Jr"], "prefix": ["Dr"], "use": "official"}
    assert identifier("12345^^^GENHOSP^MR") == {"value": "12345", "system": "urn:clinstream:id:GENHOSP",
                                                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}]}}
    assert identifier("9^^^H&2.16.840.1&ISO^MR")["system"] == "urn:oid:2.16.840.1"
    assert address("1 Oak St^Apt 2^Springfield^IL^62701^USA^H") == {"line": ["1 Oak St", "Apt 2"], "city": "Springfield", "state": "IL",
                                                                     "postalCode": "62701", "country": "USA", "use": "home"}
    assert telecom("^PRN^PH^^1^555^1234567") == {"system": "phone", "value": "+1 (555) 1234567", "use": "home"}
    assert telecom("^NET^Internet^a@b.org") == {"system": "email", "value": "a@b.org"}


def test_codeable_concept_systems():
    """Known coding systems get their canonical URIs; others a clinstream URN."""
    concept = codeable("8867-4^Heart rate^LN^HR^Pulse^L")
    assert concept["coding"][0] == {"code": "8867-4", "system": "http://loinc.org", "display": "Heart rate"}
    assert concept["coding"][1]["system"] == "urn:clinstream:codesystem:L" and concept["text"] == "Heart rate"
    assert codeable("") is None


def test_practitioners_from_two_registries_get_two_ids():
    """The same XCN-1 under two assigning authorities (XCN-9) is two Practitioners, the same one twice is one."""
    from fhir_mappers.encounter import practitioner

    a = practitioner("1234^Smith^John^^^^^^HOSPA")
    b = practitioner("1234^Smith^John^^^^^^HOSPB")
    assert a["id"] != b["id"]
    assert practitioner("1234^Smith^John^^^^^^HOSPA")["id"] == a["id"]


def test_numbers_are_hl7_numbers_and_finite():
    """NM takes a sign, digits and a point; "nan", exponents, underscores and overflowing digits are not numbers."""
    from fhir_mappers.datatypes import number

    assert number(" -12.5 ") == -12.5 and number(".5") == 0.5 and number("7.") == 7.0
    for text in ("nan", "inf", "1e3", "1_000", "9" * 400, "", "-", "1.2.3"):
        assert number(text) is None, text


def test_the_last_pass_keeps_resources_valid_fhir():
    """Empty strings, lists and objects go; odd whitespace (MLLP bytes, NBSP) becomes a space; codes get single spaces."""
    from fhir_mappers.ids import fhir_safe

    resource = {"resourceType": "Patient", "active": False, "name": [{"family": " Doe\x1c", "given": ["", "\xa0"]}],
                "identifier": [{"value": "1", "type": {"coding": [{"code": " MR\x0b  X "}]}}], "address": [{"line": [""]}]}
    assert fhir_safe(resource) == {"resourceType": "Patient", "active": False, "name": [{"family": "Doe"}],
                                   "identifier": [{"value": "1", "type": {"coding": [{"code": "MR X"}]}}]}


def test_the_last_pass_covers_every_shape():
    """The loops' shortcuts (printable strings, dicts in lists) change nothing: codes with doubled spaces,
    strings in lists, numbers, booleans and None in objects and arrays. It cleans in place: a clean resource
    comes back as the very same objects."""
    from fhir_mappers.ids import fhir_safe

    resource = {"code": "A  B", "text": " x ", "value": 0, "flag": False, "none": None, "list": [" a ", "", 0, None, {}, [" "], {"code": " c\td "}],
                "nested": {"deeper": {"empty": ""}}}
    cleaned = fhir_safe(resource)
    assert cleaned == {"code": "A B", "text": "x", "value": 0, "flag": False, "list": ["a", 0, {"code": "c d"}]}
    assert cleaned is resource
    clean = {"a": "x", "b": [{"c": "y"}, 1], "d": {"e": True}}
    parts = (clean["b"], clean["b"][0], clean["d"])
    assert fhir_safe(clean) is clean and (clean["b"], clean["b"][0], clean["d"]) == parts and clean["b"] is parts[0]
    assert fhir_safe([" a ", ["", " "], {"x": ""}]) == ["a"]


def test_references_pass_the_last_pass_as_they_are():
    """ref() is clean by construction and an object of that one key is passed over, in objects and arrays alike (the
    fuzz test checks every such object in its Bundles is a ref()); any other object is cleaned."""
    import json

    from fhir_mappers.ids import fhir_safe, ref

    subject = ref({"id": "5f0c"})
    cleaned = fhir_safe({"subject": subject, "target": [subject, {"reference": " x ", "display": " d "}], "note": " n "})
    assert cleaned == {"subject": {"reference": "urn:uuid:5f0c"}, "target": [{"reference": "urn:uuid:5f0c"}, {"reference": "x", "display": "d"}],
                       "note": "n"}
    assert cleaned["subject"] is subject and cleaned["target"][0] is subject and type(subject) is dict
    assert json.loads(json.dumps(cleaned)) == cleaned


def test_resource_ids_are_uuid5():
    """resource_id writes the uuid5 out itself: it must be the standard one, non-ASCII keys included."""
    import uuid

    from fhir_mappers.ids import NAMESPACE, resource_id

    for key in ("GENHOSP|123", "", "Müller\u2028𝄞", "x" * 500):
        assert resource_id("Patient", key, "1") == str(uuid.uuid5(NAMESPACE, f"Patient|{key}|1"))


def test_cached_timestamps_follow_the_sender_zone():
    """dtm caches its conversions per zone: one value read for two senders gives each its own offset."""
    from zoneinfo import ZoneInfo

    from fhir_mappers.datatypes import sender_context

    assert dtm("20260115103005") == "2026-01-15T10:30:05+00:00"
    with sender_context(ZoneInfo("America/New_York"), None):
        assert dtm("20260115103005") == "2026-01-15T10:30:05-05:00"
    with sender_context(ZoneInfo("Europe/Paris"), None):
        assert dtm("20260715103005") == "2026-07-15T10:30:05+02:00"
    assert dtm("20260115103005") == "2026-01-15T10:30:05+00:00"


def test_effective_and_expiration_dates_are_periods():
    """The guide's datatype maps: CX-7/8, XPN-10 (validity range) or XPN-12/13, XAD-12 (range) or XAD-13/14 and XTN-13/14
    -> period; XTN-18 (preference order) -> rank, for e-mail addresses as for phones."""
    assert identifier("1234^^^H^MR^^20200101^20201231")["period"] == {"start": "2020-01-01", "end": "2020-12-31"}
    assert human_name("Doe^Jo^^^^^L^^^19241012")["period"] == {"start": "1924-10-12"}
    assert human_name("Doe^Jo^^^^^L^^^^^19241010^19241015")["period"] == {"start": "1924-10-10", "end": "1924-10-15"}
    assert address("1 Main St^^Town^ST^12345^US^H^^^^^^20000110^20050111")["period"] == {"start": "2000-01-10", "end": "2005-01-11"}
    assert address("1 Main St^^Town^^^^^^^^^20000110&20000120")["period"] == {"start": "2000-01-10", "end": "2000-01-20"}
    point = telecom("^WPN^PH^^1^555^1234567^^^^^^20010110^20020110^^^^2")
    assert point["period"] == {"start": "2001-01-10", "end": "2002-01-10"} and point["rank"] == 2 and point["use"] == "work"
    assert telecom("^NET^Internet^a@b.org^^^^^^^^^20010110^^^^^1") == {"system": "email", "value": "a@b.org",
                                                                        "period": {"start": "2001-01-10"}, "rank": 1}
    assert "period" not in human_name("Doe^Jo") and "period" not in telecom("^PRN^PH^^^555^1234567")


def test_unformatted_telephone_number_is_the_value():
    """XTN-12 (unformatted number) is ContactPoint.value ahead of 5-7 and 1, as the guide's XTN[ContactPoint] map has
    it: PRD-5/13 in the FHIR-Converter samples send the number only there. XTN-4 is an e-mail address only for an
    Internet or X.400 address (or with no equipment type); beside a phone type the number comes first."""
    assert telecom("^WPN^PH^^^^^^^^^(626)555-1234") == {"system": "phone", "value": "(626)555-1234", "use": "work"}
    assert telecom("^WPN^PH^^1^626^5551234^^^^^6265551234")["value"] == "6265551234"
    # PID-13 of the FHIR-Converter ADT samples: FHIR-Converter gives 2222 too
    assert telecom("78788788^^CP^5555^^^1111^^^^^2222^20010110^20020110^^^^18") == {
        "system": "phone", "value": "2222", "use": "mobile", "period": {"start": "2001-01-10", "end": "2002-01-10"}, "rank": 18,
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/contactpoint-local", "valueString": "1111"}]}
    assert telecom("88888888^PRN^CP^5555")["value"] == "88888888"
    assert telecom("^NET^Internet^a@b.org^^^^^^^^555") == {"system": "email", "value": "a@b.org"}
    assert telecom("^^X.400^a@b.org") == {"system": "email", "value": "a@b.org"}
    assert telecom("^^^a@b.org") == {"system": "email", "value": "a@b.org"}
    assert telecom("^WPN^PH^5551234")["value"] == "5551234"  # a number only in XTN-4 is kept rather than dropped
    assert telecom("^WPN^PH") is None and telecom("") is None


def test_degree_is_a_name_suffix_after_the_suffix():
    """XPN-6 (degree) is HumanName.suffix after XPN-4, as the guide's XPN[HumanName] map (suffix[2]) and
    FHIR-Converter (PID-5 EVERYMAN^ADAM^A^III^DR^MD -> suffix III, MD) have it."""
    assert human_name("EVERYMAN^ADAM^A^III^DR^MD^L")["suffix"] == ["III", "MD"]
    assert human_name("Smith^Jane^^^Dr^PhD") == {"family": "Smith", "given": ["Jane"], "suffix": ["PhD"], "prefix": ["Dr"]}
    assert "suffix" not in human_name("Doe^John^Q^^Dr^^L")


def test_professional_suffix_is_a_name_suffix_after_the_degree():
    """XPN-14 (professional suffix) is HumanName.suffix after XPN-4 and XPN-6, as the guide's XPN[HumanName] map
    ([1].suffix) and FHIR-Converter (PID-5 EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^MD^D^^^19241012^^^^PF -> suffix III, MD,
    PF) have it."""
    assert human_name("EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^MD^D^^^19241012^^^^PF^Addsm")["suffix"] == ["III", "MD", "PF"]
    assert human_name("Doe^Jo^^^^^^^^^^^^FACS") == {"family": "Doe", "given": ["Jo"], "suffix": ["FACS"]}
    assert human_name("Doe^Jo^^^^RN^^^^^^^^FACS")["suffix"] == ["RN", "FACS"]
    assert "suffix" not in human_name("Doe^Jo^^^^^^^^^^^^\\Z\\")  # an escape that leaves nothing adds none


def test_practitioner_degree_and_professional_suffix_are_name_suffixes():
    """XCN-7 (degree) and XCN-21 (professional suffix) are HumanName.suffix after XCN-5, as the guide's
    XCN[Practitioner] map (name.suffix[2], name.suffix) and FHIR-Converter (PV1-7 ...^Alaz^Mohammed^Mahi^JR^Dr.^MD
    ...^Al -> suffix JR, MD, Al) have it."""
    _, name = person("1122334^Alaz^Mohammed^Mahi^JR^Dr.^MD^^PERSONNELt&1.23&HCD^B^^^BR^^^^^^19241010^19241015^Al")
    assert name == {"family": "Alaz", "given": ["Mohammed", "Mahi"], "suffix": ["JR", "MD", "Al"], "prefix": ["Dr."],
                    "period": {"start": "1924-10-10", "end": "1924-10-15"}}
    assert person("1234^POWELL^ROBERT^^^DR^MD")[1] == {"family": "POWELL", "given": ["ROBERT"], "suffix": ["MD"], "prefix": ["DR"]}
    assert person("1234^Doe^Jo^^^^^^^^^^^^^^^^^^FACS")[1]["suffix"] == ["FACS"]
    assert "suffix" not in person("004777^ATTEND^AARON^A^^^^^HOSP")[1]


def test_practitioner_identifier_type_name_use_and_period():
    """The rest of the guide's XCN[Practitioner] map, as FHIR-Converter has it on the corpus's PV1-7 (XCN-13 BR, XCN-19/20
    1924-10-10 to 1924-10-15): XCN-13 the identifier's type (table 0203), XCN-10 the name's use, XCN-17 (validity range)
    or XCN-19/20 the name's period."""
    ident, name = person("1122334^Alaz^Mohammed^^^^^^PERSONNELt&1.23&HCD^B^^^BR^^^^^^19241010^19241015")
    assert ident["type"] == {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "BR"}]}
    assert name["period"] == {"start": "1924-10-10", "end": "1924-10-15"} and "use" not in name  # B (birth name): no FHIR use
    ident, name = person("1234^POWELL^ROBERT^^^^^^^L^^^NPI^^^^20200101&20201231")
    assert ident["type"]["coding"][0]["code"] == "NPI" and name["use"] == "official"
    assert name["period"] == {"start": "2020-01-01", "end": "2020-12-31"}
    ident, name = person("1234^POWELL^ROBERT")
    assert "type" not in ident and set(name) == {"family", "given"}


def test_use_code_applies_to_email_addresses():
    """XTN-2 (telecommunication use code) is ContactPoint.use for an e-mail address as for a phone, as the guide's
    XTN[ContactPoint] map has it, with the codes of its table 0201 map (PRN home, WPN work, PRS mobile; NET and the
    rest unmatched). FHIR-Converter gives PID-14 78788788^WPN^Internet^5555 use work too."""
    assert telecom("78788788^WPN^Internet^5555^^^^^^^^^20010110^20020110^^^^18") == {
        "system": "email", "value": "5555", "use": "work", "period": {"start": "2001-01-10", "end": "2002-01-10"}, "rank": 18}
    assert telecom("^PRN^X.400^a@b.org") == {"system": "email", "value": "a@b.org", "use": "home"}
    assert telecom("^PRS^^a@b.org")["use"] == "mobile"
    assert "use" not in telecom("^NET^Internet^a@b.org") and "use" not in telecom("^NET^^Elise.Wong@isp.com")
    assert "use" not in telecom("a@b.org^NET^Internet")  # an address in XTN-1 is an e-mail too: the guide's codes
    assert telecom("555-1234^PRS^PH")["use"] == "mobile"
    assert telecom("555-1234^ORN^PH")["use"] == "home"  # phones keep reading ORN/NET as home (not in the guide's map)


def test_number_parts_are_contactpoint_extensions():
    """XTN-5..8 (country code, area code, local number, extension) are FHIR's core contactpoint-country, -area, -local and
    -extension on the ContactPoint, as the guide's XTN[ContactPoint] map has them (strings, for any equipment type).
    XTN-5..7 only where the value is not written from them (an XTN-12 number, an e-mail): nothing sent is lost, and
    the common phone number is not carried twice. None when not sent."""
    core = "http://hl7.org/fhir/StructureDefinition/contactpoint-"
    parts = [{"url": core + "country", "valueString": "1"}, {"url": core + "area", "valueString": "555"},
             {"url": core + "local", "valueString": "1234567"}]
    extension = [{"url": core + "extension", "valueString": "89"}]
    assert telecom("^WPN^PH^^1^555^1234567^89") == {"system": "phone", "value": "+1 (555) 1234567", "use": "work",
                                                    "extension": extension}
    assert telecom("^WPN^PH^^^^^89^^^^5551234567")["extension"] == extension
    assert telecom("^WPN^PH^^1^555^1234567^89^^^^5551234567")["extension"] == parts + extension
    # PID-13 of the FHIR-Converter ADT samples: the guide's map sets the parts beside an e-mail address too
    assert [e["valueString"] for e in telecom("^^Internet^fred@nnnn.com^111^813^8853999^1234")["extension"]] == ["111", "813", "8853999", "1234"]
    assert "extension" not in telecom("^WPN^PH^^1^555^1234567") and "extension" not in telecom("(555)1234567^PRN^PH")
    assert telecom("^WPN^PH^^ ^555^1234567^ ^^^^5551234567")["extension"] == parts[1:]
    assert telecom("^WPN^PH^^^^^89") is None  # an extension alone is no ContactPoint


def test_datatype_values_are_final_and_shared():
    """The high-volume datatypes are cached and shared by every Bundle naming the same value, so a value cannot be
    changed in place (it would change the next patient's Bundle); a copy is a plain dict that can."""
    import copy

    from fhir_mappers.ids import Clean

    concept = codeable("8867-4^Heart rate^LN")
    assert isinstance(concept, Clean) and codeable("8867-4^Heart rate^LN") is concept
    for change in (lambda: concept.__setitem__("text", "x"), lambda: concept["coding"].append({}),
                   lambda: concept["coding"][0].update(code="x"), lambda: concept.setdefault("text", "x"),
                   lambda: identifier("123^^^HOSP^MR").pop("value"), lambda: human_name("DOE^JOHN")["given"].sort()):
        with pytest.raises(TypeError, match="final"):
            change()
    assert concept == {"coding": [{"code": "8867-4", "display": "Heart rate", "system": "http://loinc.org"}], "text": "Heart rate"}
    plain = copy.deepcopy(concept)
    plain["coding"][0]["code"] = "changed"
    assert type(plain) is dict and concept["coding"][0]["code"] == "8867-4"


def test_cached_values_follow_the_sender():
    """A sender's code-system names and zone change what a datatype maps to: the caches never hand one sender's
    value to another."""
    from zoneinfo import ZoneInfo

    from fhir_mappers.datatypes import sender_context

    assert codeable("X1^Thing^LOCAL")["coding"][0]["system"] == "urn:clinstream:codesystem:LOCAL"
    with sender_context(None, {"LOCAL": "http://example.org/local"}):
        assert codeable("X1^Thing^LOCAL")["coding"][0]["system"] == "http://example.org/local"
    assert codeable("X1^Thing^LOCAL")["coding"][0]["system"] == "urn:clinstream:codesystem:LOCAL"
    xpn = "DOE^JOHN^^^^^L^^^^^20260115103005"
    assert human_name(xpn)["period"] == {"start": "2026-01-15T10:30:05+00:00"}
    with sender_context(ZoneInfo("America/New_York"), None):
        assert human_name(xpn)["period"] == {"start": "2026-01-15T10:30:05-05:00"}


@pytest.mark.parametrize("build,text", [
    (codeable, " 12  3 ^ Heart\x0brate ^ LN ^^ \\.br\\ ^^^^ alt "), (codeable, "^ ^^ x ^  ^"), (identifier, " 123 ^^^ HOSP ^ MR "),
    (human_name, " Doe \\.br\\^ Jo\x0cn ^^ Jr ^ Dr ^ MD "), (address, " 1 Main St ^ ^ Town \x0b^ ST ^ 123 ^ US ^ H"),
    (telecom, "^PRN^PH^ me@example.org ^^^ 555 \x0b^^^^^ 5551234 "), (telecom, "^WPN^Internet^ \x0b "),
])
def test_datatype_values_are_clean_by_construction(build, text):
    """What fhir_safe's last pass no longer visits must need nothing from it: trimmed, odd whitespace a space, a
    code's inner runs one space, nothing empty."""
    import copy

    from fhir_mappers.ids import fhir_safe

    value = build(text)
    if value is not None:
        plain = copy.deepcopy(value)
        assert fhir_safe(copy.deepcopy(plain)) == plain
