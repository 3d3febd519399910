"""PR1 -> Procedure, with the Practitioners of PR1-8 (anesthesiologist), -11 (surgeon) and -12 (other) and the
Locations of PR1-23 (treating organizational unit)."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, dtm, field, reps, unescape
from fhir_mappers.encounter import practitioner
from fhir_mappers.ids import ref, resource_id
from fhir_mappers.locations import locations

PERFORMERS = ((8, "Anesthesiologist"), (11, "Surgeon"), (12, "Procedure Practitioner"))


def procedure(pr1: Any, index: int, msg_key: str, subject: dict, encounter: dict | None,
              facility: str = "") -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Procedure and the resources it references (performers, location, parent procedure)."""
    code = codeable(field(pr1, 3).split("~")[0])
    description = unescape(field(pr1, 4)).strip()
    if code and description:
        code = {**code, "text": description}  # PR1-4 describes the procedure in the sender's words
    code = code or ({"text": description} if description else None)
    # the guide: status depends on the message context; where that is not clear, "unknown"
    resource: dict[str, Any] = {"resourceType": "Procedure", "id": resource_id("Procedure", msg_key, str(index)),
                                "status": "unknown", "subject": subject}
    if code:
        resource["code"] = code
    if encounter:
        resource["encounter"] = encounter
    performed = dtm(field(pr1, 5))
    if performed:
        resource["performedDateTime"] = performed
    category = codeable(field(pr1, 6))
    if category:
        resource["category"] = category
    number = unescape(comps(field(pr1, 19))[0]).strip()
    if number:
        resource["identifier"] = [{"value": number}]
    related: list[dict[str, Any]] = []
    performers = []
    for n, role in PERFORMERS:
        for xcn in reps(field(pr1, n)):
            doctor = practitioner(xcn, related)
            if doctor:
                related.append(doctor)
                performers.append({"function": {"text": role}, "actor": ref(doctor)})
    if performers:
        resource["performer"] = performers
    reason = codeable(field(pr1, 15))
    if reason:
        resource["reasonCode"] = [reason]
    chain = locations(field(pr1, 23).split("~")[0], facility)  # the guide maps the first PR1-23 only
    if chain:
        resource["location"] = ref(chain[-1])
        related += chain
    parent = unescape(comps(field(pr1, 25))[0]).strip()
    if parent:  # PR1-25 names the procedure this one is part of: a stub carrying its identifier
        stub = {"resourceType": "Procedure", "id": resource_id("Procedure", msg_key, "parent", parent), "status": "unknown",
                "identifier": [{"value": parent}], "subject": subject}
        related.append(stub)
        resource["partOf"] = [ref(stub)]
    return resource, related
