"""PRD (provider data, in referral messages) -> a PractitionerRole of the provider in its referral role (table
0286) with the Practitioner, the Locations and the provider's Organization; and how it joins the referral: the
referring provider its requester, the referred-to and consulting providers its performers, the primary care
provider the patient's general practitioner."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import address, codeable, comps, date_only, dtm, field, human_name, in_system, reps, telecom, unescape
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations
from fhir_mappers.organizations import xon_organization

V2_0286 = "http://terminology.hl7.org/CodeSystem/v2-0286"  # provider role
V2_0338 = "http://terminology.hl7.org/CodeSystem/v2-0338"  # practitioner id number type
REQUESTER, PERFORMERS, PRIMARY_CARE = "RP", {"RT", "CP"}, "PP"


def provider_role(cwe: str) -> dict[str, Any] | None:
    """PRD-1 (CWE, table 0286: RP referring, RT referred to, CP consulting, PP primary care provider) -> CodeableConcept,
    coded in v2-0286 unless the sender names another system."""
    concept = codeable(cwe)
    if concept and concept.get("coding") and comps(cwe)[2].strip().upper() in {"", "HL70286"}:
        return in_system(concept, V2_0286)
    return concept


def provider_identifier(pln: str) -> dict[str, Any] | None:
    """PLN (id^type (table 0338)^state or province^expiration date) -> Identifier, as the guide's PLN[Identifier]:
    1 value, 2 type, 4 period end (3 is not mapped)."""
    c = comps(pln)
    value = unescape(c[0]).strip()
    if not value:
        return None
    ident: dict[str, Any] = {"value": value}
    kind = unescape(c[1].split("&")[0]).strip()
    if kind:
        ident["type"] = {"coding": [{"system": V2_0338, "code": kind}]}
    expires = date_only(c[3])
    if expires:
        ident["period"] = {"end": expires}
    return ident


def provider(prd: Any, facility: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the PractitionerRole, every resource it names: Practitioner, Locations, Organization); (None, []) when the
    segment names neither a provider nor an organisation.
    PRD: 1 role (code), 2 name, 3 address and 7 identifiers (the Practitioner), 4 location (a Location chain), 5
    communication (the role's telecom, as PRT-15 and ROL-12 are), 8/9 role start and end (period), 10 organisation with
    11 its address, 12 its location and 13 its communication. 6 and 14 (preferred contact methods) are not mapped."""
    names = [n for n in (human_name(x) for x in reps(field(prd, 2))) if n]
    idents = [i for i in (provider_identifier(x) for x in reps(field(prd, 7))) if i]
    made: list[dict[str, Any]] = []
    person: dict[str, Any] | None = None
    if names or idents:
        key = f"{idents[0].get('type', {}).get('coding', [{}])[0].get('code', '')}|{idents[0]['value']}" if idents else field(prd, 2)
        person = {"resourceType": "Practitioner", "id": resource_id("Practitioner", "prd", key)}
        if idents:
            person["identifier"] = idents
        if names:
            person["name"] = names
        places = [a for a in (address(x) for x in reps(field(prd, 3))) if a]
        if places:
            person["address"] = places
        made.append(person)
    org = xon_organization(field(prd, 10).split("~")[0], "participant")
    if org:
        places = [a for a in (address(x) for x in reps(field(prd, 11))) if a]
        if places:
            org["address"] = places
        points = [t for t in (telecom(x) for x in reps(field(prd, 13))) if t]
        if points:
            org["telecom"] = points
        made.append(org)
    if person is None and org is None:
        return None, []
    roles = [r for r in (provider_role(x) for x in reps(field(prd, 1))) if r]
    chains = [c for c in (locations(pl, facility) for pl in (field(prd, 4).split("~")[0], field(prd, 12).split("~")[0])) if c]
    for chain in chains:
        made += chain
    code = roles[0].get("coding", [{}])[0].get("code", "") if roles else ""
    key = (code, person["id"] if person else "", org["id"] if org else "", *(c[-1]["id"] for c in chains))
    actor: dict[str, Any] = {"resourceType": "PractitionerRole", "id": resource_id("PractitionerRole", "prd", *key)}
    if person:
        actor["practitioner"] = ref(person)
    if org:
        actor["organization"] = ref(org)
    if roles:
        actor["code"] = roles
    if chains:
        actor["location"] = [ref(c[-1]) for c in chains]
    start, stop = dtm(field(prd, 8)), dtm(field(prd, 9))
    if start or stop:
        actor["period"] = {k: v for k, v in (("start", start), ("end", stop)) if v}
    points = [t for t in (telecom(x) for x in reps(field(prd, 5))) if t]
    if points:
        actor["telecom"] = points
    return actor, [actor] + made


def join_referral(actor: dict[str, Any], referral: dict[str, Any] | None, patient: dict[str, Any] | None) -> None:
    """The referring provider (RP) becomes the referral's requester (the first one), the referred-to and consulting
    providers (RT, CP) its performers, the primary care provider (PP) the patient's general practitioner; any other
    role, or one with nothing to join, leaves the PractitionerRole standing alone."""
    codes = {str(c.get("code", "")).upper() for concept in actor.get("code", []) for c in concept.get("coding", [])}
    who = ref(actor)
    if referral is not None and REQUESTER in codes and "requester" not in referral:
        referral["requester"] = who
    elif referral is not None and codes & PERFORMERS:
        if who not in referral.setdefault("performer", []):
            referral["performer"].append(who)
    elif patient is not None and PRIMARY_CARE in codes:
        if who not in patient.setdefault("generalPractitioner", []):
            patient["generalPractitioner"].append(who)
