"""DiagnosticsService: UDS (udsoncan) and OBD-II requests to the vehicle's ECUs, synchronously.

Every method blocks for at most the configured timeouts and either returns plain JSON-able data or
raises a :class:`~vehicle_host.plugins.contract.PluginError` subclass: ``PluginTimeout`` when an ECU
stays silent, ``EcuRefused`` for a negative response, ``MalformedAnswer`` for garbage, and
``DeviceUnavailable`` once the adapter is gone. Calls to different ECUs may run in parallel threads;
calls to one ECU are serialised. Security access (0x27) and routine control (0x31) are not offered.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import can
from udsoncan.exceptions import (
    ConfigError,
    InvalidResponseException,
    NegativeResponseException,
    TimeoutException,
    UnexpectedResponseException,
)
from udsoncan.services.DiagnosticSessionControl import DiagnosticSessionControl

from vehicle_host.plugins.can_diagnostics import dtc, identifiers, obd
from vehicle_host.plugins.can_diagnostics.transport import (
    DEFAULT_ECUS,
    OBD_FUNCTIONAL_ID,
    OBD_RESPONSE_IDS,
    EcuAddress,
    EcuLink,
    FunctionalSender,
    ResponderListener,
    Timing,
)
from vehicle_host.plugins.contract import DeviceUnavailable, InvalidArguments, PluginError, PluginTimeout

log = logging.getLogger("vehicle_host.can_diagnostics")
T = TypeVar("T")

SESSIONS = {"default": DiagnosticSessionControl.Session.defaultSession, "extended": 0x03}
MAX_PIDS_PER_CALL = 16
OBD_DTC_MODES = {
    "stored": obd.MODE_STORED_DTCS,
    "pending": obd.MODE_PENDING_DTCS,
    "permanent": obd.MODE_PERMANENT_DTCS,
}


class EcuRefused(PluginError):
    """The ECU answered with a negative response code."""

    def __init__(self, message: str, nrc: int) -> None:
        super().__init__(message)
        self.nrc = nrc


class MalformedAnswer(PluginError):
    """The ECU answered something that is not a valid answer to the request."""


class BusWatch(can.Listener):
    """Tells the service once when the bus fails under the notifier (adapter unplugged, channel
    closed, interface down); python-can's notifier keeps calling ``recv`` until it is stopped."""

    def __init__(self, on_gone: Callable[[Exception], None]) -> None:
        self._on_gone = on_gone
        self._reported = False

    def on_message_received(self, msg: can.Message) -> None:
        return None

    def on_error(self, exc: Exception) -> None:
        if self._reported:
            time.sleep(0.05)  # do not spin on a dead bus until the service closes the notifier
            return
        self._reported = True
        self._on_gone(exc)


class DiagnosticsService:
    """Diagnostics over ``bus`` (which the caller owns and closes after :meth:`close`).

    ``on_bus_gone(reason)`` is called (from the notifier's thread) when the bus fails under the
    service; from then on every call raises ``DeviceUnavailable(reason)`` at once."""

    def __init__(
        self,
        bus: can.BusABC,
        *,
        ecus: Sequence[EcuAddress] = DEFAULT_ECUS,
        p2_timeout: float = 1.0,
        p2_star_timeout: float = 5.0,
        request_timeout: float = 8.0,
        adapter: str = "",
        snapshot_dids: Mapping[int, int] | None = None,
        keepalive_interval: float = 2.0,
        notifier: can.Notifier | None = None,
        on_bus_gone: Callable[[str], None] | None = None,
    ) -> None:
        if not ecus:
            raise InvalidArguments("at least one ECU address is needed")
        self.adapter = adapter or str(getattr(bus, "channel_info", "CAN adapter"))
        self.timing = Timing(p2=p2_timeout, p2_star=p2_star_timeout, request=request_timeout)
        self._closed_reason: str | None = None
        self._links_closed = False
        self._keepalive_interval = keepalive_interval
        self._keepalive: threading.Thread | None = None
        self._stop = threading.Event()
        self._on_bus_gone = on_bus_gone
        # the watch listens from the notifier's first receive: an error before it is registered would
        # end the notifier's thread unnoticed (python-can re-raises errors no listener handles)
        watch = BusWatch(self._bus_failed)
        self._own_notifier = notifier is None
        if notifier is None:
            self.notifier = can.Notifier(bus, [watch], timeout=0.05)
        else:
            self.notifier = notifier
            notifier.add_listener(watch)
        uds_config: dict[str, Any] = {
            "data_identifiers": {
                **identifiers.reading_codecs(),
                **identifiers.snapshot_codecs(snapshot_dids),
            },
        }
        self._links: dict[str, EcuLink] = {}
        try:
            for ecu in ecus:
                self._links[ecu.name] = EcuLink(bus, self.notifier, ecu, self.timing, uds_config)
            self._functional = FunctionalSender(bus, self.notifier)
            self._responders = ResponderListener()
            self.notifier.add_listener(self._responders)
        except Exception:
            self.close()
            raise

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def ecus(self) -> list[EcuAddress]:
        return [link.ecu for link in self._links.values()]

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    def fail(self, reason: str) -> None:
        """Make every call from now on raise ``DeviceUnavailable(reason)`` without blocking."""
        if self._closed_reason is None:
            self._closed_reason = reason
        self._stop.set()

    def _bus_failed(self, exc: Exception) -> None:
        reason = (
            f"CAN adapter {self.adapter} is gone ({exc}); check it is plugged in and up. "
            "The plugin reconnects by itself when it is back"
        )
        log.warning("%s", reason)
        self.fail(reason)
        if self._on_bus_gone is not None:
            self._on_bus_gone(reason)

    def close(self, reason: str = "") -> None:
        """Stop every stack; later calls raise ``DeviceUnavailable(reason)``."""
        if self._links_closed:
            return
        self._links_closed = True
        self.fail(reason or f"CAN adapter {self.adapter} was released")
        for link in self._links.values():
            link.close()
        functional = getattr(self, "_functional", None)
        if functional is not None:
            functional.close()
        if self._own_notifier:
            with contextlib.suppress(Exception):
                self.notifier.stop(timeout=1.0)

    def __enter__(self) -> DiagnosticsService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed_reason is not None:
            raise DeviceUnavailable(self._closed_reason)

    def _link(self, ecu: str) -> EcuLink:
        self._check_open()
        link = self._links.get(ecu)
        if link is None:
            known = ", ".join(self._links)
            raise InvalidArguments(f"unknown ECU {ecu!r}: known ECUs are {known}")
        return link

    # -- error conversion ------------------------------------------------------------------------

    def _run(self, link: EcuLink, what: str, fn: Callable[[EcuLink], T]) -> T:
        with link.lock:
            self._check_open()
            try:
                return fn(link)
            except PluginError:
                if self._closed_reason is not None:
                    raise DeviceUnavailable(self._closed_reason) from None
                raise
            except NegativeResponseException as exc:
                code = exc.response.code or 0
                raise EcuRefused(
                    f"ECU {link.ecu.name} refused {what}: {exc.response.code_name} (NRC 0x{code:02X})", code
                ) from None
            except TimeoutException:
                self._check_open()
                raise PluginTimeout(
                    f"ECU {link.ecu.name} (0x{link.ecu.tx:03X}) did not answer {what} in time. "
                    "Check the ignition is on and the ECU address is right"
                ) from None
            except (InvalidResponseException, UnexpectedResponseException) as exc:
                raise MalformedAnswer(
                    f"ECU {link.ecu.name} sent a malformed answer to {what}: {exc}"
                ) from None
            except ConfigError as exc:
                raise MalformedAnswer(
                    f"ECU {link.ecu.name} answered {what} with a data identifier this host cannot decode "
                    f"({exc}); add its size to the plugin config 'snapshot_dids'"
                ) from None
            except (can.CanError, OSError) as exc:
                raise DeviceUnavailable(f"CAN adapter {self.adapter} failed: {exc}") from None
            except Exception as exc:
                self._check_open()
                log.exception("unexpected failure during %s on %s", what, link.ecu.name)
                raise MalformedAnswer(
                    f"ECU {link.ecu.name}: {what} failed on an unexpected answer ({exc})"
                ) from None

    # -- UDS -------------------------------------------------------------------------------------

    def tester_present(self, ecu: str) -> bool:
        self._run(self._link(ecu), "TesterPresent", lambda link: link.client.tester_present())
        return True

    def set_session(self, ecu: str, session: str) -> str:
        """Switch to ``default`` or ``extended`` session; non-default sessions are kept alive."""
        if session not in SESSIONS:
            raise InvalidArguments(f"session must be one of {', '.join(SESSIONS)}")
        link = self._link(ecu)
        self._run(link, "DiagnosticSessionControl", lambda lk: lk.client.change_session(SESSIONS[session]))
        link.session = session
        if session != "default":
            self._ensure_keepalive()
        return session

    def _ensure_keepalive(self) -> None:
        if self._keepalive is None or not self._keepalive.is_alive():
            self._keepalive = threading.Thread(target=self._keepalive_loop, name="uds-keepalive", daemon=True)
            self._keepalive.start()

    def _keepalive_loop(self) -> None:
        while not self._stop.wait(self._keepalive_interval):
            active = [link for link in self._links.values() if link.session != "default"]
            if not active:
                return
            for link in active:
                if not link.lock.acquire(timeout=0.2):
                    continue  # a request is in flight, which keeps the session alive by itself
                try:
                    with link.client.suppress_positive_response(wait_nrc=False):
                        link.client.tester_present()
                except Exception as exc:
                    log.info("keep-alive to %s failed (%s); session back to default", link.ecu.name, exc)
                    link.session = "default"
                finally:
                    link.lock.release()

    def read_dids(self, ecu: str, dids: Iterable[int | str]) -> dict[str, dict[str, Any]]:
        """Read identifiers one request each; returns ``{"F18C": {name, value}}``; a refused DID
        has ``error`` instead of ``value``."""
        numbers = [identifiers.did_number(d) for d in dids]
        if not 1 <= len(numbers) <= identifiers.MAX_DIDS_PER_CALL:
            raise InvalidArguments(f"give 1..{identifiers.MAX_DIDS_PER_CALL} DIDs")
        link = self._link(ecu)
        out: dict[str, dict[str, Any]] = {}
        for did in numbers:
            entry: dict[str, Any] = {"did": did, "name": identifiers.STANDARD_DIDS.get(did, f"DID {did:04X}")}
            try:
                response = self._run(
                    link,
                    f"ReadDataByIdentifier {did:04X}",
                    lambda lk: lk.client.read_data_by_identifier(did),  # noqa: B023 - called at once
                )
                entry["value"] = _data(response).values[did]
            except EcuRefused as exc:
                entry["error"] = str(exc)
                entry["nrc"] = exc.nrc
            out[f"{did:04X}"] = entry
        return out

    def read_vin(self, ecu: str = "engine") -> str:
        link = self._link(ecu)
        response = self._run(
            link,
            "ReadDataByIdentifier F190 (VIN)",
            lambda lk: lk.client.read_data_by_identifier(identifiers.VIN_DID),
        )
        vin = str(_data(response).values[identifiers.VIN_DID])
        if len(vin) != obd.VIN_LENGTH or not vin.isalnum():
            raise MalformedAnswer(f"ECU {ecu} sent a malformed VIN {vin!r} (expected 17 letters and digits)")
        return vin

    def read_dtcs(
        self, ecu: str, status_mask: int = 0xFF, *, with_snapshots: bool = False
    ) -> list[dict[str, Any]]:
        """ReadDTCInformation 0x19 02: DTCs matching ``status_mask``, decoded, with descriptions."""
        if not 0 <= status_mask <= 0xFF:
            raise InvalidArguments("statusMask must be 0..255")
        link = self._link(ecu)
        response = self._run(
            link, "ReadDTCInformation 19 02", lambda lk: lk.client.get_dtc_by_status_mask(status_mask)
        )
        out = [dtc.uds_dtc_info(item.id, item.status.get_byte_as_int()) for item in _data(response).dtcs]
        if with_snapshots:
            for entry in out:
                try:
                    entry["snapshots"] = self.read_snapshot(ecu, entry["id"])
                except (EcuRefused, MalformedAnswer) as exc:
                    entry["snapshots"] = []
                    entry["snapshotError"] = str(exc)
        return out

    def read_snapshot(self, ecu: str, code: str | int, record: int = 0xFF) -> list[dict[str, Any]]:
        """ReadDTCInformation 0x19 04: the snapshot (freeze frame) records stored with one DTC."""
        dtc_id = dtc.parse_uds_dtc(code)
        if not 0 <= record <= 0xFF:
            raise InvalidArguments("snapshot record number must be 0..255")
        link = self._link(ecu)
        response = self._run(
            link,
            f"ReadDTCInformation 19 04 for {dtc_id:06X}",
            lambda lk: lk.client.get_dtc_snapshot_by_dtc_number(dtc_id, record_number=record),
        )
        records: dict[int, dict[str, Any]] = {}
        for item in _data(response).dtcs:
            for snap in item.snapshots:
                rec = records.setdefault(snap.record_number, {"record": snap.record_number, "values": []})
                value = snap.data
                if snap.did == 0xF402 and isinstance(value, str) and len(value) == 4:
                    value = dtc.code_from_int(int(value, 16))
                rec["values"].append({"did": f"{snap.did:04X}", "value": value})
        return list(records.values())

    def clear_dtcs(self, ecu: str, group: int = 0xFFFFFF) -> bool:
        if not 0 <= group <= 0xFFFFFF:
            raise InvalidArguments("group must be 0..0xFFFFFF (0xFFFFFF = all DTCs)")
        self._run(self._link(ecu), "ClearDiagnosticInformation", lambda lk: lk.client.clear_dtc(group))
        return True

    # -- OBD-II ----------------------------------------------------------------------------------

    def _obd(self, ecu: str, payload: bytes, what: str) -> bytes:
        answer = self._run(self._link(ecu), what, lambda lk: lk.request_raw(payload, what))
        try:
            obd.check_negative(answer, payload[0])
        except PluginError as exc:
            raise EcuRefused(f"ECU {ecu}: {exc}", answer[2] if len(answer) > 2 else 0) from None
        return answer

    def read_pids(self, pids: Iterable[int | str], ecu: str = "engine") -> dict[str, dict[str, Any]]:
        """OBD-II mode 01 (current data), one request per PID; keyed by PID key (or hex)."""
        numbers = [obd.pid_number(p) for p in pids]
        if not 1 <= len(numbers) <= MAX_PIDS_PER_CALL:
            raise InvalidArguments(f"give 1..{MAX_PIDS_PER_CALL} PIDs")
        out: dict[str, dict[str, Any]] = {}
        for pid in numbers:
            answer = self._obd(ecu, obd.request_current(pid), f"OBD-II 01 {pid:02X}")
            value = self._parse(ecu, obd.parse_current, answer, pid)
            out[str(value.get("key", f"{pid:02X}"))] = value
        return out

    def supported_pids(self, ecu: str = "engine") -> list[int]:
        """Walk the mode 01 support bitmaps (00, 20, 40, ...) while each says the next exists."""
        supported: list[int] = []
        for base in obd.SUPPORT_PIDS:
            answer = self._obd(ecu, obd.request_current(base), f"OBD-II 01 {base:02X}")
            found = self._parse(ecu, obd.parse_current, answer, base)["supported"]
            supported.extend(p for p in found if p % 0x20)
            if base + 0x20 not in found:
                break
        return supported

    def read_freeze_frame(
        self, pids: Iterable[int | str] = (0x02,), ecu: str = "engine", frame: int = 0
    ) -> dict[str, Any]:
        """OBD-II mode 02: the freeze frame values (PID 02 is the DTC that stored it)."""
        numbers = [obd.pid_number(p) for p in pids]
        if not 1 <= len(numbers) <= MAX_PIDS_PER_CALL or not 0 <= frame <= 0xFF:
            raise InvalidArguments(f"give 1..{MAX_PIDS_PER_CALL} PIDs and a frame number 0..255")
        values: dict[str, Any] = {}
        for pid in numbers:
            answer = self._obd(ecu, obd.request_freeze_frame(pid, frame), f"OBD-II 02 {pid:02X}")
            value = self._parse(ecu, obd.parse_freeze_frame, answer, pid, frame)
            values[str(value.get("key", f"{pid:02X}"))] = value
        return {"frame": frame, "values": values}

    def obd_dtcs(self, kind: str = "stored", ecu: str = "engine") -> list[dict[str, Any]]:
        """OBD-II mode 03 (stored), 07 (pending) or 0A (permanent) DTCs with descriptions."""
        mode = OBD_DTC_MODES.get(kind)
        if mode is None:
            raise InvalidArguments(f"kind must be one of {', '.join(OBD_DTC_MODES)}")
        answer = self._obd(ecu, bytes((mode,)), f"OBD-II mode {mode:02X}")
        codes = self._parse(ecu, lambda: obd.parse_dtc_list(answer, mode))
        return [dtc.obd_dtc_info(code) for code in codes]

    def obd_clear(self, ecu: str = "engine") -> bool:
        answer = self._obd(ecu, bytes((obd.MODE_CLEAR_DTCS,)), "OBD-II mode 04")
        self._parse(ecu, lambda: obd.parse_clear(answer))
        return True

    def obd_vehicle_info(self, ecu: str = "engine") -> dict[str, str]:
        """OBD-II mode 09: VIN (PID 02) and ECU name (PID 0A, when supported)."""
        out: dict[str, str] = {}
        answer = self._obd(ecu, bytes((obd.MODE_VEHICLE_INFO, 0x02)), "OBD-II 09 02")
        out["vin"] = self._parse(ecu, lambda: obd.parse_vehicle_info_text(answer, 0x02))
        with contextlib.suppress(EcuRefused):
            answer = self._obd(ecu, bytes((obd.MODE_VEHICLE_INFO, 0x0A)), "OBD-II 09 0A")
            out["ecuName"] = self._parse(ecu, lambda: obd.parse_vehicle_info_text(answer, 0x0A))
        return out

    def _parse(self, ecu: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return fn(*args)
        except obd.ObdResponseError as exc:
            raise MalformedAnswer(f"ECU {ecu}: {exc}") from None
        except (IndexError, ValueError) as exc:
            raise MalformedAnswer(f"ECU {ecu} sent a malformed OBD-II answer ({exc})") from None

    # -- discovery -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _all_locks(self) -> Iterator[None]:
        taken: list[threading.Lock] = []
        try:
            for link in self._links.values():
                link.lock.acquire()
                taken.append(link.lock)
            yield
        finally:
            for lock in reversed(taken):
                lock.release()

    def obd_functional(self, payload: bytes) -> tuple[dict[str, bytes], set[int]]:
        """Send ``payload`` to 0x7DF; collect answers from known ECUs for P2 and the answer ids seen."""
        self._check_open()
        if len(payload) > 7:
            raise InvalidArguments("a functional OBD-II request must fit one CAN frame (7 bytes)")
        answers: dict[str, bytes] = {}
        with self._all_locks():
            self._check_open()
            for link in self._links.values():
                link.conn.empty_rxqueue()
            self._responders.arm()
            try:
                self._functional.send(payload)
            except (can.CanError, OSError) as exc:
                self._responders.disarm()
                raise DeviceUnavailable(f"CAN adapter {self.adapter} failed: {exc}") from None
            deadline = time.monotonic() + self.timing.p2
            for link in self._links.values():
                with contextlib.suppress(PluginTimeout):
                    answers[link.ecu.name] = link.wait_answer(payload[0], "a functional request", deadline)
            seen = self._responders.disarm()
        self._check_open()
        return answers, seen

    def scan(self) -> list[dict[str, Any]]:
        """Which ECUs answer: UDS TesterPresent per known address, then OBD 01 00 to 0x7DF."""
        results: dict[str, dict[str, Any]] = {}
        for link in self._links.values():
            entry: dict[str, Any] = {**link.ecu.to_json(), "uds": False, "obd": False}
            try:
                self._run(link, "TesterPresent", lambda lk: lk.client.tester_present())
                entry["uds"] = True
            except EcuRefused as exc:  # an answer, even negative, means the ECU is there
                entry["uds"] = True
                entry["udsNrc"] = exc.nrc
            except (PluginTimeout, MalformedAnswer) as exc:
                entry["udsError"] = str(exc)
            results[link.ecu.name] = entry
        answers, seen = self.obd_functional(obd.request_current(0x00))
        for name, answer in answers.items():
            try:
                found = obd.parse_current(answer, 0x00)["supported"]
                results[name]["obdSupportedPids"] = [p for p in found if p % 0x20]
                results[name]["obd"] = True
            except PluginError as exc:
                results[name]["obdError"] = str(exc)
        known = {link.ecu.rx for link in self._links.values()}
        for rx in sorted(seen - known):
            results[f"obd-0x{rx:03X}"] = {
                "name": f"obd-0x{rx:03X}",
                "tx": f"0x{rx - 8:03X}",
                "rx": f"0x{rx:03X}",
                "uds": False,
                "obd": True,
                "unconfigured": True,
            }
        for entry in results.values():
            entry["present"] = bool(entry["uds"] or entry["obd"])
        return list(results.values())

    def receive_ids(self) -> set[int]:
        """CAN ids this service must receive (for kernel filters)."""
        ids = {link.ecu.rx for link in self._links.values()}
        ids.update(OBD_RESPONSE_IDS)
        ids.discard(OBD_FUNCTIONAL_ID)
        return ids


def _data(response: Any) -> Any:
    """The decoded service data of a udsoncan answer (None only when a reply was suppressed)."""
    if response is None or getattr(response, "service_data", None) is None:
        raise MalformedAnswer("the ECU gave no decodable answer")
    return response.service_data


def receive_ids_for(ecus: Iterable[EcuAddress]) -> set[int]:
    """Answer ids for a set of ECUs plus every OBD responder id."""
    return {e.rx for e in ecus} | set(OBD_RESPONSE_IDS)
