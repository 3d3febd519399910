"""PID-18 (patient account number) and GT1 -> Account: the patient as subject, each guarantor as a party."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import date_only, field, reps
from fhir_mappers.ids import resource_id
from fhir_mappers.organizations import assigned_identifier


def account(pid: Any, msg_key: str, patient: dict, guarantors: list[tuple[dict, Any]],
            coverages: list[dict]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The Account (None without PID-18 or a guarantor) and the Organization of its identifier's authority.
    `guarantors` pairs each party reference with its GT1, whose fields 13/14 bound the guarantee."""
    ident, org = assigned_identifier(reps(field(pid, 18))[0]) if reps(field(pid, 18)) else (None, None)
    if ident is None and not guarantors:
        return None, []
    # keyed by the account number when there is one, so every message about the account updates one resource
    key = (ident.get("system", ""), ident["value"]) if ident else (msg_key,)
    resource: dict[str, Any] = {"resourceType": "Account", "id": resource_id("Account", *key), "status": "active", "subject": [patient]}
    if ident:
        resource["identifier"] = [ident]
    parties = []
    for party, gt1 in guarantors:
        item: dict[str, Any] = {"party": party}
        start, end = date_only(field(gt1, 13)), date_only(field(gt1, 14))
        if start or end:
            item["period"] = {k: v for k, v in (("start", start), ("end", end)) if v}
        parties.append(item)
    if parties:
        resource["guarantor"] = parties
    if coverages:  # the insurance sent with the account pays for it
        resource["coverage"] = [{"coverage": c} for c in coverages]
    return resource, [org] if org else []
