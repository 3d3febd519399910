"""OBR -> DiagnosticReport, OBX -> Observation (every value type) and who performed it, NTE -> notes on the result;
an OBX whose value is a document or image (ED, RP) -> a DiagnosticReport presenting it."""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Any

from fhir_mappers.datatypes import (address, cached_by_text, codeable, comps, dtm, entity_identifier, field, instant, number, registered, reps,
                                    system_uri, table_code, unescape, unused)
from fhir_mappers.ids import Clean, CleanList, clean_text, ref, resource_id
from fhir_mappers.organizations import xon_organization
from fhir_mappers.participants import coded_role, practitioner_role

OBSERVATION_STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "R": "registered", "X": "cancelled",
                      "D": "entered-in-error", "W": "entered-in-error", "I": "registered", "S": "preliminary", "A": "amended"}
REPORT_STATUS = {"F": "final", "C": "corrected", "P": "preliminary", "R": "registered", "X": "cancelled", "I": "registered",
                 "S": "registered", "A": "partial", "O": "registered"}  # table 0123 -> report status, as the v2-to-fhir map has it
VITAL_SIGNS = {"9279-1", "59408-5", "2708-6", "8480-6", "8462-4", "8867-4", "8310-5", "8331-1", "80288-4", "3151-8", "9269-2",
               "67775-7", "8478-0", "85353-1", "29463-7", "8302-2", "39156-5"}
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# OBX-11 result status (table 0085) -> the status of the report an OBX attachment makes: R (not verified) is
# preliminary, S (partial) partial, U (changed to final) final, N (not asked) stays unknown
OBX_REPORT_STATUS = {"F": "final", "U": "final", "C": "corrected", "P": "preliminary", "R": "preliminary", "S": "partial",
                     "I": "registered", "O": "registered", "D": "entered-in-error", "W": "entered-in-error", "X": "cancelled"}
ATTACHMENT_TYPES = {"ED", "RP"}  # OBX-2 value types holding a document or image, or a pointer to one
# table 0191 (type of referenced data) -> MIME top-level type
MIME_TYPE = {"IM": "image", "SI": "image", "AU": "audio", "AP": "application", "SD": "application", "NS": "application",
             "TEXT": "text", "TX": "text", "MULTIPART": "multipart", "APPLICATION": "application", "IMAGE": "image",
             "AUDIO": "audio", "VIDEO": "video"}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*([<>]=?)\s*(-?\d+(?:\.\d+)?)\s*$")


# OBX-2 category by LOINC code: vital signs, else laboratory
CATEGORIES = {name: CleanList([Clean(coding=CleanList([Clean(system="http://terminology.hl7.org/CodeSystem/observation-category", code=name)]))])
              for name in ("vital-signs", "laboratory")}


def _quantity(value: float, unit_cwe: str, comparator: str = "") -> Clean:
    q: dict[str, Any] = {"value": value}
    if comparator:
        q["comparator"] = comparator
    q.update(_units(unit_cwe))
    return Clean(q)


@cached_by_text
def _units(unit_cwe: str) -> tuple[tuple[str, str], ...]:
    """The unit, system and code a Quantity takes from a units CWE (OBX-6): a feed's results use a few dozen units, one
    on every numeric result."""
    unit = comps(unit_cwe)
    found: list[tuple[str, str]] = []
    if unit[0] or unit[1]:
        text = clean_text(unescape(unit[1] or unit[0]))
        if text:
            found.append(("unit", text))
        found.append(("system", "http://unitsofmeasure.org"))
        code = " ".join(unescape(unit[0] or unit[1]).split())
        if code:
            found.append(("code", code))
    return tuple(found)


def _text(obx: Any) -> str:
    return "\n".join(unescape(r) for r in reps(field(obx, 5)))


def _value(obx: Any) -> dict[str, Any]:
    """OBX-5 as the Observation.value[x] its OBX-2 type calls for (ED and RP, which R4 Observations cannot
    hold, make an attachment_report instead)."""
    kind, raw, unit = field(obx, 2).strip().upper(), field(obx, 5), field(obx, 6)
    values = reps(raw)
    first = values[0] if values else ""
    if not first:
        return {}
    if kind == "NM":
        value = number(unescape(first))
        return {"valueQuantity": _quantity(value, unit)} if value is not None else {"valueString": unescape(first)}
    if kind == "SN":  # comparator^num1^separator^num2
        c = comps(first)
        n1, n2 = number(c[1]), number(c[3])
        if c[2] in {"-", ""} and n1 is not None and n2 is not None and c[2] == "-":
            return {"valueRange": {"low": _quantity(n1, unit), "high": _quantity(n2, unit)}}
        if c[2] in {":", "/"} and n1 is not None and n2 is not None:
            return {"valueRatio": {"numerator": {"value": n1}, "denominator": {"value": n2}}}
        if n1 is not None:
            return {"valueQuantity": _quantity(n1, unit, c[0] if c[0] in {"<", "<=", ">", ">="} else "")}
        return {"valueString": unescape(first.replace("^", " ")).strip()}
    if kind in {"CE", "CWE", "CNE", "CF"}:
        concept = codeable(first)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in {"DT", "TS", "DTM"}:
        moment = dtm(first)
        return {"valueDateTime": moment} if moment else {"valueString": unescape(first)}
    return {"valueString": _text(obx)}  # ST, TX, FT and anything unknown: kept as text


def attachment(kind: str, value: str) -> dict[str, Any] | None:
    """An ED (source^type of data^subtype^encoding^data) or RP (pointer^application^type of data^subtype) value
    -> Attachment: the data (base64, encoded here when it came as text) or the pointer as its url. None for data
    said to be base64 that does not decode: corrupt, and no valid Attachment can hold it."""
    c = comps(value)
    main, sub = (c[1], c[2]) if kind == "ED" else (c[2], c[3])
    found: dict[str, Any] = {}
    main_type = MIME_TYPE.get(unescape(main).strip().upper())
    if main_type or unescape(sub).strip():
        found["contentType"] = f"{main_type or 'application'}/{unescape(sub).strip() or 'octet-stream'}".lower().replace(" ", "")
    if kind == "ED":
        data = "".join(c[4].split())
        if data and c[3].upper() != "BASE64":
            data = base64.b64encode(unescape(c[4]).encode()).decode()
        elif data and not _decodes(data):
            return None
        if data:
            found["data"] = data
            found.setdefault("contentType", "application/octet-stream")  # data needs a content type
    elif unescape(c[0]).strip():
        found["url"] = unescape(c[0]).strip()
    return found


def _decodes(data: str) -> bool:
    try:
        base64.b64decode(data, validate=True)
    except ValueError:  # binascii.Error is one
        return False
    return True


def _obx_context(resource: dict[str, Any], obx: Any, subject: dict | None, encounter: dict | None,
                 fallback_time: str | None) -> None:
    """Subject, encounter and OBX-14 effective time (else the OBR's), as both OBX mappers set them."""
    if subject:
        resource["subject"] = subject
    if encounter:
        resource["encounter"] = encounter
    effective = dtm(field(obx, 14)) or fallback_time
    if effective:
        resource["effectiveDateTime"] = effective


def attachment_report(obx: Any, index: int, msg_key: str, subject: dict | None, encounter: dict | None,
                      fallback_time: str | None) -> dict[str, Any]:
    """OBX with an ED or RP value -> DiagnosticReport presenting the document or image (R4 Observations cannot
    hold one): OBX-3 code, -5 the attachment, -11 status, -14 effective time."""
    kind = field(obx, 2).strip().upper()
    resource: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": resource_id("DiagnosticReport", msg_key, str(index)),
                                "status": table_code(obx, 11, OBX_REPORT_STATUS, 1) or "unknown",
                                "code": codeable(field(obx, 3)) or {"text": "unknown report"}}
    _obx_context(resource, obx, subject, encounter, fallback_time)
    values = reps(field(obx, 5))
    forms = [attachment(kind, v) for v in values]
    if None in forms:  # corrupt base64: OBX-5 goes back to the unmapped report, kept as sent
        unused(obx, 5)
    forms = [f for f in forms if f]
    if forms:
        resource["presentedForm"] = forms
    return resource


def _reference_range(text: str, unit: str) -> CleanList | None:
    """OBX-7 (and the units of OBX-6) -> Observation.referenceRange: low and high, one bound, or the text as sent."""
    if not text:
        return None
    return _cached_range(text, unit) if len(text) <= 200 and len(unit) <= 200 else _cached_range.__wrapped__(text, unit)


@registered
@lru_cache(maxsize=4096)
def _cached_range(text: str, unit: str) -> CleanList | None:
    """Built final (a test's range recurs on every one of its results): trimmed text, and no empty member."""
    text = unescape(text)
    m = _RANGE.match(text)
    if m and number(m.group(1)) is not None and number(m.group(2)) is not None:
        return CleanList([Clean(low=_quantity(number(m.group(1)), unit), high=_quantity(number(m.group(2)), unit))])
    m = _BOUND.match(text)
    if m and number(m.group(2)) is not None:
        side = "high" if m.group(1).startswith("<") else "low"
        return CleanList([Clean({side: _quantity(number(m.group(2)), unit)})])
    text = clean_text(text)
    return CleanList([Clean(text=text)]) if text else None


def observation(obx: Any, index: int, msg_key: str, subject: dict | None, encounter: dict | None, fallback_time: str | None,
                notes: list[str]) -> dict[str, Any]:
    code = codeable(field(obx, 3)) or {"text": "unknown observation"}
    resource: dict[str, Any] = {"resourceType": "Observation", "id": resource_id("Observation", msg_key, str(index)),
                                "status": table_code(obx, 11, OBSERVATION_STATUS, 1) or "final", "code": code}
    loinc = {c.get("code") for c in code.get("coding", []) if c.get("system") == "http://loinc.org"}
    resource["category"] = CATEGORIES["vital-signs" if loinc & VITAL_SIGNS else "laboratory"]
    _obx_context(resource, obx, subject, encounter, fallback_time)
    resource.update(_value(obx))
    ranges = _reference_range(field(obx, 7), field(obx, 6))
    if ranges:
        resource["referenceRange"] = ranges
    interpretation = field(obx, 8)
    flags = [c for c in (" ".join(unescape(comps(f)[0]).split()) for f in reps(interpretation)) if c] if interpretation else ()
    if flags:  # each repetition a CWE: its code
        resource["interpretation"] = CleanList(Clean(coding=CleanList([Clean(system=INTERPRETATION, code=f)])) for f in flags)
    if len(obx.fields) > 17:  # most results end by OBX-14/16: no reading of the fields they lack
        # the guide's OBX[Observation]: 17 method, 20 body site, 21 observation instance identifier
        method, site = codeable(field(obx, 17).split("~")[0]), codeable(field(obx, 20).split("~")[0])
        if method:
            resource["method"] = method
        if site:
            resource["bodySite"] = site
        instance = entity_identifier(field(obx, 21))
        if instance:
            resource["identifier"] = [instance]
        analysed = dtm(field(obx, 19))
        if analysed:
            resource["extension"] = [{"url": "http://hl7.org/fhir/StructureDefinition/observation-analysis-date-time", "valueDateTime": analysed}]
    if notes:
        resource["note"] = [{"text": n} for n in notes]
    return resource


def performers(obx: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(Observation.performer references, the resources they point at): OBX-16 responsible observers (role RO),
    OBX-23 the performing organisation (OBX-24 its address) and OBX-25 its medical director (role MDIR, of that
    organisation), and OBX-15, the producer's id, an Organization of that identifier (the guide's OBX map)."""
    if len(obx.fields) < 16 or not (field(obx, 23) or field(obx, 15) or field(obx, 16) or field(obx, 25)):  # most results name no one
        return [], []
    refs: list[dict[str, Any]] = []
    found: list[dict[str, Any]] = []
    lab_xon = field(obx, 23).split("~")[0]
    lab = xon_organization(lab_xon, "participant")  # named as practitioner_role names it, so the director's is the same one
    if lab:
        lab_address = address(field(obx, 24).split("~")[0])
        if lab_address:
            lab["address"] = [lab_address]
        refs.append(ref(lab))
        found.append(lab)
    producer = _producer(field(obx, 15))
    if producer and producer["id"] != (lab or {}).get("id"):
        refs.append(ref(producer))
        found.append(producer)
    people = [("RO^Responsible Observer", xcn, "") for xcn in reps(field(obx, 16))]
    people += [("MDIR^Medical Director", xcn, lab_xon) for xcn in reps(field(obx, 25))[:1]]
    for code, xcn, org in people:
        role = practitioner_role(coded_role(code), xcn, org)
        if role.actor and "practitioner" in role.actor:
            refs.append(ref(role.actor))
            found += role.made
    return refs, found


def _producer(cwe: str) -> dict[str, Any] | None:
    """OBX-15 producer's id (a CWE: the id, its name, the system that issues it) -> Organization with that identifier."""
    c = comps(cwe)
    value, name = clean_text(unescape(c[0])), clean_text(unescape(c[1]))
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    if c[2].strip():
        ident["system"] = system_uri(c[2])
    org: dict[str, Any] = {"resourceType": "Organization", "id": resource_id("Organization", "producer", ident.get("system", ""), value),
                           "identifier": [ident]}
    if name:
        org["name"] = name
    return org


def results_interpreter(obr: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """OBR-32 principal result interpreter (NDL: CNN person^start^end^point of care^room^bed^facility...) ->
    (a reference to the PractitionerRole for DiagnosticReport.resultsInterpreter, the resources it names)."""
    ndl = comps(field(obr, 32).split("~")[0])
    if not ndl[0]:
        return None, []
    found = practitioner_role(None, ndl[0].replace("&", "^"))  # CNN's subcomponents are XCN's first components
    if not found.actor or "practitioner" not in found.actor:
        return None, []
    return ref(found.actor), found.made


def diagnostic_report(obr: Any, index: int, msg_key: str, subject: dict | None, encounter: dict | None,
                      results: list[dict[str, Any]], notes: list[str], orc: Any | None = None) -> dict[str, Any]:
    """OBR -> DiagnosticReport: OBR-4 code, -7 effective, -22 issued, -24 category, -25 status; OBR-2/3 the placer and filler
    numbers, else those of the ORC just before it (ORC-2/3). Without OBR-25 (which the guide calls an error on
    the v2 side, giving no default) the status is unknown, as for an attachment report without OBX-11: a
    missing status is not evidence that the report is final."""
    code = codeable(field(obr, 4)) or {"text": "unknown report"}
    resource: dict[str, Any] = {"resourceType": "DiagnosticReport", "id": resource_id("DiagnosticReport", msg_key, str(index)),
                                "status": table_code(obr, 25, REPORT_STATUS, 1) or "unknown", "code": code}
    section = unescape(field(obr, 24).split("^")[0]).strip()  # table 0074 diagnostic service section
    if section:
        resource["category"] = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": section}]}]
    if subject:
        resource["subject"] = subject
    if encounter:
        resource["encounter"] = encounter
    effective = dtm(field(obr, 7))
    if effective:
        resource["effectiveDateTime"] = effective
    issued = instant(field(obr, 22))
    if issued:
        resource["issued"] = issued
    # OBR-2/3 placer and filler numbers (EI, their namespace the system), else the ORC's
    identifiers = [ident for n, code in ((2, "PLAC"), (3, "FILL"))
                   if (ident := entity_identifier(field(obr, n), code) or (entity_identifier(field(orc, n), code) if orc is not None else None))]
    if identifiers:
        resource["identifier"] = identifiers
    if results:
        resource["result"] = [ref(r) for r in results]
    if notes:
        resource["conclusion"] = "\n".join(notes)
    return resource
