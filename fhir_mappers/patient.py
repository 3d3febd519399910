"""PID -> Patient; MRG -> the retired record it replaces; PD1 -> its general practitioners; DB1 -> its disability."""

from __future__ import annotations

import re
from typing import Any

from fhir_mappers.datatypes import (V2_0203, address, authority, clean_text, codeable, comps, date_only, dtm, field, human_name, identifier, positive_int,
                                    reps, table_code, telecom, unescape)
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import Clean, ref, resource_id
from fhir_mappers.organizations import assigned_identifier, xon_organization

GENDER = {"M": "male", "F": "female", "O": "other", "U": "unknown", "A": "other", "N": "unknown"}


MR_CODING = {"system": V2_0203, "code": "MR"}
V3_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
V3_NULL = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
# HL7 table 0002 -> v3 MaritalStatus, as the V2-to-FHIR guide's ConceptMap maps it (unknown and unreported
# are null flavors there)
MARITAL = {"A": (V3_MARITAL, "L"), "E": (V3_MARITAL, "L"), "D": (V3_MARITAL, "D"), "M": (V3_MARITAL, "M"),
           "S": (V3_MARITAL, "S"), "W": (V3_MARITAL, "W"), "C": (V3_MARITAL, "C"), "G": (V3_MARITAL, "T"),
           "P": (V3_MARITAL, "T"), "R": (V3_MARITAL, "T"), "N": (V3_MARITAL, "A"), "I": (V3_MARITAL, "I"),
           "B": (V3_MARITAL, "U"), "U": (V3_NULL, "UNK"), "T": (V3_NULL, "UNK"), "O": (V3_NULL, "OTH")}
BCP47 = "urn:ietf:bcp:47"
# PID-15 often carries ISO 639-2 (three letters, HL7 table 0296); FHIR's language is BCP 47, whose primary
# subtag is the two-letter ISO 639-1 code where one exists
ISO639_2_TO_1 = {
    "eng": "en", "spa": "es", "fra": "fr", "fre": "fr", "deu": "de", "ger": "de", "ara": "ar", "zho": "zh", "chi": "zh",
    "vie": "vi", "kor": "ko", "rus": "ru", "por": "pt", "ita": "it", "jpn": "ja", "hin": "hi", "pol": "pl", "tgl": "tl",
    "fas": "fa", "per": "fa", "urd": "ur", "hat": "ht", "ben": "bn", "pan": "pa", "guj": "gu", "tam": "ta", "tel": "te",
    "som": "so", "amh": "am", "nep": "ne", "ukr": "uk", "ell": "el", "gre": "el", "heb": "he", "tur": "tr", "nld": "nl",
    "dut": "nl", "swe": "sv", "nor": "no", "dan": "da", "fin": "fi", "hun": "hu", "ces": "cs", "cze": "cs", "ron": "ro",
    "rum": "ro", "srp": "sr", "hrv": "hr", "bos": "bs", "alb": "sq", "sqi": "sq", "arm": "hy", "hye": "hy", "khm": "km",
    "lao": "lo", "tha": "th", "mya": "my", "bur": "my", "ind": "id", "msa": "ms", "may": "ms", "swa": "sw", "yor": "yo",
    "ibo": "ig", "hau": "ha", "tir": "ti", "pus": "ps", "kur": "ku", "mar": "mr", "mal": "ml", "kan": "kn", "sin": "si",
}


def _mrn_index(ids: list[str], mrn_type: str) -> int:
    """Which CX is the MRN: the first of the sender's MRN type (CX-5; MR unless its overrides name
    another, as senders whose MRN is a PI or PT do), else the first MR, else the first."""
    types = [comps(cx)[4] for cx in ids]
    for wanted in (mrn_type, "MR"):
        if wanted in types:
            return types.index(wanted)
    return 0


def patient_key(pid: Any, mrn_type: str = "MR") -> str | None:
    """'<authority>|<id>' of the MRN in PID-3 (else the first; PID-2 in old messages)."""
    ids = reps(field(pid, 3)) or reps(field(pid, 2))
    if not ids:
        return None
    c = comps(ids[_mrn_index(ids, mrn_type)])
    return f"{authority(c[3])}|{unescape(c[0])}" if c[0] else None


def patient(pid: Any, fallback_key: str, mrn_type: str = "MR") -> dict[str, Any]:
    key = patient_key(pid, mrn_type)
    resource: dict[str, Any] = {"resourceType": "Patient", "id": resource_id("Patient", key or fallback_key)}
    sources = reps(field(pid, 3)) + reps(field(pid, 2)) + reps(field(pid, 4))  # PID-4: alternate patient ids
    # A sender whose MRN has another CX-5 type (PI, PT...): that identifier is typed MR in FHIR and listed
    # first, since readers (processors/fhir_input.py included) key a Patient by its first MR identifier
    # and must find the same one patient_key chose, even when the sender also sends an "MR" of its own.
    keyed = reps(field(pid, 3)) or reps(field(pid, 2))  # what patient_key chose from: a prefix of sources
    mrn = _mrn_index(keyed, mrn_type) if mrn_type != "MR" and keyed else None
    identifiers = []
    for i, cx in enumerate(sources):
        ident = identifier(cx)
        if ident is None:
            continue
        if i == mrn and comps(cx)[4] == mrn_type:
            ident = {**ident, "type": {"coding": [dict(MR_CODING)]}}
            identifiers.insert(0, ident)
        else:
            identifiers.append(ident)
    identifiers += _document_identifiers(pid)
    if identifiers:
        resource["identifier"] = identifiers
    names = [n for n in (human_name(x) for x in reps(field(pid, 5))) if n]
    if names:
        resource["name"] = names
    born = date_only(field(pid, 7))
    if born:
        resource["birthDate"] = born
    gender = table_code(pid, 8, GENDER, 1)
    if gender:
        resource["gender"] = gender
    aliases = [n for n in (human_name(x) for x in reps(field(pid, 9))) if n and n not in names]  # PID-9, withdrawn in v2.7
    if aliases:
        resource["name"] = names + aliases
    addresses = [a for a in (address(x) for x in reps(field(pid, 11))) if a]
    county = clean_text(unescape(field(pid, 12)))  # PID-12 county, where the address does not carry one (XAD-9)
    if county and len(addresses) == 1 and "district" not in addresses[0]:
        addresses[0] = Clean({**addresses[0], "district": county})
    elif county and not any(a.get("district") == county for a in addresses):
        addresses.append(Clean(district=county))
    if addresses:
        resource["address"] = addresses
    # PID-13 home and PID-14 business phones, and PID-40, which replaces both from v2.7
    points = [t for t in (telecom(x) for n in (13, 14, 40) for x in reps(field(pid, n))) if t]
    if points:
        resource["telecom"] = [t for i, t in enumerate(points) if t not in points[:i]]  # PID-40 often repeats 13/14
    marital = marital_status(field(pid, 16))
    if marital:
        resource["maritalStatus"] = marital
    language = language_concept(field(pid, 15))
    if language:
        resource["communication"] = [{"language": language, "preferred": True}]
    twin = field(pid, 24).strip().upper()[:1]
    order = field(pid, 25).strip()
    if positive_int(order) and twin != "N":
        resource["multipleBirthInteger"] = positive_int(order)
    elif twin in ("Y", "N"):
        resource["multipleBirthBoolean"] = twin == "Y"
    died, dead = dtm(field(pid, 29)), field(pid, 30).strip().upper()[:1]  # PID-30 the indicator, where there is no date
    if died:
        resource["deceasedDateTime"] = died
    elif dead in ("Y", "N"):
        resource["deceasedBoolean"] = dead == "Y"
    extensions = patient_extensions(pid)
    if extensions:
        resource["extension"] = extensions
    return resource


US_CORE = "http://hl7.org/fhir/us/core/StructureDefinition/"
CDC_RACE_ETHNICITY = "urn:oid:2.16.840.1.113883.6.238"
# the OMB categories US Core's race and ethnicity extensions name; any other CDC code is a "detailed" one
OMB_RACE = {"1002-5", "2028-9", "2054-5", "2076-8", "2106-3"}
OMB_ETHNICITY = {"2135-2", "2186-5"}
ETHNIC_GROUP = {"H": "2135-2", "N": "2186-5"}  # HL7 table 0189's letters (before v2.6) as the CDC codes they stand for
_CDC_CODE = re.compile(r"^\d{4}-\d$")


def patient_extensions(pid: Any) -> list[dict[str, Any]]:
    """The PID fields FHIR keeps in extensions, as the guide's PID map: 6 mother's maiden name, 17 religion, 23 birth
    place, 26 citizenship and 39 tribal citizenship, 28 nationality, 35/36 species and breed (an animal patient); and
    10 race and 22 ethnic group, which the guide leaves to the realm's extension: US Core's, whose OMB categories the
    CDC race and ethnicity codes (table 0005, and 0189 from v2.6) are."""
    found: list[dict[str, Any]] = []
    maiden = human_name(field(pid, 6).split("~")[0])
    if maiden and maiden.get("family"):
        found.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName", "valueString": maiden["family"]})
    for url, omb, cwes, letters in ((US_CORE + "us-core-race", OMB_RACE, reps(field(pid, 10)), {}),
                                    (US_CORE + "us-core-ethnicity", OMB_ETHNICITY, reps(field(pid, 22)), ETHNIC_GROUP)):
        extension = _race_or_ethnicity(url, omb, cwes, letters)
        if extension:
            found.append(extension)
    religion = codeable(field(pid, 17))
    if religion:
        found.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-religion", "valueCodeableConcept": religion})
    birthplace = clean_text(unescape(field(pid, 23)))
    if birthplace:
        found.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", "valueAddress": {"text": birthplace}})
    for n, url in ((26, "patient-citizenship"), (39, "patient-citizenship"), (28, "patient-nationality")):
        for cwe in reps(field(pid, n)):
            concept = codeable(cwe)
            if concept:
                found.append({"url": f"http://hl7.org/fhir/StructureDefinition/{url}", "extension": [{"url": "code", "valueCodeableConcept": concept}]})
    species, breed = codeable(field(pid, 35)), codeable(field(pid, 36))
    if species:  # the animal extension requires the species
        parts = [{"url": "species", "valueCodeableConcept": species}] + ([{"url": "breed", "valueCodeableConcept": breed}] if breed else [])
        found.append({"url": "http://hl7.org/fhir/StructureDefinition/patient-animal", "extension": parts})
    return found


def _race_or_ethnicity(url: str, omb: set[str], cwes: list[str], letters: dict[str, str]) -> dict[str, Any] | None:
    """US Core race or ethnicity: each CDC code an ombCategory or detailed coding, and the text it requires (the codes'
    texts, else the codes as sent)."""
    parts: list[dict[str, Any]] = []
    texts: list[str] = []
    for cwe in cwes:
        c = comps(cwe)
        code, text, system = unescape(c[0]).strip(), clean_text(unescape(c[1])), c[2].strip().upper()
        code = letters.get(code.upper(), code) if system in ("", "HL70189") else code
        if _CDC_CODE.match(code) and system in ("", "HL70005", "HL70189", "CDCREC", "2.16.840.1.113883.6.238"):
            coding = {"system": CDC_RACE_ETHNICITY, "code": code} | ({"display": text} if text else {})
            parts.append({"url": "ombCategory" if code in omb else "detailed", "valueCoding": coding})
        if text or code:
            texts.append(text or code)
    if not texts:
        return None
    return {"url": url, "extension": parts + [{"url": "text", "valueString": ", ".join(dict.fromkeys(texts))}]}


def _document_identifiers(pid: Any) -> list[dict[str, Any]]:
    """PID-19 (SSN) and PID-20 (driver's license: number^issuing state^expiry) -> Identifiers typed SS and DL."""
    out = []
    ssn = unescape(comps(field(pid, 19))[0]).strip()
    if ssn:
        out.append({"value": ssn, "system": "http://hl7.org/fhir/sid/us-ssn",
                    "type": {"coding": [{"system": V2_0203, "code": "SS"}]}})
    dln = comps(field(pid, 20))
    number = unescape(dln[0]).strip()
    if number:
        licence: dict[str, Any] = {"value": number, "type": {"coding": [{"system": V2_0203, "code": "DL"}]},
                                   "system": f"urn:clinstream:id:{authority(dln[1]) or 'driver-license'}"}
        expires = date_only(dln[2])
        if expires:
            licence["period"] = {"end": expires}
        out.append(licence)
    return out


def marital_status(cwe: str) -> dict[str, Any] | None:
    """PID-16 (table 0002) -> v3 MaritalStatus; a code outside the table keeps the sender's coding."""
    c = comps(cwe)
    mapped = MARITAL.get(unescape(c[0]).strip().upper()) if c[2].strip().upper() in ("", "HL70002") else None
    if mapped is None:
        return codeable(cwe)
    concept: dict[str, Any] = {"coding": [{"system": mapped[0], "code": mapped[1]}]}
    text = unescape(c[1]).strip()
    if text:
        concept["text"] = text
    return concept


def language_concept(cwe: str) -> dict[str, Any] | None:
    """PID-15 (CWE, often ISO 639-2 in table 0296, with an alternate coding) -> a BCP 47 CodeableConcept."""
    c = comps(cwe)
    codings = []
    for code in (unescape(c[0]).strip(), unescape(c[3]).strip()):
        tag = ISO639_2_TO_1.get(code.lower(), code.lower() if len(code) == 2 and code.isalpha() else "")
        if tag and all(x["code"] != tag for x in codings):
            codings.append({"system": BCP47, "code": tag})
    if not codings:
        return codeable(cwe)
    concept: dict[str, Any] = {"coding": codings}
    text = next((t for t in (unescape(c[1]).strip(), unescape(c[4]).strip()) if t), "")
    if text:
        concept["text"] = text
    return concept


def authorities(pid: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Organizations of the PID-3 assigning authorities that carry a universal id, set as Identifier.assigner."""
    orgs = []
    idents = resource.get("identifier", [])
    at = {(i.get("system"), i["value"]): n for n, i in enumerate(idents)}
    for cx in reps(field(pid, 3)):
        ident, org = assigned_identifier(cx)
        n = at.get((ident.get("system"), ident["value"])) if ident else None
        if org and n is not None:
            idents[n] = Clean({**idents[n], "assigner": ident["assigner"]})
            orgs.append(org)
    return orgs


def merged_patient(mrg: Any, resource: dict[str, Any], mrn_type: str = "MR") -> dict[str, Any] | None:
    """MRG-1 (prior patient identifiers) -> the retired Patient record, linked both ways with the surviving one."""
    idents = [i for i in (identifier(cx) for cx in reps(field(mrg, 1)) + reps(field(mrg, 4))) if i]
    if not idents:
        return None
    # keyed like patient_key keys a PID, so the retired record gets the id its own messages gave it
    prior = reps(field(mrg, 1)) or reps(field(mrg, 4))
    first = comps(prior[_mrn_index(prior, mrn_type)])
    old = {"resourceType": "Patient", "id": resource_id("Patient", f"{authority(first[3])}|{unescape(first[0])}"), "active": False,
           "identifier": idents, "link": [{"other": ref(resource), "type": "replaced-by"}]}
    if old["id"] == resource["id"]:  # the message merges a record into itself: nothing to link
        return None
    link = {"other": ref(old), "type": "replaces"}
    if link not in resource.get("link", []):
        resource.setdefault("link", []).append(link)
    return old


def primary_care(pd1: Any, resource: dict[str, Any]) -> list[dict[str, Any]]:
    """PD1-3 (primary care facility) and PD1-4 (primary care provider) -> Patient.generalPractitioner."""
    found: list[dict[str, Any]] = []
    for xon in reps(field(pd1, 3)):
        org = xon_organization(xon, "pd1")
        if org:
            found.append(org)
    for xcn in reps(field(pd1, 4)):
        authorities: list[dict[str, Any]] = []
        doctor = practitioner(xcn, authorities)
        if doctor:
            found.append(doctor)
            found += authorities
    if found:
        resource["generalPractitioner"] = [ref(r) for r in found]
    return found


# DB1 (disability) has no map in the V2-to-FHIR guide and R4 no element for it: the patient-disability extension
# holds the disabling conditions, which DB1 does not carry. Kept as one complex extension per DB1, in
# clinstream's namespace (FHIR-Converter writes the indicator and the period as two example.com extensions).
DISABILITY_EXTENSION = "urn:clinstream:extension:disability"
# DB1-2 disabled person code (table 0334): the patient; GT guarantor, IN insured, AP associated party are
# someone else, whose disability the Patient must not take
PATIENT_PERSON_CODES = {"", "PT"}


def disability(db1: Any, resource: dict[str, Any]) -> list[dict[str, Any]] | None:
    """DB1 -> the Patient, completed in place: 3 disabled person identifiers (CX, as PID-3: Patient.identifier with
    the assigner Organization), 4 disability indicator (Y/N), 5/6 start and end dates, 7 return to work date, 8 unable
    to work date (the extension). Returns the assigner Organizations, or None when the segment is about someone
    else (DB1-2 other than PT) or says nothing."""
    if unescape(comps(field(db1, 2))[0]).strip().upper() not in PATIENT_PERSON_CODES:
        return None
    found: list[dict[str, Any]] = []
    known = {(i.get("system"), i.get("value")) for i in resource.get("identifier", [])}
    added = False
    for cx in reps(field(db1, 3)):
        ident, org = assigned_identifier(cx)
        if ident is None or (ident.get("system"), ident["value"]) in known:
            continue
        known.add((ident.get("system"), ident["value"]))
        resource.setdefault("identifier", []).append(ident)
        added = True
        if org is not None:
            found.append(org)
    parts: list[dict[str, Any]] = []
    flag = field(db1, 4).strip().upper()
    if flag in ("Y", "N"):
        parts.append({"url": "indicator", "valueBoolean": flag == "Y"})
    period = {k: v for k, v in (("start", date_only(field(db1, 5))), ("end", date_only(field(db1, 6)))) if v}
    if period:
        parts.append({"url": "period", "valuePeriod": period})
    for n, name in ((7, "returnToWork"), (8, "unableToWork")):
        when = date_only(field(db1, n))
        if when:
            parts.append({"url": name, "valueDate": when})
    if parts:
        resource.setdefault("extension", []).append({"url": DISABILITY_EXTENSION, "extension": parts})
    return found if parts or added else None
