"""FHIR dateTime strings of any precision as comparable datetimes."""

from __future__ import annotations

from datetime import datetime


def parse_time(value: str) -> datetime:
    """FHIR dateTime (any precision) -> aware datetime; dates count as midnight UTC."""
    if len(value) == 4:
        value += "-01-01"
    if len(value) == 7:
        value += "-01"
    if len(value) == 10:
        value += "T00:00:00+00:00"
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
