"""The ECU simulator: serves every ECU of a scenario over ISO-TP on any python-can bus.

One python-can Notifier feeds one can-isotp stack per ECU (physical request id → response id) and
one listen-only stack on the functional id 0x7DF; a thread per stack answers requests. Faults can be
injected per ECU to exercise a tester's error paths.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import can
import isotp

from vehicle_host.simulator.ecu import Ecu
from vehicle_host.simulator.nrc import RESPONSE_PENDING
from vehicle_host.simulator.scenario import FUNCTIONAL_ID, Scenario, ScenarioError
from vehicle_host.simulator.vehicle import Broadcaster, VehicleModel, VehicleState

LOG = logging.getLogger(__name__)

FAULTS = ("silence", "pending", "malformed")
PENDING_INTERVAL_S = 0.1
_FOREVER = -1
_STACK_PARAMS: dict[str, Any] = {
    "stmin": 0,
    "blocksize": 0,
    "tx_data_min_length": 8,
    "tx_padding": 0xAA,
    "max_frame_size": 4095,
}
# Raw frames no ISO-TP receiver should accept: empty, SF longer than 7, escaped FF of length 0,
# CF without FF, reserved PCI type, SF promising more bytes than it carries, FC from a server.
MALFORMED_FRAMES = (
    b"",
    bytes([0x08, 1, 2, 3, 4, 5, 6, 7]),
    bytes([0x10, 0x00, 0, 0, 0, 0, 0x62, 0xF1]),
    bytes([0x21, 0x31, 0x56, 0x48, 0x44, 0x41, 0x35, 0x45]),
    bytes([0x4F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]),
    bytes([0x07, 0x62]),
    bytes([0x3F, 0xFF, 0xFF]),
)


@dataclass(slots=True)
class _Faults:
    silence: int = 0  # requests left to ignore (_FOREVER: until cleared)
    malformed: int = 0  # requests left to answer with garbage
    pending: int = 0  # NRC 0x78 responses before each answer ...
    pending_requests: int = 0  # ... for this many requests


class _EcuRunner:
    """An :class:`Ecu` bound to its ISO-TP stack and its injected faults."""

    def __init__(self, ecu: Ecu, stack: isotp.NotifierBasedCanStack, bus: can.BusABC, stats: Counter[str]):
        self.ecu = ecu
        self.stack = stack
        self.bus = bus
        self.stats = stats
        self.faults = _Faults()
        self.lock = threading.Lock()

    def _take_fault(self) -> tuple[str, int]:
        with self.lock:
            f = self.faults
            if f.silence:
                f.silence -= 0 if f.silence == _FOREVER else 1
                return "silence", 0
            if f.malformed:
                f.malformed -= 0 if f.malformed == _FOREVER else 1
                return "malformed", 0
            if f.pending_requests and f.pending:
                f.pending_requests -= 0 if f.pending_requests == _FOREVER else 1
                return "pending", f.pending
            return "", 0

    def on_request(self, request: bytes, functional: bool) -> None:
        self.stats["requests"] += 1
        fault, pending = self._take_fault()
        if fault == "silence":
            self.stats["silenced"] += 1
            return
        if fault == "malformed":
            for data in MALFORMED_FRAMES:
                msg = can.Message(arbitration_id=self.ecu.spec.response_id, is_extended_id=False, data=data)
                try:
                    self.bus.send(msg, timeout=0.1)
                    self.stats["malformed_sent"] += 1
                except can.CanError:
                    self.stats["send_errors"] += 1
            return
        try:
            response = self.ecu.handle(request, functional, time.monotonic())
        except Exception:  # a bug must not take the ECU off the bus: answer generalReject
            LOG.exception("%s: request %s failed", self.ecu.spec.name, request[:16].hex())
            self.stats["internal_errors"] += 1
            response = bytes([0x7F, request[0], 0x10])
        if response is None:
            return
        for _ in range(pending):
            self.stack.send(bytes([0x7F, request[0], RESPONSE_PENDING]))
            self.stats["pending_sent"] += 1
            time.sleep(PENDING_INTERVAL_S)
        self.stack.send(response)
        self.stats["responses"] += 1


class Simulator:
    """Simulated ECUs on ``bus`` (any python-can bus: virtual, vhbus, socketcan).

    Give the simulator its own bus instance; pass ``notifier`` only to share an existing one.
    """

    def __init__(
        self, bus: can.BusABC, scenario: Scenario | None = None, notifier: can.Notifier | None = None
    ):
        self.bus = bus
        self.scenario = scenario or Scenario.default()
        self.model = VehicleModel(self.scenario)
        self.ecus = {spec.name: Ecu(spec, self.scenario, self.model) for spec in self.scenario.ecus}
        self.stats: Counter[str] = Counter()
        self._notifier = notifier
        self._own_notifier = notifier is None
        self._runners: list[_EcuRunner] = []
        self._functional: isotp.NotifierBasedCanStack | None = None
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._broadcaster = Broadcaster(bus, self.model) if self.scenario.broadcast else None
        self.running = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        if self._notifier is None or self._own_notifier:
            self._notifier = can.Notifier(self.bus, [], timeout=0.1)
        notifier = self._notifier
        self._runners = []
        for ecu in self.ecus.values():
            address = isotp.Address(
                isotp.AddressingMode.Normal_11bits, txid=ecu.spec.response_id, rxid=ecu.spec.request_id
            )
            stack = self._stack(notifier, address, ecu.spec.name, {})
            self._runners.append(_EcuRunner(ecu, stack, self.bus, self.stats))
        listen_only_tx = self.scenario.ecus[0].response_id  # never used: the stack is listen-only
        functional = isotp.Address(
            isotp.AddressingMode.Normal_11bits, txid=listen_only_tx, rxid=FUNCTIONAL_ID
        )
        self._functional = self._stack(notifier, functional, "functional", {"listen_mode": True})
        for runner in self._runners:
            runner.stack.start()
            self._spawn(runner.stack, [runner], functional=False, name=runner.ecu.spec.name)
        self._functional.start()
        self._spawn(self._functional, self._runners, functional=True, name="functional")
        if self._broadcaster is not None:
            self._broadcaster.start()
        self.running = True
        LOG.info("simulating %s", ", ".join(self.describe()))

    def stop(self) -> None:
        """Stop every thread; the bus stays open (its owner shuts it down)."""
        if not self.running:
            return
        self._stop.set()
        if self._broadcaster is not None:
            self._broadcaster.stop()
        for thread in self._threads:
            thread.join(2.0)
        self._threads = []
        for runner in self._runners:
            runner.stack.stop()
        if self._functional is not None:
            self._functional.stop()
            self._functional = None
        if self._own_notifier and self._notifier is not None:
            self._notifier.stop(timeout=1.0)
            self._notifier = None
        self.running = False

    def __enter__(self) -> Simulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def describe(self) -> list[str]:
        """One line per ECU: name and CAN ids, e.g. ``engine 0x7E0->0x7E8 (OBD)``."""
        return [
            f"{e.name} {e.request_id:#05X}->{e.response_id:#05X}{' (OBD)' if e.obd else ''}".replace(
                "0X", "0x"
            )
            for e in self.scenario.ecus
        ]

    # -- faults and controls ------------------------------------------------------------------------
    def inject(
        self, fault: str, ecu: str | int | None = None, count: int | None = 1, *, requests: int | None = 1
    ) -> None:
        """Inject a fault into one ECU (name or request id) or all of them (``ecu=None``).

        - ``"silence"``: ignore the next ``count`` requests (None: until :meth:`clear_faults`).
        - ``"malformed"``: answer the next ``count`` requests with invalid ISO-TP frames (None: until
          cleared).
        - ``"pending"``: send ``count`` NRC 0x78 (response pending) before each answer, for the next
          ``requests`` requests (None: until cleared).
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; expected one of {FAULTS}")
        if (count is not None and count < 0) or (requests is not None and requests < 0):
            raise ValueError("count and requests must be >= 0 (or None for 'until cleared')")
        times = _FOREVER if count is None else count
        for runner in self._select(ecu):
            with runner.lock:
                if fault == "silence":
                    runner.faults.silence = times
                elif fault == "malformed":
                    runner.faults.malformed = times
                else:
                    if count is None:
                        raise ValueError("pending needs a number of 0x78 responses (count)")
                    runner.faults.pending = count
                    runner.faults.pending_requests = _FOREVER if requests is None else requests

    def clear_faults(self, ecu: str | int | None = None) -> None:
        for runner in self._select(ecu):
            with runner.lock:
                runner.faults = _Faults()

    def _select(self, ecu: str | int | None) -> list[_EcuRunner]:
        if not self._runners:
            raise RuntimeError("start() the simulator before injecting faults")
        if ecu is None:
            return list(self._runners)
        spec = self.scenario.ecu(ecu)
        return [r for r in self._runners if r.ecu.spec is spec]

    def set_speed(self, kmh: float | None) -> None:
        """Hold the vehicle speed (gear D when > 0); ``None`` resumes the drive cycle."""
        self.model.set_speed(kmh)

    def set_gear(self, gear: str | None) -> None:
        self.model.set_gear(gear)

    def set_ignition(self, state: str | None) -> None:
        self.model.set_ignition(state)

    def park(self, parked: bool = True) -> None:
        """Hold the car parked (ignition on, P, 0 km/h) or, with ``False``, resume the drive cycle."""
        self.model.park(parked)

    def state(self) -> VehicleState:
        return self.model.state()

    def ecu(self, name_or_id: str | int) -> Ecu:
        try:
            return self.ecus[self.scenario.ecu(name_or_id).name]
        except ScenarioError as exc:
            raise KeyError(str(exc)) from exc

    # -- internals ----------------------------------------------------------------------------------
    def _stack(
        self, notifier: can.Notifier, address: isotp.Address, name: str, extra: dict[str, Any]
    ) -> isotp.NotifierBasedCanStack:
        def on_error(error: Exception) -> None:
            self.stats["isotp_errors"] += 1
            LOG.debug("%s: ISO-TP error: %s", name, error)

        params = {**_STACK_PARAMS, **extra}
        return isotp.NotifierBasedCanStack(
            self.bus, notifier, address=address, error_handler=on_error, params=params
        )

    def _spawn(
        self, stack: isotp.NotifierBasedCanStack, runners: list[_EcuRunner], functional: bool, name: str
    ) -> None:
        def serve() -> None:
            while not self._stop.is_set():
                data = stack.recv(block=True, timeout=0.1)
                if data is None:
                    continue
                for runner in runners:
                    runner.on_request(bytes(data), functional)

        thread = threading.Thread(target=serve, name=f"sim-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)
