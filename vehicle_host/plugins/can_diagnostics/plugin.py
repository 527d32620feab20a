"""The ``vehicle.*`` plugin: CAN diagnostics (UDS + OBD-II) and vehicle state for mini-apps.

Config (``PluginContext.config``): ``interface`` (python-can interface: socketcan, virtual, vhbus),
``channel`` (can0, ipc://...), ``bitrate``, ``dbc`` (path; default the shipped vehicle.dbc),
``ecus`` (name → {tx, rx}), and optional ``p2_timeout``, ``p2_star_timeout``, ``request_timeout``,
``snapshot_dids`` ({"F4A0": 2}), ``signals`` (DBC signal names).

The blocking service runs in a small thread pool. A socketcan adapter is watched with pyudev: when
it disappears the bus is released and in-flight and later calls fail at once with
``DeviceUnavailable``; when it comes back the plugin binds again. Security access (0x27) and routine
control (0x31) are never exposed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

import can

from vehicle_host.plugins.can_diagnostics import schemas
from vehicle_host.plugins.can_diagnostics.hotplug import HotplugSource, PyudevHotplugSource
from vehicle_host.plugins.can_diagnostics.identifiers import did_number
from vehicle_host.plugins.can_diagnostics.service import DiagnosticsService, EcuRefused, receive_ids_for
from vehicle_host.plugins.can_diagnostics.transport import open_bus, parse_ecus
from vehicle_host.plugins.can_diagnostics.vehicle_state import SignalMap, VehicleStateDecoder, significant
from vehicle_host.plugins.contract import (
    CallContext,
    DeviceUnavailable,
    InvalidArguments,
    Plugin,
    PluginContext,
    PluginError,
    PluginTimeout,
    method,
)

log = logging.getLogger("vehicle_host.can_diagnostics")
T = TypeVar("T")


class VehicleNotParked(PluginError):
    """A parked-only method was called while the vehicle moves (or its state is unknown)."""

    code = "denied"


READ = "vehicle.diagnostics.read"
CLEAR = "vehicle.diagnostics.clear"
SIGNALS = "vehicle.signals"
STATE_PERIOD_S = 0.1  # vehicle state is published at most 10 times a second
DEFAULT_WATCH_HZ = 5.0
MAX_WATCH_HZ = 10.0
FREEZE_PIDS = (0x02, 0x04, 0x05, 0x0C, 0x0D)
MIN_BITRATE = 10_000
MAX_BITRATE = 8_000_000  # CAN FD data phase
MAX_SNAPSHOT_DIDS = 64
MAX_DID_BYTES = 4092  # a UDS answer (ISO-TP) is at most 4095 bytes
REBIND_PERIOD_S = 1.0  # how often a bus that failed under the plugin is tried again
BusFactory = Callable[[set[int]], can.BusABC]


def _number(config: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = config.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidArguments(f"config {key!r} must be a number of seconds") from None
    if not low <= number <= high:
        raise InvalidArguments(f"config {key!r} must be between {low} and {high}")
    return number


def _bitrate(value: Any) -> int | None:
    """The ``bitrate`` setting: bits per second, or None (leave the adapter as configured)."""
    if value is None or value == 0 or value == "":
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not MIN_BITRATE <= value <= MAX_BITRATE:
        raise InvalidArguments(
            f"config 'bitrate' must be bits per second from {MIN_BITRATE} to {MAX_BITRATE}, e.g. 500000"
        )
    return value


def _snapshot_dids(value: Any) -> dict[int, int]:
    """The ``snapshot_dids`` setting: extra snapshot DIDs and their sizes in bytes."""
    if not value:
        return {}
    if not isinstance(value, Mapping) or len(value) > MAX_SNAPSHOT_DIDS:
        raise InvalidArguments(
            f"config 'snapshot_dids' must map at most {MAX_SNAPSHOT_DIDS} DIDs to their sizes in bytes, "
            'e.g. {"F4A0": 2}'
        )
    out: dict[int, int] = {}
    for did, size in value.items():
        if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= MAX_DID_BYTES:
            raise InvalidArguments(
                f"config 'snapshot_dids': the size of {did!r} must be 1 to {MAX_DID_BYTES} bytes"
            )
        out[did_number(did)] = size
    return out


class CanDiagnosticsPlugin(Plugin):
    name = "can_diagnostics"
    version = "1.0.0"

    def __init__(
        self,
        context: PluginContext,
        *,
        hotplug: HotplugSource | None = None,
        bus_factory: BusFactory | None = None,
    ) -> None:
        super().__init__(context)
        cfg = context.config
        self.interface = str(cfg.get("interface", "socketcan"))
        self.channel = str(cfg.get("channel", "can0"))
        self.bitrate = _bitrate(cfg.get("bitrate"))
        self.ecus = parse_ecus(cfg.get("ecus"))
        self.p2 = _number(cfg, "p2_timeout", 1.0, 0.01, 10.0)
        self.p2_star = _number(cfg, "p2_star_timeout", 5.0, 0.05, 30.0)
        self.request_timeout = _number(cfg, "request_timeout", 8.0, 0.05, 60.0)
        self.snapshot_dids = _snapshot_dids(cfg.get("snapshot_dids"))
        self.decoder = VehicleStateDecoder(cfg.get("dbc"), signals=SignalMap.from_config(cfg.get("signals")))
        if hotplug is None and self.interface == "socketcan":
            hotplug = PyudevHotplugSource(watch=[self.channel])
        self.hotplug = hotplug
        self._bus_factory = bus_factory
        self._bus: can.BusABC | None = None
        self._service: DiagnosticsService | None = None
        self._error: str | None = None
        self._removed = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="can-diag")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._bind_lock = asyncio.Lock()
        self._last_state: tuple[Any, ...] | None = None
        self._rebinding: asyncio.Task[None] | None = None
        self._stopping = False  # set by stop(): no task is spawned and no bus bound from then on

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self.hotplug is not None:
            self.hotplug.start(self._hotplug_event)
            if self.hotplug.present(self.channel):
                await self._bind()
            else:
                self._error = f"CAN adapter {self.channel} is not connected"
                await self._publish_adapter()
        else:
            await self._bind()
        self._tasks.append(asyncio.create_task(self._state_loop(), name="vehicle-state"))

    async def stop(self) -> None:
        self._stopping = True
        async with self._bind_lock:
            pass  # a bind under way ends first (its bus is released below): cancelling it would leak it
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.hotplug is not None:
            self.hotplug.stop()
        await self._release("the diagnostics plugin stopped")
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _hotplug_event(self, action: str, ifname: str) -> None:
        """Called from the hotplug thread (or a test): hop onto the plugin's event loop."""
        loop = self._loop
        if loop is None or ifname != self.channel or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._spawn, self._on_hotplug(action))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if self._stopping:
            coro.close()
            return None
        task = asyncio.create_task(coro)
        self._tasks.append(task)
        task.add_done_callback(lambda t: self._tasks.remove(t) if t in self._tasks else None)
        return task

    async def _on_hotplug(self, action: str) -> None:
        if action == "remove":
            log.warning("CAN adapter %s disconnected", self.channel)
            await self._release(f"CAN adapter {self.channel} disconnected")
        elif action in ("add", "change") and self._service is None:
            log.info("CAN adapter %s connected", self.channel)
            await self._bind()

    def _open(self) -> tuple[can.BusABC, DiagnosticsService]:
        ids = receive_ids_for(self.ecus) | self.decoder.frame_ids
        if self._bus_factory is not None:
            bus = self._bus_factory(ids)
        else:
            bus = open_bus(self.interface, self.channel, bitrate=self.bitrate, receive_ids=ids)
        try:
            service = DiagnosticsService(
                bus,
                ecus=self.ecus,
                p2_timeout=self.p2,
                p2_star_timeout=self.p2_star,
                request_timeout=self.request_timeout,
                adapter=self.channel,
                snapshot_dids=self.snapshot_dids,
                on_bus_gone=self._bus_gone,
            )
            service.notifier.add_listener(self.decoder)
        except Exception:
            bus.shutdown()
            raise
        return bus, service

    def _bus_gone(self, reason: str) -> None:
        """Called from the notifier's thread when the bus failed under the service."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._spawn, self._on_bus_gone(reason))

    async def _on_bus_gone(self, reason: str) -> None:
        async with self._bind_lock:  # a bus failing while it is bound: the bind assigns its service first
            if self._service is None or not self._service.closed:
                return  # already released, or a newer service is bound
            await self._release(reason)
        if self._rebinding is None or self._rebinding.done():
            self._rebinding = self._spawn(self._rebind_loop())

    async def _rebind_loop(self) -> None:
        """Try the adapter again until it is back (or a hotplug event bound it first)."""
        while self._service is None and not self._stopping:
            await asyncio.sleep(REBIND_PERIOD_S)
            if self.hotplug is None or self.hotplug.present(self.channel):
                await self._bind()

    async def _bind(self) -> None:
        async with self._bind_lock:
            if self._service is not None or self._stopping:
                return
            loop = asyncio.get_running_loop()
            before = self.adapter_status()
            try:
                self._bus, self._service = await loop.run_in_executor(self._executor, self._open)
                self._error = None
                self._removed = asyncio.Event()
            except (PluginError, can.CanError, OSError) as exc:
                self._error = str(exc)
                log.warning("cannot bind CAN adapter %s: %s", self.channel, exc)
            if self.adapter_status() != before or self._service is not None:
                await self._publish_adapter()

    async def _release(self, reason: str) -> None:
        service, bus = self._service, self._bus
        self._service, self._bus = None, None
        self._error = reason
        self._removed.set()  # in-flight calls fail now, not when their ECU times out
        if service is not None:
            service.fail(reason)
        await self._publish_adapter()
        if service is not None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, self._close, service, bus, reason)

    @staticmethod
    def _close(service: DiagnosticsService, bus: can.BusABC | None, reason: str) -> None:
        service.close(reason)
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.shutdown()

    def adapter_status(self) -> dict[str, Any]:
        return {
            "present": self._service is not None,
            "interface": self.interface,
            "channel": self.channel,
            "error": self._error,
        }

    async def _publish_adapter(self) -> None:
        try:
            await self.context.publish_state("can.adapter", self.adapter_status())
        except Exception:
            log.exception("publishing the adapter state failed")

    async def _state_loop(self) -> None:
        while True:
            state = self.decoder.snapshot()
            key = significant(state)
            if key != self._last_state:
                self._last_state = key
                try:
                    await self.context.publish_state("vehicle", state)
                except Exception:
                    log.exception("publishing the vehicle state failed")
            await asyncio.sleep(STATE_PERIOD_S)

    # -- calling the blocking service ------------------------------------------------------------

    async def _call(self, fn: Callable[[DiagnosticsService], T]) -> T:
        if self._service is None and self.hotplug is None:
            await self._bind()  # a bus without hotplug (virtual, vhbus) may come up later
        service = self._service
        if service is None:
            raise DeviceUnavailable(self._error or f"CAN adapter {self.channel} is not connected")
        removed = self._removed
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, fn, service)
        waiter: asyncio.Future[Any] = asyncio.ensure_future(removed.wait())
        racing: set[asyncio.Future[Any]] = {future, waiter}
        try:
            done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if future in done:
            return future.result()
        future.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)
        raise DeviceUnavailable(self._error or f"CAN adapter {self.channel} disconnected")

    def _require_parked(self, what: str) -> None:
        """The gateway already refuses parked-only calls while moving; the plugin checks again on the
        state it decodes itself, so no path around the gateway can clear codes at speed."""
        state = self.decoder.snapshot()
        if state["parked"] is not True:
            speed = state.get("speed_kmh")
            if state.get("stale"):
                why = "the vehicle state is unknown (no recent speed and gear frames)"
            else:
                why = f"the vehicle is not parked (speed {speed} km/h, gear {state.get('gear')})"
            raise VehicleNotParked(
                f"{what} refused: {why}. Stop the vehicle and engage park, then try again."
            )

    def _ecu(self, args: Mapping[str, Any], default: str = "engine") -> str:
        names = [e.name for e in self.ecus]
        ecu = str(args.get("ecu") or (default if default in names else names[0]))
        if ecu not in names:
            raise InvalidArguments(f"unknown ECU {ecu!r}: known ECUs are {', '.join(names)}")
        return ecu

    # -- methods ---------------------------------------------------------------------------------

    @method(
        "vehicle.scanEcus", permission=READ, args=schemas.NO_ARGS, result=schemas.SCAN_RESULT, timeout_s=20
    )
    async def scan_ecus(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Find which ECUs answer (UDS TesterPresent per address, OBD-II 01 00 to 0x7DF)."""
        return {"ecus": await self._call(lambda s: s.scan())}

    @method("vehicle.readVin", permission=READ, args=schemas.READ_VIN_ARGS, result=schemas.READ_VIN_RESULT)
    async def read_vin(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Read the VIN (UDS 22 F190, or OBD-II 09 02 when UDS is refused)."""
        ecu = self._ecu(args)
        source = args.get("source", "auto")
        if source in ("auto", "uds"):
            try:
                return {"vin": await self._call(lambda s: s.read_vin(ecu)), "ecu": ecu, "source": "uds"}
            except EcuRefused:
                if source == "uds":
                    raise
        info = await self._call(lambda s: s.obd_vehicle_info(ecu))
        return {"vin": info["vin"], "ecu": ecu, "source": "obd"}

    @method("vehicle.readDids", permission=READ, args=schemas.READ_DIDS_ARGS, result=schemas.READ_DIDS_RESULT)
    async def read_dids(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Read standard identification DIDs (F187, F189, F18C, F197, ...)."""
        ecu = self._ecu(args)
        dids = [did_number(d) for d in args["dids"]]
        return {"ecu": ecu, "dids": await self._call(lambda s: s.read_dids(ecu, dids))}

    @method(
        "vehicle.readDtcs",
        permission=READ,
        args=schemas.READ_DTCS_ARGS,
        result=schemas.READ_DTCS_RESULT,
        timeout_s=30,
    )
    async def read_dtcs(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Read DTCs (UDS 19 02) with descriptions; every ECU when ``ecu`` is omitted."""
        mask = int(args.get("statusMask", 0xFF))
        snapshots = bool(args.get("withSnapshots", False))
        targets = [self._ecu(args)] if args.get("ecu") else [e.name for e in self.ecus]
        dtcs: list[dict[str, Any]] = []
        errors: dict[str, str] = {}
        for ecu in targets:
            try:
                found = await self._call(
                    partial(DiagnosticsService.read_dtcs, ecu=ecu, status_mask=mask, with_snapshots=snapshots)
                )
            except DeviceUnavailable:
                raise
            except PluginError as exc:
                if len(targets) == 1:
                    raise
                errors[ecu] = str(exc)
                continue
            dtcs.extend({"ecu": ecu, **item} for item in found)
        return {"dtcs": dtcs, "errors": errors}

    @method(
        "vehicle.readFreezeFrame", permission=READ, args=schemas.FREEZE_ARGS, result=schemas.FREEZE_RESULT
    )
    async def read_freeze_frame(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """A DTC's snapshot records (UDS 19 04) or, without ``dtc``, the OBD-II mode 02 freeze frame."""
        ecu = self._ecu(args)
        code = args.get("dtc")
        if code:
            records = await self._call(lambda s: s.read_snapshot(ecu, str(code)))
            return {"ecu": ecu, "source": "uds", "dtc": str(code).upper(), "records": records}
        pids = args.get("pids") or FREEZE_PIDS
        frame = int(args.get("frame", 0))
        result = await self._call(lambda s: s.read_freeze_frame(pids, ecu, frame))
        trigger = result["values"].get("dtc", {}).get("value")
        return {"ecu": ecu, "source": "obd", "dtc": trigger, **result}

    @method(
        "vehicle.clearDtcs",
        permission=CLEAR,
        consent=True,
        driving="parked_only",
        args=schemas.CLEAR_ARGS,
        result=schemas.CLEAR_RESULT,
        timeout_s=30,
    )
    async def clear_dtcs(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Clear DTCs (UDS 14) on one ECU, or every ECU when ``ecu`` is omitted. Parked only."""
        self._require_parked("vehicle.clearDtcs")
        group = int(args.get("group", 0xFFFFFF))
        targets = [self._ecu(args)] if args.get("ecu") else [e.name for e in self.ecus]
        cleared: list[str] = []
        errors: dict[str, str] = {}
        for ecu in targets:
            try:
                await self._call(partial(DiagnosticsService.clear_dtcs, ecu=ecu, group=group))
                cleared.append(ecu)
            except DeviceUnavailable:
                raise
            except PluginError as exc:
                if len(targets) == 1:
                    raise
                errors[ecu] = str(exc)
        return {"cleared": cleared, "errors": errors}

    @method("vehicle.readPids", permission=READ, args=schemas.READ_PIDS_ARGS, result=schemas.READ_PIDS_RESULT)
    async def read_pids(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Read live OBD-II values (mode 01): rpm, speed, coolantTemp, ... or hex PIDs."""
        ecu = self._ecu(args)
        pids = list(args["pids"])
        return {"ecu": ecu, "values": await self._call(lambda s: s.read_pids(pids, ecu))}

    @method(
        "vehicle.watchPids",
        permission=SIGNALS,
        streams=True,
        args=schemas.WATCH_PIDS_ARGS,
        result=schemas.WATCH_PIDS_EVENT,
        rate_hz=MAX_WATCH_HZ,
    )
    async def watch_pids(self, args: dict[str, Any], call: CallContext) -> AsyncIterator[dict[str, Any]]:
        """Stream live OBD-II values at ``rateHz`` (default 5, at most 10) until cancelled."""
        ecu = self._ecu(args)
        pids = list(args["pids"])
        rate = min(float(args.get("rateHz", DEFAULT_WATCH_HZ)), MAX_WATCH_HZ)
        if rate <= 0:
            raise InvalidArguments("rateHz must be above 0")
        period = 1.0 / rate
        next_at = time.monotonic()
        while True:
            try:
                values = await self._call(lambda s: s.read_pids(pids, ecu))
                event: dict[str, Any] = {"ecu": ecu, "values": values, "t": time.time()}
            except (DeviceUnavailable, InvalidArguments):
                raise
            except (PluginTimeout, PluginError) as exc:  # a glitch: report it and keep streaming
                event = {"ecu": ecu, "error": str(exc), "t": time.time()}
            yield event
            next_at = max(next_at + period, time.monotonic())
            await asyncio.sleep(next_at - time.monotonic())

    @method("vehicle.getState", permission=SIGNALS, args=schemas.NO_ARGS, result=schemas.STATE_RESULT)
    async def get_state(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Speed, gear, ignition and whether the vehicle is parked (from the DBC broadcasts)."""
        return self.decoder.snapshot()

    @method("vehicle.adapterStatus", permission=READ, args=schemas.NO_ARGS, result=schemas.ADAPTER_RESULT)
    async def adapter_status_method(self, args: dict[str, Any], call: CallContext) -> dict[str, Any]:
        """Whether the CAN adapter is connected, and the configured ECUs."""
        return {**self.adapter_status(), "ecus": [e.to_json() for e in self.ecus]}
