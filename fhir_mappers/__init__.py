"""HL7 v2 (ER7) -> FHIR R4 Bundles, as pure functions; and R4 validation shared with FHIR input."""

from fhir_mappers.errors import HL7MappingError, MapperBug
from fhir_mappers.message import MappedMessage, hl7v2_to_fhir
from fhir_mappers.senders import SenderOverrides, SenderOverridesError, load_overrides
from fhir_mappers.validation import FHIRValidationError, validate_r4_bundle

__all__ = ["FHIRValidationError", "HL7MappingError", "MappedMessage", "MapperBug", "SenderOverrides", "SenderOverridesError",
           "hl7v2_to_fhir", "load_overrides", "validate_r4_bundle"]
