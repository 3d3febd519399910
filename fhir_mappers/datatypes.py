"""HL7 v2 data types -> FHIR datatypes: field access, escapes, DTM, CWE, CX, XPN, XAD, XTN, XCN."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from functools import lru_cache, wraps
from typing import Any
from zoneinfo import ZoneInfo

from fhir_mappers.ids import Clean, CleanList, clean_text
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
                "SNM3": "http://snomed.info/sct",  # SNOMED International 3.x lives on in SNOMED CT, FHIR's one SNOMED system
                "I10": "http://hl7.org/fhir/sid/icd-10", "I10C": "http://hl7.org/fhir/sid/icd-10-cm", "ICD10CM": "http://hl7.org/fhir/sid/icd-10-cm",
                "I9C": "http://hl7.org/fhir/sid/icd-9-cm", "RXNORM": "http://www.nlm.nih.gov/research/umls/rxnorm", "UCUM": "http://unitsofmeasure.org",
                "CVX": "http://hl7.org/fhir/sid/cvx", "NDC": "http://hl7.org/fhir/sid/ndc", "C4": "http://www.ama-assn.org/go/cpt",
                "CPT": "http://www.ama-assn.org/go/cpt"}
_DTM = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,6})?([+-]\d{4})?$")
_HEX = re.compile(r"\\X([0-9A-Fa-f]+)\\")
_HL7_TABLE = re.compile(r"^HL7\d{4}$")


_CACHES: list[Any] = []  # the mappers' caches, for clear_caches


def clear_caches() -> None:
    """Forget every cached timestamp and datatype value (benchmarks, so each pass meets its data as new)."""
    for cache in _CACHES:
        cache.cache_clear()


def cache_zone() -> ZoneInfo | None:
    """What a cache of mapped values keys on besides the text: the sender's zone (timestamps without an offset are read
    in it). None while the sender names its own code systems, which no cache key holds: nothing may be cached then."""
    return None if _SYSTEMS.get() else _ZONE.get()


def registered(cache: Any) -> Any:
    """An lru_cache of a mapper module, emptied by clear_caches with these."""
    _CACHES.append(cache)
    return cache


def cached_by_text(builder: Callable[[str], Any]) -> Callable[[str], Any]:
    """Cache a builder of one field's text (a datatype, a result's units, an ordering provider) by the text and the
    sender's zone (validity periods are read in that zone). A feed repeats its patients, practitioners and codes message
    after message, and what the builder returns is final (Clean values, tuples), so every Bundle that names the same one
    may share it. Long texts (free sender text) are not kept, so the cache stays small whatever the feed."""
    in_zone = registered(lru_cache(maxsize=4096)(lambda text, zone: builder(text)))
    empty = builder("")  # most fields a mapper asks for are empty

    @wraps(builder)
    def cached(text: str) -> Any:
        if not text:
            return empty
        return in_zone(text, _ZONE.get()) if len(text) <= 200 else builder(text)

    return cached


def field(segment: Segment, n: int) -> str:
    """The raw text of field n ('' when absent), MSH numbered as the standard numbers it."""
    fields = segment.fields  # what Segment.__getitem__ does, one call fewer: mappers read ~100 fields a message
    if n < len(fields):
        if not segment.read[n]:
            segment.read[n] = 1
            segment.read_chars += len(fields[n])
        return fields[n]
    return ""


def unused(segment: Segment, n: int) -> None:
    """Field n was read but held nothing a mapper could use (a code outside its table...): back to the unmapped report."""
    if n < len(segment.fields) and segment.read[n]:
        segment.read[n] = 0
        segment.read_chars -= len(segment.fields[n])


def table_code(segment: Segment, n: int, table: dict[str, Any], prefix: int | None = None) -> Any:
    """Field n's code (its first component, unescaped, trimmed, upper case; its first `prefix` letters) looked up in a
    mapper's table. A code the table lacks maps to nothing: the field goes back to the unmapped report (unused) rather
    than vanish."""
    code = unescape(field(segment, n).split("^", 1)[0]).strip().upper()[:prefix]
    found = table.get(code)
    if found is None and code:
        unused(segment, n)
    return found


def quantity(amount: str, units: str) -> dict[str, Any] | None:
    """An amount (NM) and its units (CWE) -> Quantity: the number, the units' text (else code) as the unit, and the UCUM
    code where the units name UCUM (or ISO+, ANS+, its older names)."""
    value = number(unescape(amount))
    if value is None:
        return None
    q: dict[str, Any] = {"value": int(value) if value.is_integer() and abs(value) < 2**53 else value}
    unit = comps(units)
    if unit[0] or unit[1]:
        q["unit"] = unescape(unit[1] or unit[0])
        if unit[2].upper() in {"UCUM", "ISO+", "ANS+"}:
            q["system"], q["code"] = "http://unitsofmeasure.org", unescape(unit[0])
    return q


def positive_int(value: str | float) -> int | None:
    """A FHIR positiveInt (1 to 2**31 - 1, the 32-bit integer FHIR's integers are) from digits or a whole number."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isdigit() or len(value) > 10:
            return None
    number = int(value) if float(value).is_integer() else None
    return number if number is not None and 0 < number < 2**31 else None


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
    return (_dtm if len(value) <= 64 else _dtm.__wrapped__)(value, _ZONE.get())  # long junk is not kept


@registered
@lru_cache(maxsize=4096)  # see cached_by_text
def _dtm(value: str, zone: ZoneInfo) -> str | None:
    """dtm() of a field's text, read in `zone` when it has no offset. Cached: a message repeats its timestamps
    (MSH-7, OBR-7 and every OBX-14 of a panel), and the calendar check and zone lookup were the costliest
    part of mapping a vital-signs ORU."""
    found = _DTM.match(value.strip().split("^")[0])
    if found is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = found.groups()
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
    # written from the digits as sent, which the calendar check above accepted: strftime's %Y drops the leading zeros
    # of a year before 1000 ("1-01-01T..."), which no FHIR dateTime may
    return f"{year}-{month}-{day}T{hour}:{minute or '00'}:{second or '00'}{fraction or ''}{tz}"


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
    return clean_text(uri) if uri else f"urn:clinstream:codesystem:{re.sub(r'[^A-Za-z0-9.-]', '-', name)}"


_NM = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")


def number(text: str) -> float | None:
    """HL7 NM: an optional sign, digits and a decimal point. Python's float() would also take "nan",
    "1e999" and "1_000", none of which is a number a sender meant or a FHIR decimal can hold."""
    text = text.strip()
    if not _NM.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def codeable(text: str) -> Clean | None:
    """CWE/CE: code^text^system^alt code^alt text^alt system -> CodeableConcept. Cached (see cached_by_text), except
    when the sender names its own code systems (rare; the cache is keyed by the text alone)."""
    if not text:
        return None
    return _codeable(text) if _SYSTEMS.get() else _cached_codeable(text)


def _codeable(text: str) -> Clean | None:
    raw = comps(text)
    # escapes are rare in codes: unescape each component once, and only when there is one (a sixth of the time
    # this took went to unescape calls on plain text)
    c = [unescape(part) for part in raw] if "\\" in text else raw
    codings = []
    for first in (0, 3):  # code^display^system, then the alternate triplet
        # a FHIR code has no leading, trailing or doubled whitespace, and escapes may leave nothing at all
        code = " ".join(c[first].split())
        if code:
            coding = {"code": code}
            if c[first + 2].strip():
                coding["system"] = system_uri(raw[first + 2])
            display = clean_text(c[first + 1])
            if display:
                coding["display"] = display
            codings.append(Clean(coding))
    label = ""
    for candidate in (c[1], c[4], c[8]):
        if candidate.strip():
            label = clean_text(candidate)
            break
    if not codings and not label:
        return None
    if not label:
        return Clean(coding=CleanList(codings))
    return Clean(coding=CleanList(codings), text=label) if codings else Clean(text=label)


_cached_codeable = cached_by_text(_codeable)


def in_system(concept: Clean, system: str) -> Clean:
    """The concept with its first coding in `system` (the code system of an HL7 table the field is bound to):
    a new value, as a Clean is final."""
    first, *rest = concept["coding"]
    return Clean({**concept, "coding": CleanList([Clean({**first, "system": system}), *rest])})


def table_concept(cwe: str, table: str, system: str) -> Clean | None:
    """CWE of a field bound to an HL7 table -> CodeableConcept, its code in that table's code system unless the sender
    names another one."""
    concept = codeable(cwe)
    if concept and concept.get("coding") and comps(cwe)[2].strip().upper() in {"", table}:
        return in_system(concept, system)
    return concept


def authority(text: str) -> str:
    """HD (namespace&universal id&type) -> a namespace for keys and identifier systems."""
    parts = text.split("&")
    return unescape(parts[0] or (parts[1] if len(parts) > 1 else "")) or "local"


def identifier_system(hd: str) -> str:
    parts = hd.split("&") + ["", ""]
    if parts[1] and parts[2].upper() == "ISO":
        return clean_text(f"urn:oid:{parts[1]}")
    return clean_text(f"urn:clinstream:id:{authority(hd)}")


@registered
@lru_cache(maxsize=1024)  # the same few recur
def coded(system: str, code: str, display: str = "") -> Clean:
    """{"coding": [{"system", "code", "display"}]}, a CodeableConcept of one coding in a known system (the code as
    fhir_safe leaves a code; an empty one dropped, as that pass drops it)."""
    coding = {"system": system}
    code = " ".join(code.split())
    if code:
        coding["code"] = code
    display = clean_text(display)
    if display:
        coding["display"] = display
    return Clean(coding=CleanList([Clean(coding)]))


def validity(start: str, end: str) -> dict[str, str] | None:
    """The Period a datatype's effective and expiration dates (CX-7/8, XPN-12/13, XAD-13/14, XTN-13/14) give it."""
    if not start and not end:  # nearly always: every identifier, name, address and phone asks
        return None
    period = {k: v for k, v in (("start", dtm(start)), ("end", dtm(end))) if v}
    return period or None


@cached_by_text
def identifier(cx: str) -> Clean | None:
    """CX: id^check^scheme^authority^type^facility^effective^expiration -> Identifier (7/8 its period)."""
    c = comps(cx, 8)
    if not c[0]:
        return None
    value = clean_text(unescape(c[0]))
    if not value:  # an id of blanks or escapes alone is no id
        return None
    ident: dict[str, Any] = {"value": value, "system": identifier_system(c[3])}
    if c[4]:
        ident["type"] = coded(V2_0203, unescape(c[4]))
    period = validity(c[6], c[7])
    if period:
        ident["period"] = period
    return Clean(ident)


def _texts(values: Any) -> CleanList:
    """The non-empty values, unescaped and cleaned."""
    return CleanList(t for t in (clean_text(unescape(v)) for v in values if v) if t)


@cached_by_text
def human_name(xpn: str) -> Clean | None:
    c = comps(xpn, 14)
    name: dict[str, Any] = {}
    family, given = clean_text(unescape(c[0].split("&")[0])), _texts((c[1], c[2]))
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    # XPN-4 suffix, XPN-6 degree (MD) and XPN-14 professional suffix: the guide's XPN[HumanName] suffix[1], suffix[2]
    # and [1].suffix
    suffixes = _texts((c[3], c[5], c[13])) if c[3] or c[5] or c[13] else None
    if suffixes:
        name["suffix"] = suffixes
    prefix = _texts((c[4],)) if c[4] else None
    if prefix:
        name["prefix"] = prefix
    use = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous"}.get(c[6])
    if use:
        name["use"] = use
    dr = c[9].split("&") + [""]  # XPN-10 validity range (DR, deprecated), else XPN-12/13 effective and expiration dates
    period = validity(dr[0], dr[1]) or validity(c[11], c[12])
    if period and name:
        name["period"] = period
    return Clean(name) if name else None


@cached_by_text
def address(xad: str) -> Clean | None:
    c = comps(xad, 14)
    addr: dict[str, Any] = {}
    lines = _texts(x.split("&")[0] for x in (c[0], c[1]))
    if lines:
        addr["line"] = lines
    county = next((x for x in c[8].split("&") if x.strip()), "")  # XAD-9, a CWE from v2.7: its code, else its text
    for key, value in (("city", c[2]), ("district", county), ("state", c[3]), ("postalCode", c[4]), ("country", c[5])):
        if value:
            value = clean_text(unescape(value))
            if value:
                addr[key] = value
    use = {"H": "home", "B": "work", "O": "work", "C": "temp"}.get(c[6])
    if use and addr:
        addr["use"] = use
    dr = c[11].split("&") + [""]  # XAD-12 validity range (DR, deprecated), else XAD-13/14 effective and expiration dates
    period = validity(dr[0], dr[1]) or validity(c[12], c[13])
    if period and addr:
        addr["period"] = period
    return Clean(addr) if addr else None


_EMAIL_EQUIPMENT = ("Internet", "X.400")
_TELECOM_SYSTEMS = {"FX": "fax", "CP": "phone", "BP": "pager", "Internet": "email", "X.400": "email"}
# XTN-2 -> ContactPoint.use: the guide's ConceptMap table-hl70201-to-contact-point-use (ORN, VHN, ASN, EMR, NET and
# BPN unmatched), for every kind of address. A phone also reads ORN and NET as home, as it always has here (not
# in the guide's map).
_TELECOM_USE = {"PRN": "home", "WPN": "work", "PRS": "mobile"}
_PHONE_USE = {**_TELECOM_USE, "ORN": "home", "NET": "home"}
# FHIR core extensions of a ContactPoint holding the parts of a number: XTN-5 country code, 6 area/city code, 7 local
# number, 8 extension, as the guide's XTN[ContactPoint] map puts them, for any kind of address
CONTACTPOINT_PARTS = ((4, "http://hl7.org/fhir/StructureDefinition/contactpoint-country"),
                      (5, "http://hl7.org/fhir/StructureDefinition/contactpoint-area"),
                      (6, "http://hl7.org/fhir/StructureDefinition/contactpoint-local"),
                      (7, "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"))


@cached_by_text
def telecom(xtn: str) -> Clean | None:
    """XTN -> ContactPoint, with the value the V2-to-FHIR guide's XTN[ContactPoint] map gives it: 4 (communication
    address) for an Internet or X.400 address, or when 3 (equipment type) is empty, as an e-mail; any other
    number is 12 (the unformatted number) if sent, else 5-7 (country, area, local number), else 1 (and as a last
    resort 4, so a misplaced number is not lost). 2 use, 3 equipment, 5-8 the number's parts (CONTACTPOINT_PARTS;
    5-7 only where the value is not made of them), 13/14 period, 18 preference order (rank)."""
    c = comps(xtn, 18)
    composed = False  # the value is XTN-5..7 written out
    if c[3] and (not c[2] or c[2] in _EMAIL_EQUIPMENT):
        value = clean_text(unescape(c[3]))
        point: dict[str, Any] = {"system": "email", "value": value} if value else {"system": "email"}
        if c[1]:
            use = _TELECOM_USE.get(c[1])
            if use:
                point["use"] = use
    else:
        # XTN-12 first: some senders (PRD-5/13, CTD-5, ORC-23 in the FHIR-Converter samples) send the number only there
        number = unescape(c[11]).strip() if c[11] and c[2] not in _EMAIL_EQUIPMENT else ""
        if not number:
            number = "".join(p for p in (f"+{c[4]} " if c[4] else "", f"({c[5]}) " if c[5] else "", c[6]) if p).strip()
            composed = bool(number)
            number = number or unescape(c[0]) or unescape(c[3])
        if not number:
            return None
        system = _TELECOM_SYSTEMS.get(c[2], "phone")
        number = clean_text(number)
        point = {"system": system, "value": number} if number else {"system": system}
        use = (_TELECOM_USE if system == "email" else _PHONE_USE).get(c[1])
        if c[2] == "CP":
            use = "mobile"
        if use:
            point["use"] = use
    period = validity(c[12], c[13])  # XTN-13/14 effective start and expiration dates
    if period:
        point["period"] = period
    rank = c[17].strip()  # XTN-18 preference order
    if positive_int(rank):
        point["rank"] = positive_int(rank)
    if c[4] or c[5] or c[6] or c[7]:
        # the number's parts where the value does not show them already: the guide's map sets them always, but a
        # Bundle would then carry most phone numbers twice
        parts = [Clean(url=url, valueString=text) for n, url in CONTACTPOINT_PARTS[3 if composed else 0:] if c[n]
                 for text in (clean_text(unescape(c[n])),) if text]
        if parts:
            point["extension"] = CleanList(parts)
    return Clean(point)


@cached_by_text
def person(xcn: str) -> tuple[Clean | None, Clean | None]:
    """XCN: id^family^given^middle^suffix^prefix^degree ... 21 professional suffix -> (Identifier, HumanName), as the
    guide's XCN[Practitioner] map: the identifier's type is XCN-13 (table 0203); the name is the XPN it reads,
    XCN-2..7 as XPN-1..6 (XCN-5 suffix[1], XCN-7 degree suffix[2]), XCN-10 name type as XPN-7 (name.use),
    XCN-17 validity range as XPN-10 and XCN-19/20 effective and expiration dates as XPN-12/13 (name.period),
    XCN-21 as XPN-14 (name.suffix)."""
    c = comps(xcn, 21)
    value = clean_text(unescape(c[0])) if c[0] else ""
    ident = None
    if value:
        found = {"value": value, "system": clean_text(f"urn:clinstream:id:{authority(c[8]) if c[8] else 'practitioner'}")}
        if c[12]:
            found["type"] = coded(V2_0203, unescape(c[12]))
        ident = Clean(found)
    xpn = "^".join([c[1], c[2], c[3], c[4], c[5], c[6], c[9], "", "", c[16], "", c[18], c[19], c[20]]).rstrip("^")
    return ident, human_name(xpn)



def entity_identifier(ei: str, type_code: str | None = None) -> Clean | None:
    """EI (entity^namespace^universal id^type), or the first subcomponent group of an EIP, -> Identifier."""
    if not ei:
        return None
    c = comps(ei)
    value = clean_text(unescape(c[0].split("&")[0]))
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    if c[1] or c[2]:
        ident["system"] = identifier_system("&".join((c[1], c[2], c[3])))
    if type_code:
        ident["type"] = coded(V2_0203, type_code)
    return Clean(ident)
