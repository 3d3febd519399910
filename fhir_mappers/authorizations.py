"""AUT (authorization information) -> ClaimResponse: the payor's pre-authorization of a referral or procedure,
with how many treatments were asked for and granted, the limit it pays up to and when it holds."""

from __future__ import annotations

from typing import Any

from fhir_mappers.charges import _money
from fhir_mappers.datatypes import comps, dtm, entity_identifier, field, number, unescape
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.organizations import xon_organization

ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
# v2 has treatment counts where FHIR's adjudication table has none: FHIR-Converter's codes for them
TREATMENT_COUNTS = "urn:clinstream:codesystem:additional-adjudication"
COUNTS = ((8, "RNT", "Requested Number of Treatments"), (9, "ANT", "Authorized Number of Treatments"))
# v2 does not say which kind of claim the authorization answers; FHIR-Converter and the guide's examples say institutional
CLAIM_TYPE = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional", "display": "Institutional"}]}


def authorization(aut: Any, index: int, msg_key: str, patient: dict, sent_at: str | None) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """(the ClaimResponse, the payor Organization). AUT: 2 company id and 3 company name (the insurer),
    4/5 effective and expiration dates (pre-authorization period), 6 authorization id, 7 reimbursement limit
    (benefit total), 8/9 requested and authorized treatments, 10 process date (created; else the message's
    time), 28 comment; 1, the payor's plan, has no place in a ClaimResponse. None when no insurer is named or
    no date is known: R4 requires both."""
    company = comps(field(aut, 2))
    insurer = xon_organization(f"{field(aut, 3)}^^{company[0] or company[1]}", "payor")
    created = dtm(field(aut, 10)) or sent_at
    if insurer is None or created is None:
        return None, []
    resource: dict[str, Any] = {"resourceType": "ClaimResponse", "id": resource_id("ClaimResponse", msg_key, str(index)),
                                "status": "active", "type": CLAIM_TYPE, "use": "preauthorization", "patient": patient,
                                "created": created, "insurer": ref(insurer), "outcome": "complete"}
    ident = entity_identifier(field(aut, 6))
    if ident:
        resource["identifier"] = [ident]
    start, end = dtm(field(aut, 4)), dtm(field(aut, 5))
    if start or end:
        resource["preAuthPeriod"] = {k: v for k, v in (("start", start), ("end", end)) if v}
    counts = []
    for n, code, display in COUNTS:
        value = number(unescape(comps(field(aut, n))[0]))
        if value is not None:
            counts.append({"category": {"coding": [{"system": TREATMENT_COUNTS, "code": code, "display": display}]}, "value": value})
    if counts:
        resource["item"] = [{"itemSequence": 1, "adjudication": counts}]
    limit = _money(field(aut, 7))
    if limit:
        resource["total"] = [{"category": {"coding": [{"system": ADJUDICATION, "code": "benefit", "display": "Benefit Amount"}]},
                              "amount": limit}]
    comment = unescape(field(aut, 28)).strip()
    if comment:
        resource["processNote"] = [{"text": comment}]
    return resource, [insurer]
