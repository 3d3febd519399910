"""HL7 v2 data types -> FHIR datatypes: field access, escapes, DTM, CWE, CX, XPN, XAD, XTN, XCN."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from fhir_mappers.parse import Segment

# A timestamp without an offset is read in this zone unless the sender's overrides name another.
DEFAULT_TIMEZONE = "UTC"
# The sending facility's zone and coding-system names (fhir_mappers/senders.py) for the message being
# mapped. dtm() and codeable() are called from some seventy places across the mappers; threading a profile
# through all of them would touch each signature for two values. A ContextVar is set and reset by
# hl7v2_to_fhir around one message only (sender_context), so nothing global changes between messages,
# and concurrent mappings in threads or asyncio tasks each see their own sender.
_ZONE: ContextVar[ZoneInfo] = ContextVar("clinstream_sender_zone", default=ZoneInfo(DEFAULT_TIMEZONE))
_SYSTEMS: ContextVar[dict[str, str]] = ContextVar("clinstream_sender_code_systems", default={})
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"  # identifier types
CODE_SYSTEMS = {"LN": "http://loinc.org", "LOINC": "http://loinc.org", "SCT": "http://snomed.info/sct", "SNM": "http://snomed.info/sct",
                "I10": "http://hl7.org/fhir/sid/icd-10", "I10C": "http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
                "I9C": "http://hl7.org/fhir/sid/icd-9-cm", "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm", "UCUM": "http://unitsofmeasure.org",
                "CVX": "http://hl7.org/fhir/sid/cvx", "NDC": "http://hl7.org/fhir/sid/ndc", "C4": "http://www.ama-assn.org/go/cpt",
                "CPT": "http://www.ama-assn.org/go/cpt"}
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")
_HEX = re.compile(r"\\X([0-9A-Fa-f]+)\\")
_HL7_TABLE = re.compile(r"^HL7\d{4}$")


def field(segment: Segment, n: int) -> str:
    """The raw text of field n ('' when absent), MSH numbered as the standard numbers it."""
    fields = segment.fields  # what Segment.__getitem__ does, one call fewer: mappers read ~100 fields a message
    return fields[n] if n < len(fields) else ""


def reps(text: str) -> list[str]:
    return [r for r in text.split("~") if r]


def comps(text: str, n: int = 12) -> list[str]:
    parts = text.split("^")
    return parts + [""] * (n - len(parts))


def unescape(text: str) -> str:
    r"""\F\ | , \S\ ^ , \T\ & , \R\ ~ , \E\ \ , \.br\ newline, \Xhh..\ bytes; unknown escapes dropped."""
    if "\\" not in text:
        return text
    text = _HEX.sub(lambda m: bytes.fromhex(m.group(1) if len(m.group(1)) % 2 == 0 else "0" + m.group(1)).decode("latin-1"), text)
    out, i = [], 0
    simple = {"F": "|", "S": "^", "T": "&", "R": "~", "E": "\\", ".br": "\n", ".sp": "\n"}
    while i < len(text):
        if text[i] == "\\":
            end = text.find("\\", i + 1)
            if end == -1:
                out.append(text[i:])
                break
            out.append(simple.get(text[i + 1:end], ""))
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def dtm(value: str) -> str | None:
    """HL7 DTM -> FHIR dateTime at the same precision; a time part always carries an offset. None if invalid."""
    if not value:
        return None
    value = value.strip().split("^")[0]
    return _dtm(value, _ZONE.get()) if _DTM.match(value) else None


@lru_cache(maxsize=4096)
def _dtm(value: str, zone: ZoneInfo) -> str | None:
    """dtm() of a value the pattern matched (so at most 27 characters), read in `zone` when it has no
    offset. Cached: a message repeats its timestamps (MSH-7, OBR-7 and every OBX-14 of a panel), and
    the calendar check and zone lookup were the costliest part of mapping a vital-signs ORU."""
    year, month, day, hour, minute, second, fraction, offset = _DTM.match(value).groups()  # type: ignore[union-attr]
    try:
        if hour is None:
            datetime(int(year), int(month or 1), int(day or 1))
            return "-".join(p for p in (year, month, day) if p)
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0))
    except (ValueError, TypeError):
        return None
    if offset:
        sign, hh, mm = offset[0], int(offset[1:3]), int(offset[3:])
        if hh > 14 or mm > 59:
            return None
        tz = f"{sign}{hh:02d}:{mm:02d}"
    else:
        # zoneinfo gives the offset in force at that wall-clock time (DST included); an hour repeated when
        # clocks go back reads as its first occurrence, one skipped when they go forward with the earlier offset
        tz = moment.replace(tzinfo=zone).strftime("%z")
        tz = f"{tz[:3]}:{tz[3:]}"
    return f"{moment:%Y-%m-%dT%H:%M:%S}{fraction or ''}{tz}"


def date_only(value: str) -> str | None:
    full = dtm(value)
    return full[:10] if full and len(full) >= 10 else full


def instant(value: str) -> str | None:
    """FHIR instant needs seconds and an offset: only full timestamps qualify."""
    full = dtm(value)
    return full if full and "T" in full else None


@contextmanager
def sender_context(zone: ZoneInfo | None, code_systems: dict[str, str] | None) -> Iterator[None]:
    """Within the block, timestamps without an offset are read in `zone` and `code_systems` (upper-case
    CWE-3 names -> URIs) come before the built-in names; both are restored on leaving, errors included."""
    zone_token = _ZONE.set(zone) if zone is not None else None
    systems_token = _SYSTEMS.set(code_systems) if code_systems else None
    try:
        yield
    finally:
        if systems_token is not None:
            _SYSTEMS.reset(systems_token)
        if zone_token is not None:
            _ZONE.reset(zone_token)


def system_uri(name: str) -> str:
    name = unescape(name).strip()
    key = name.upper()
    uri = _SYSTEMS.get().get(key) or CODE_SYSTEMS.get(key)
    if uri is None and _HL7_TABLE.match(key):  # HL7nnnn: the v2 table's own code system (V2-to-FHIR guide)
        uri = f"http://terminology.hl7.org/CodeSystem/v2-{key[3:]}"
    return uri or f"urn:clinstream:codesystem:{re.sub(r'[^A-Za-z0-9.-]', '-', name)}"


_NM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def number(text: str) -> float | None:
    """HL7 NM: an optional sign, digits and a decimal point. Python's float() would also take "nan",
    "1e999" and "1_000", none of which is a number a sender meant or a FHIR decimal can hold."""
    text = text.strip()
    if not _NM.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def codeable(text: str) -> dict[str, Any] | None:
    """CWE/CE: code^text^system^alt code^alt text^alt system -> CodeableConcept."""
    raw = comps(text)
    # escapes are rare in codes: unescape each component once, and only when there is one (a sixth of the time
    # this took went to unescape calls on plain text)
    c = [unescape(part) for part in raw] if "\\" in text else raw
    codings = []
    for first in (0, 3):  # code^display^system, then the alternate triplet
        # a FHIR code has no leading, trailing or doubled whitespace, and escapes may leave nothing at all
        code = " ".join(c[first].split())
        if code:
            coding: dict[str, Any] = {"code": code}
            if c[first + 2].strip():
                coding["system"] = system_uri(raw[first + 2])
            display = c[first + 1]
            if display.strip():
                coding["display"] = display
            codings.append(coding)
    label = ""
    for candidate in (c[1], c[4], c[8]):
        if candidate.strip():
            label = candidate
            break
    if not codings and not label:
        return None
    concept: dict[str, Any] = {}
    if codings:
        concept["coding"] = codings
    if label:
        concept["text"] = label
    return concept


def authority(text: str) -> str:
    """HD (namespace&universal id&type) -> a namespace for keys and identifier systems."""
    parts = text.split("&")
    return unescape(parts[0] or (parts[1] if len(parts) > 1 else "")) or "local"


def identifier_system(hd: str) -> str:
    parts = hd.split("&") + ["", ""]
    if parts[1] and parts[2].upper() == "ISO":
        return f"urn:oid:{parts[1]}"
    return f"urn:clinstream:id:{authority(hd)}"


def validity(start: str, end: str) -> dict[str, str] | None:
    """The Period a datatype's effective and expiration dates (CX-7/8, XPN-12/13, XAD-13/14, XTN-13/14) give it."""
    if not start and not end:  # nearly always: every identifier, name, address and phone asks
        return None
    period = {k: v for k, v in (("start", dtm(start)), ("end", dtm(end))) if v}
    return period or None


def identifier(cx: str) -> dict[str, Any] | None:
    """CX: id^check^scheme^authority^type^facility^effective^expiration -> Identifier (7/8 its period)."""
    c = comps(cx, 8)
    if not c[0]:
        return None
    ident: dict[str, Any] = {"value": unescape(c[0]), "system": identifier_system(c[3])}
    if c[4]:
        ident["type"] = {"coding": [{"system": V2_0203, "code": unescape(c[4])}]}
    period = validity(c[6], c[7])
    if period:
        ident["period"] = period
    return ident


def human_name(xpn: str) -> dict[str, Any] | None:
    c = comps(xpn, 14)
    name: dict[str, Any] = {}
    family, given = unescape(c[0].split("&")[0]), [unescape(g) for g in (c[1], c[2]) if g]
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    if c[13]:  # XPN-14 professional suffix (rare), after XPN-4 and XPN-6: the guide's XPN[HumanName] [1].suffix
        suffixes = [s for s in map(unescape, (c[3], c[5], c[13])) if s]
        if suffixes:
            name["suffix"] = suffixes
    elif c[3] or c[5]:  # XPN-4 suffix, then XPN-6 degree (MD): the guide's XPN[HumanName] suffix[1] and suffix[2]
        name["suffix"] = [unescape(c[3]), unescape(c[5])] if c[3] and c[5] else [unescape(c[3] or c[5])]
    if c[4]:
        name["prefix"] = [unescape(c[4])]
    use = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous"}.get(c[6])
    if use:
        name["use"] = use
    dr = c[9].split("&") + [""]  # XPN-10 validity range (DR, deprecated), else XPN-12/13 effective and expiration dates
    period = validity(dr[0], dr[1]) or validity(c[11], c[12])
    if period and name:
        name["period"] = period
    return name or None


def address(xad: str) -> dict[str, Any] | None:
    c = comps(xad, 14)
    addr: dict[str, Any] = {}
    lines = [line for line in (unescape(x.split("&")[0]) for x in (c[0], c[1])) if line]
    if lines:
        addr["line"] = lines
    for key, value in (("city", c[2]), ("state", c[3]), ("postalCode", c[4]), ("country", c[5])):
        if value:
            addr[key] = unescape(value)
    use = {"H": "home", "B": "work", "O": "work", "C": "temp"}.get(c[6])
    if use and addr:
        addr["use"] = use
    dr = c[11].split("&") + [""]  # XAD-12 validity range (DR, deprecated), else XAD-13/14 effective and expiration dates
    period = validity(dr[0], dr[1]) or validity(c[12], c[13])
    if period and addr:
        addr["period"] = period
    return addr or None


_EMAIL_EQUIPMENT = ("Internet", "X.400")
_TELECOM_SYSTEMS = {"FX": "fax", "CP": "phone", "BP": "pager", "Internet": "email", "X.400": "email"}
# XTN-2 -> ContactPoint.use: the guide's ConceptMap table-hl70201-to-contact-point-use (ORN, VHN, ASN, EMR, NET and
# BPN unmatched), for every kind of address. A phone also reads ORN and NET as home, as it always has here (not
# in the guide's map).
_TELECOM_USE = {"PRN": "home", "WPN": "work", "PRS": "mobile"}
_PHONE_USE = {**_TELECOM_USE, "ORN": "home", "NET": "home"}
CONTACTPOINT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"  # FHIR core: a number's extension


def telecom(xtn: str) -> dict[str, Any] | None:
    """XTN -> ContactPoint, with the value the V2-to-FHIR guide's XTN[ContactPoint] map gives it: 4 (communication
    address) for an Internet or X.400 address, or when 3 (equipment type) is empty, as an e-mail; any other
    number is 12 (the unformatted number) if sent, else 5-7 (country, area, local number), else 1 (and as a last
    resort 4, so a misplaced number is not lost). 2 use, 3 equipment, 8 extension (the core contactpoint-extension),
    13/14 period, 18 preference order (rank)."""
    c = comps(xtn, 18)
    if c[3] and (not c[2] or c[2] in _EMAIL_EQUIPMENT):
        point: dict[str, Any] = {"system": "email", "value": unescape(c[3])}
        if c[1]:
            use = _TELECOM_USE.get(c[1])
            if use:
                point["use"] = use
    else:
        # XTN-12 first: some senders (PRD-5/13, CTD-5, ORC-23 in the FHIR-Converter samples) send the number only there
        number = unescape(c[11]).strip() if c[11] and c[2] not in _EMAIL_EQUIPMENT else ""
        if not number:
            number = "".join(p for p in (f"+{c[4]} " if c[4] else "", f"({c[5]}) " if c[5] else "", c[6]) if p).strip() \
                or unescape(c[0]) or unescape(c[3])
        if not number:
            return None
        system = _TELECOM_SYSTEMS.get(c[2], "phone")
        point = {"system": system, "value": number}
        use = (_TELECOM_USE if system == "email" else _PHONE_USE).get(c[1])
        if c[2] == "CP":
            use = "mobile"
        if use:
            point["use"] = use
    period = validity(c[12], c[13])  # XTN-13/14 effective start and expiration dates
    if period:
        point["period"] = period
    rank = c[17].strip()  # XTN-18 preference order
    if rank.isdigit() and int(rank) > 0:
        point["rank"] = int(rank)
    if c[7]:  # XTN-8 extension: the guide's XTN[ContactPoint] map puts it in extension-contactpoint-extension, any type
        extension = unescape(c[7]).strip()
        if extension:
            point["extension"] = [{"url": CONTACTPOINT_EXTENSION, "valueString": extension}]
    return point


def person(xcn: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """XCN: id^family^given^middle^suffix^prefix^degree ... 21 professional suffix -> (Identifier, HumanName). The
    name is the XPN the guide's XCN[Practitioner] map reads: XCN-2..7 as XPN-1..6 (XCN-5 suffix[1], XCN-7 degree
    suffix[2]) and XCN-21 as XPN-14 (name.suffix)."""
    c = comps(xcn)
    ident = {"value": unescape(c[0]), "system": f"urn:clinstream:id:{authority(c[8]) if c[8] else 'practitioner'}"} if c[0] else None
    xpn = "^".join([c[1], c[2], c[3], c[4], c[5], c[6]])
    if len(c) > 20 and c[20]:  # XCN-21 professional suffix -> XPN-14
        xpn = f"{xpn}^^^^^^^^{c[20]}"
    return ident, human_name(xpn)



def entity_identifier(ei: str, type_code: str | None = None) -> dict[str, Any] | None:
    """EI (entity^namespace^universal id^type), or the first subcomponent group of an EIP, -> Identifier."""
    c = comps(ei)
    value = unescape(c[0].split("&")[0])
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    if c[1] or c[2]:
        ident["system"] = identifier_system("&".join((c[1], c[2], c[3])))
    if type_code:
        ident["type"] = {"coding": [{"system": V2_0203, "code": type_code}]}
    return ident
