"""clinstream's errors. Each carries `reason`, the readable text that goes on the dead-letter topic;
reasons never contain patient data (they name the segment, field or element, not its value)."""

from __future__ import annotations


class ClinstreamError(Exception):
    """Root of clinstream's own errors."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RejectedMessage(ClinstreamError):
    """An inbound message that cannot be normalized: it goes to the dead-letter topic."""

    def __init__(self, reason: str, kind: str) -> None:
        super().__init__(reason)
        self.kind = kind  # too_large | too_many_segments | hl7_parse | fhir_json | fhir_invalid


class ServiceError(ClinstreamError):
    """A local service (Kafka broker, Redis) could not be started or reached."""
