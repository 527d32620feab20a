"""The registry's request error: an HTTP status, a stable code word and a message saying what to do."""

from __future__ import annotations

from vehicle_host.errors import VehicleHostError


class RegistryError(VehicleHostError):
    """A registry operation was refused; ``status`` is the HTTP status, ``code`` a stable word."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
