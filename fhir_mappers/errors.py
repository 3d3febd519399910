"""The mapper's error: `reason` names the segment and field at fault, never their values."""


class HL7MappingError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MapperBug(HL7MappingError):
    """A mapper raised on a message it should have handled: still dead-lettered by the stage (never a
    crash), but counted as a crash by the conformance run, since the fault is ours, not the sender's."""
