"""Opening the CAN bus and one ISO-TP + UDS link per ECU (python-can, can-isotp, udsoncan).

All ECU stacks read through one shared ``can.Notifier``. Raw (OBD-II) requests go through the
same udsoncan connection as UDS requests, so one lock per ECU keeps them from interleaving.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import can
import isotp
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpV2Connection
from udsoncan.typing import ClientConfig

from vehicle_host.plugins.contract import DeviceUnavailable, InvalidArguments, PluginTimeout

log = logging.getLogger("vehicle_host.can_diagnostics")

OBD_FUNCTIONAL_ID = 0x7DF
#: ISO 15765-4: legislated OBD responders answer on 0x7E8..0x7EF (physical request id = answer - 8).
OBD_RESPONSE_IDS = tuple(range(0x7E8, 0x7F0))
MAX_ECUS = 16
SOCKET_RCVBUF = 1 << 20
NEGATIVE_RESPONSE = 0x7F
RESPONSE_PENDING = 0x78


@dataclass(frozen=True, slots=True)
class EcuAddress:
    """An ECU's name and its 11-bit physical request (``tx``) and answer (``rx``) CAN ids."""

    name: str
    tx: int
    rx: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "tx": f"0x{self.tx:03X}", "rx": f"0x{self.rx:03X}"}


DEFAULT_ECUS: tuple[EcuAddress, ...] = (
    EcuAddress("engine", 0x7E0, 0x7E8),
    EcuAddress("transmission", 0x7E1, 0x7E9),
    EcuAddress("abs", 0x7E2, 0x7EA),
)


def _can_id(value: Any, what: str) -> int:
    try:
        number = int(value, 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise InvalidArguments(f"{what}: {value!r} is not a CAN id (use an int or '0x7E0')") from None
    if not 0 <= number <= 0x7FF:
        raise InvalidArguments(f"{what}: {number:#x} is not an 11-bit CAN id (0..0x7FF)")
    return number


def parse_ecus(value: Any) -> tuple[EcuAddress, ...]:
    """ECUs from config: ``{"engine": {"tx": "0x7E0", "rx": "0x7E8"}, ...}`` or a list of
    ``{"name", "tx", "rx"}``. ``None`` gives :data:`DEFAULT_ECUS`."""
    if value is None:
        return DEFAULT_ECUS
    if isinstance(value, Mapping):
        items = [{"name": name, **dict(spec)} for name, spec in value.items()]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = [dict(spec) for spec in value]
    else:
        raise InvalidArguments("config 'ecus' must map ECU names to {tx, rx} CAN ids")
    if not 1 <= len(items) <= MAX_ECUS:
        raise InvalidArguments(f"config 'ecus' must list 1..{MAX_ECUS} ECUs, got {len(items)}")
    out: list[EcuAddress] = []
    for item in items:
        name = str(item.get("name", "")).strip()
        if not name or len(name) > 32 or not name.replace("_", "").replace("-", "").isalnum():
            raise InvalidArguments(f"ECU name {name!r} must be 1..32 letters, digits, '-' or '_'")
        out.append(
            EcuAddress(name, _can_id(item.get("tx"), f"{name}.tx"), _can_id(item.get("rx"), f"{name}.rx"))
        )
    names = [e.name for e in out]
    if len(set(names)) != len(names):
        raise InvalidArguments("config 'ecus' names must be unique")
    return tuple(out)


def enlarge_receive_buffer(bus: can.BusABC, size: int = SOCKET_RCVBUF) -> bool:
    """Ask the kernel for a larger receive buffer when the bus has a socket (socketcan)."""
    sock = getattr(bus, "socket", None)
    if not isinstance(sock, socket.socket):
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
    except OSError as exc:
        log.warning("could not enlarge the CAN socket receive buffer: %s", exc)
        return False
    return True


def open_bus(
    interface: str, channel: str, *, bitrate: int | None = None, receive_ids: Iterable[int] = ()
) -> can.BusABC:
    """Open a python-can bus that receives only ``receive_ids`` (kernel-side filters on socketcan)."""
    ids = sorted(set(receive_ids))
    filters = [{"can_id": i, "can_mask": 0x7FF, "extended": False} for i in ids] or None
    kwargs: dict[str, Any] = {"receive_own_messages": False}
    if bitrate:
        kwargs["bitrate"] = int(bitrate)
    try:
        bus = can.Bus(interface=interface, channel=channel, can_filters=filters, **kwargs)
    except (can.CanError, OSError, ValueError, ImportError) as exc:
        raise DeviceUnavailable(
            f"cannot open CAN adapter {channel} ({interface}): {exc}. Check the adapter is plugged in "
            f"and the interface is up (e.g. 'ip link set {channel} up type can bitrate 500000')"
        ) from exc
    enlarge_receive_buffer(bus)
    return bus


def isotp_params() -> dict[str, Any]:
    return {
        "stmin": 0,
        "blocksize": 8,
        "tx_padding": 0xAA,
        "tx_data_min_length": 8,
        "rx_flowcontrol_timeout": 1000,
        "rx_consecutive_frame_timeout": 1000,
        "max_frame_size": 4095,
        "blocking_send": False,
    }


@dataclass(frozen=True, slots=True)
class Timing:
    p2: float = 1.0
    p2_star: float = 5.0
    request: float = 8.0


class EcuLink:
    """One ECU: its ISO-TP stack, udsoncan connection and client, and the lock serialising requests."""

    def __init__(
        self,
        bus: can.BusABC,
        notifier: can.Notifier,
        ecu: EcuAddress,
        timing: Timing,
        uds_config: Mapping[str, Any],
    ) -> None:
        self.ecu = ecu
        self.timing = timing
        self.lock = threading.Lock()
        self.session = "default"
        self.isotp_errors = 0
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=ecu.tx, rxid=ecu.rx)
        self.stack = isotp.NotifierBasedCanStack(
            bus, notifier, address=address, params=isotp_params(), error_handler=self._on_isotp_error
        )
        self.conn = PythonIsoTpV2Connection(self.stack, name=ecu.name)
        config: dict[str, Any] = dict(udsoncan.configs.default_client_config)
        config.update(uds_config)
        config.update(
            {
                "p2_timeout": timing.p2,
                "p2_star_timeout": timing.p2_star,
                "request_timeout": timing.request,
                "use_server_timing": False,
            }
        )
        self.client = Client(self.conn, config=cast(ClientConfig, config))
        self.client.open()

    def _on_isotp_error(self, error: Exception) -> None:
        self.isotp_errors += 1
        log.debug("ISO-TP error from %s: %s", self.ecu.name, error)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()

    def request_raw(self, payload: bytes, what: str) -> bytes:
        """Send ``payload`` and return the answer, waiting P2*/overall while the ECU answers 0x78."""
        self.conn.empty_rxqueue()
        self.conn.send(payload)
        return self.wait_answer(payload[0], what, time.monotonic() + self.timing.request)

    def wait_answer(self, service: int, what: str, overall_deadline: float) -> bytes:
        deadline = min(time.monotonic() + self.timing.p2, overall_deadline)
        while True:
            remaining = deadline - time.monotonic()
            frame = (
                self.conn.wait_frame(timeout=max(remaining, 0.001), exception=False)
                if remaining > 0
                else None
            )
            if frame is None:
                raise PluginTimeout(
                    f"ECU {self.ecu.name} (0x{self.ecu.tx:03X}) did not answer {what} in time. "
                    "Check the ignition is on and the ECU address is right"
                )
            data = bytes(frame)
            if (
                len(data) >= 3
                and data[0] == NEGATIVE_RESPONSE
                and data[1] == service
                and data[2] == RESPONSE_PENDING
            ):
                deadline = min(time.monotonic() + self.timing.p2_star, overall_deadline)
                continue
            return data


class FunctionalSender:
    """Sends single-frame requests to the OBD functional id 0x7DF; answers arrive on the ECU links."""

    def __init__(self, bus: can.BusABC, notifier: can.Notifier) -> None:
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=OBD_FUNCTIONAL_ID, rxid=0x7DE)
        self.stack = isotp.NotifierBasedCanStack(bus, notifier, address=address, params=isotp_params())
        self.stack.start()

    def send(self, payload: bytes) -> None:
        self.stack.send(payload, target_address_type=isotp.TargetAddressType.Functional)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.stop()


class ResponderListener(can.Listener):
    """Records which OBD answer ids (0x7E8..0x7EF) sent a frame while armed."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._armed = False
        self._guard = threading.Lock()

    def arm(self) -> None:
        with self._guard:
            self._seen.clear()
            self._armed = True

    def disarm(self) -> set[int]:
        with self._guard:
            self._armed = False
            return set(self._seen)

    def on_message_received(self, msg: can.Message) -> None:
        if self._armed and not msg.is_extended_id and msg.arbitration_id in OBD_RESPONSE_IDS:
            with self._guard:
                self._seen.add(msg.arbitration_id)
