"""One exception root for vehicle-host, split by who is at fault.

Every user-facing error says what happened and what to do about it.
"""

from __future__ import annotations


class VehicleHostError(Exception):
    """Root of every error vehicle-host raises on purpose."""


class WireError(VehicleHostError):
    """A message on the wire is malformed, oversized or of an unknown type (the sender's fault)."""


class BundleError(VehicleHostError):
    """A mini-app bundle is invalid (the publisher's fault): manifest, template or style."""


class TemplateError(BundleError):
    """A WXML template or WXSS style sheet cannot be compiled.

    ``filename``, ``line`` and ``column`` point at the problem (1-based; 0 when unknown).
    """

    def __init__(self, message: str, *, filename: str = "", line: int = 0, column: int = 0) -> None:
        self.filename = filename
        self.line = line
        self.column = column
        where = f"{filename}:{line}:{column}: " if filename else ""
        super().__init__(f"{where}{message}")


class DeniedError(VehicleHostError):
    """A call was refused by policy (permission, grant, vehicle state)."""


class DeviceError(VehicleHostError):
    """A device or process the host depends on failed (display, CAN adapter, worker)."""


class HostTimeoutError(VehicleHostError):
    """Something did not answer in time."""
