"""RF1 (referral information) -> ServiceRequest for the referral, with the Organization and Practitioner
authorized to take it on as performers."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, entity_identifier, field, reps, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.orders import PRIORITY
from fhir_mappers.organizations import xon_organization

# RF1-1 referral status (table 0283; C is a common local "cancelled") -> ServiceRequest.status: a pending referral
# waits on the receiving provider (on hold); a rejected, expired or cancelled one no longer authorizes anything
REFERRAL_STATUS = {"A": "active", "P": "on-hold", "R": "revoked", "E": "revoked", "C": "revoked"}
REFERRAL = {"coding": [{"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}]}


def referral(rf1: Any, index: int, msg_key: str, patient: dict, encounter: dict | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """RF1: 1 status, 2 priority, 3 type and 5 category (categories beside "patient referral"), 6 originating and
    11 external referral ids, 7/8 effective and expiration dates (when the referral may be acted on), 9 process
    date (authored), 10 reasons with 14 reason text, 19 authorized provider and 20 health professional
    (performers), 24 comment."""
    status = REFERRAL_STATUS.get(unescape(comps(field(rf1, 1))[0]).strip().upper(), "unknown")
    resource: dict[str, Any] = {"resourceType": "ServiceRequest", "id": resource_id("ServiceRequest", msg_key, str(index)),
                                "status": status, "intent": "order", "subject": patient,
                                "category": [REFERRAL] + [c for c in (codeable(field(rf1, n)) for n in (3, 5)) if c]}
    identifiers = [i for i in [entity_identifier(field(rf1, 6))] + [entity_identifier(x) for x in reps(field(rf1, 11))] if i]
    if identifiers:
        resource["identifier"] = identifiers
    priority = PRIORITY.get(unescape(comps(field(rf1, 2))[0]).strip().upper())
    if priority:
        resource["priority"] = priority
    if encounter:
        resource["encounter"] = encounter
    start, end = dtm(field(rf1, 7)), dtm(field(rf1, 8))
    if start or end:
        resource["occurrencePeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    authored = dtm(field(rf1, 9))
    if authored:
        resource["authoredOn"] = authored
    reasons = [c for c in (codeable(x) for x in reps(field(rf1, 10))) if c]
    text = unescape(field(rf1, 14)).strip()
    if text and reasons:
        reasons[0] = {**reasons[0], "text": text}  # RF1-14 says in words why the patient is referred
    elif text:
        reasons = [{"text": text}]
    if reasons:
        resource["reasonCode"] = reasons
    related: list[dict[str, Any]] = []
    for who in (xon_organization(field(rf1, 19).split("~")[0], "referral"), practitioner(field(rf1, 20).split("~")[0], related)):
        if who:
            related.append(who)
            resource.setdefault("performer", []).append(ref(who))
    comment = unescape(field(rf1, 24)).strip()
    if comment:
        resource["note"] = [{"text": comment}]
    return resource, related
