"""CTI (clinical trial identification) -> ResearchStudy: the trial an order is part of, which the order's
ServiceRequest or MedicationRequest names as supporting information."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import codeable, comps, entity_identifier, field, unescape
from fhir_mappers.ids import resource_id


def research_study(cti: Any) -> dict[str, Any] | None:
    """CTI: 1 sponsor study id (identifier; the study is keyed by it, so the same trial named by several orders
    is one resource), 2 study phase, 3 scheduled time point (kept as a description). None without a study id."""
    study_id = entity_identifier(field(cti, 1))
    if study_id is None:
        return None
    resource: dict[str, Any] = {"resourceType": "ResearchStudy",
                                "id": resource_id("ResearchStudy", study_id.get("system", ""), study_id["value"]),
                                # the message says the patient's order is part of the trial: the study is running
                                "status": "active", "identifier": [study_id]}
    phase = codeable(field(cti, 2))
    if phase:
        resource["phase"] = phase
    point = comps(field(cti, 3))
    label = unescape(point[1] or point[0]).strip()
    if label:
        resource["description"] = f"Scheduled time point: {label}"
    return resource
