"""The mapper's error: `reason` names the segment and field at fault, never their values."""


class HL7MappingError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
