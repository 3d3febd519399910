"""PV1-54 (service episode identifier) -> EpisodeOfCare: the episode the visit belongs to, with the message's
diagnoses (DG1) in their roles."""

from __future__ import annotations

from typing import Any

from fhir_mappers.datatypes import field
from fhir_mappers.ids import resource_id
from fhir_mappers.organizations import assigned_identifier


def episode_of_care(pv1: Any, patient: dict, diagnoses: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The EpisodeOfCare (None without PV1-54) and the Organization of its identifier's authority. `diagnoses` are
    Encounter.diagnosis entries; the episode lists the same conditions, their `use` as its `role`."""
    ident, org = assigned_identifier(field(pv1, 54).split("~")[0])
    if ident is None:
        return None, []
    # keyed by the episode identifier, so every visit of the episode points at one resource
    resource: dict[str, Any] = {"resourceType": "EpisodeOfCare", "id": resource_id("EpisodeOfCare", ident.get("system", ""), ident["value"]),
                                "identifier": [ident], "status": "active", "patient": patient}
    if diagnoses:
        resource["diagnosis"] = [{"role" if k == "use" else k: v for k, v in d.items()} for d in diagnoses]
    return resource, [org] if org else []
