"""FHIR R4 validation with fhir.resources' R4B models (the package's default models are R5)."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError


class FHIRValidationError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def validate_r4_bundle(bundle: dict[str, Any]) -> None:
    """Raise FHIRValidationError naming the failing element paths (never their values)."""
    try:
        Bundle.model_validate(bundle)
    except (KeyError, TypeError):
        # fhir.resources looks each resource's model up by resourceType and raises these, not a
        # ValidationError, for an unknown or non-string type (in an entry or a contained resource)
        raise FHIRValidationError("a resourceType is missing, not a string or not an R4 resource type") from None
    except ValidationError as exc:
        errors = exc.errors()
        paths = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['type']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise FHIRValidationError(f"{len(errors)} error(s): {paths}{more}") from None
