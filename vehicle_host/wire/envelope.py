"""The envelope every message travels in, and the limits that apply to all of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The runtime API level this host speaks. A bundle declares the range it needs; a peer announces
#: the level it speaks in its ``hello``. Raise it when a message type or payload changes incompatibly.
API_LEVEL = 1

#: Hard limit for one encoded message. setData payloads are limited to 256 KiB by the runtime;
#: the rest is headroom for the envelope and compiled templates.
MAX_MESSAGE_BYTES = 1024 * 1024

#: Limits on the envelope's own fields.
MAX_ADDRESS_CHARS = 128
MAX_TYPE_CHARS = 64
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Envelope:
    """One message: ``type`` names the payload schema, ``id`` correlates replies with requests.

    ``source`` and ``target`` are addresses: ``"hub"``, ``"shell"``, ``"client"`` or ``"app:<app id>"``.
    The hub never trusts a worker's ``source``: it stamps the address of the socket it came in on.
    """

    type: str
    id: int
    source: str
    target: str
    payload: dict[str, Any] = field(default_factory=dict)

    def reply(self, type_: str, payload: dict[str, Any]) -> Envelope:
        """An envelope answering this one: same id, source and target swapped."""
        return Envelope(type=type_, id=self.id, source=self.target, target=self.source, payload=payload)
