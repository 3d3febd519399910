"""Deterministic resource ids: uuid5 over the resource type and its business key (assigning authority
or facility included), so a replayed message yields the same ids and two facilities never collide."""

import uuid

NAMESPACE = uuid.UUID("9a3c0d7e-5b1f-4c52-8f7a-2e6d1b4c9f30")


def resource_id(resource_type: str, *key: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "|".join((resource_type, *key))))


def entry(resource: dict) -> dict:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def ref(resource: dict) -> dict:
    return {"reference": f"urn:uuid:{resource['id']}"}
