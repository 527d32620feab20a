"""UDS negative response codes (ISO 14229-1 annex A) the simulated ECUs use."""

from __future__ import annotations

SERVICE_NOT_SUPPORTED = 0x11
SUBFUNCTION_NOT_SUPPORTED = 0x12
INCORRECT_LENGTH = 0x13
CONDITIONS_NOT_CORRECT = 0x22
REQUEST_OUT_OF_RANGE = 0x31
RESPONSE_PENDING = 0x78
SERVICE_NOT_SUPPORTED_IN_SESSION = 0x7F
#: Codes a server does not send for a functionally addressed request (ISO 14229-1 7.5).
SUPPRESSED_WHEN_FUNCTIONAL = frozenset({0x11, 0x12, 0x31, 0x7E, 0x7F})


class NegativeResponse(Exception):
    """Raised inside a service handler; becomes ``7F <sid> <code>`` on the bus."""

    def __init__(self, code: int) -> None:
        super().__init__(f"NRC {code:#04x}")
        self.code = code
