"""DiagnosticsService against the ECU simulator on a python-can ``virtual`` bus (one process)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import can
import isotp
import pytest

from vehicle_host.plugins.can_diagnostics.service import DiagnosticsService, EcuRefused, MalformedAnswer
from vehicle_host.plugins.can_diagnostics.transport import EcuAddress
from vehicle_host.plugins.contract import DeviceUnavailable, InvalidArguments, PluginTimeout
from vehicle_host.simulator import Simulator


@pytest.fixture
def service(channel: str, sim: Simulator) -> Iterator[DiagnosticsService]:
    bus = can.Bus(interface="virtual", channel=channel)
    svc = DiagnosticsService(
        bus, p2_timeout=0.3, p2_star_timeout=0.5, request_timeout=1.5, keepalive_interval=0.1
    )
    yield svc
    svc.close()
    bus.shutdown()


def test_read_vin_and_identification_dids(service: DiagnosticsService, sim: Simulator) -> None:
    assert service.read_vin("engine") == sim.scenario.vin
    dids = service.read_dids("engine", ["F18C", "F187", 0xF189, "systemNameOrEngineType"])
    spec = sim.scenario.ecu("engine")
    assert dids["F18C"]["value"] == spec.serial
    assert dids["F187"]["value"] == spec.part_number
    assert dids["F189"]["value"] == spec.software_version
    assert dids["F197"]["value"] == spec.system_name
    assert dids["F18C"]["name"] == "ecuSerialNumber"


def test_unsupported_did_is_reported_per_did(service: DiagnosticsService) -> None:
    dids = service.read_dids("engine", ["F18C", "1234"])
    assert "value" in dids["F18C"]
    assert dids["1234"]["nrc"] == 0x31 and "refused" in dids["1234"]["error"]


def test_read_dtcs_decodes_codes_status_and_snapshots(service: DiagnosticsService, sim: Simulator) -> None:
    engine = {d["code"]: d for d in service.read_dtcs("engine", 0xFF, with_snapshots=True)}
    assert set(engine) == {d.code for d in sim.scenario.ecu("engine").dtcs}
    assert (
        engine["P0301"]["statusBits"]["confirmedDTC"]
        and engine["P0301"]["statusBits"]["warningIndicatorRequested"]
    )
    assert engine["P0171"]["statusBits"]["pendingDTC"] and not engine["P0171"]["statusBits"]["confirmedDTC"]
    assert engine["P0301"]["description"] == "Cylinder 1 Misfire Detected"
    record = engine["P0301"]["snapshots"][0]
    values = {v["did"]: v["value"]["value"] for v in record["values"]}
    assert values == {"F40C": 2150.0, "F40D": 62, "F405": 88, "F404": pytest.approx(47.06)}
    abs_codes = {d["dtc"] for d in service.read_dtcs("abs")}
    assert abs_codes == {"C0035-1C", "U0100-00"}
    confirmed_only = service.read_dtcs("engine", 0x04)  # pendingDTC
    assert [d["code"] for d in confirmed_only] == ["P0171"]


def test_clear_dtcs_empties_uds_and_obd_memory(service: DiagnosticsService) -> None:
    assert service.read_dtcs("transmission")
    assert service.clear_dtcs("transmission") is True
    assert service.read_dtcs("transmission") == []
    assert service.obd_dtcs("stored", "transmission") == []
    assert service.read_dtcs("engine")  # other ECUs untouched


def test_scan_finds_every_simulated_ecu(service: DiagnosticsService) -> None:
    found = {e["name"]: e for e in service.scan()}
    assert found["engine"]["present"] and found["engine"]["uds"] and found["engine"]["obd"]
    assert 0x0C in found["engine"]["obdSupportedPids"]
    assert found["transmission"]["obd"]
    assert found["abs"]["uds"] and not found["abs"]["obd"]  # the ABS module answers UDS only


def test_scan_reports_silent_and_unconfigured_ecus(channel: str, sim: Simulator) -> None:
    bus = can.Bus(interface="virtual", channel=channel)
    ecus = [EcuAddress("engine", 0x7E0, 0x7E8), EcuAddress("ghost", 0x7E5, 0x7ED)]
    with DiagnosticsService(bus, ecus=ecus, p2_timeout=0.2) as svc:
        found = {e["name"]: e for e in svc.scan()}
    bus.shutdown()
    assert not found["ghost"]["present"] and "did not answer" in found["ghost"]["udsError"]
    assert found["obd-0x7E9"]["unconfigured"] and found["obd-0x7E9"]["tx"] == "0x7E1"


def test_obd_live_data_freeze_frame_and_dtcs(service: DiagnosticsService, sim: Simulator) -> None:
    sim.set_speed(80)
    values = service.read_pids(["speed", "rpm", "0x05", 0x2F, "46"])
    assert values["speed"]["value"] == 80
    assert values["rpm"]["value"] > 0
    assert set(values) == {"speed", "rpm", "coolantTemp", "fuelLevel", "ambientTemp"}
    assert {0x04, 0x05, 0x0C, 0x0D, 0x2F, 0x46} <= set(service.supported_pids())
    frame = service.read_freeze_frame([0x02, 0x0C, 0x0D])
    assert frame["values"]["dtc"]["value"] == "P0301"
    assert frame["values"]["rpm"]["value"] == 2150.0
    assert [d["code"] for d in service.obd_dtcs("stored")] == ["P0301", "P0420"]
    assert [d["code"] for d in service.obd_dtcs("pending")] == ["P0171"]
    assert [d["code"] for d in service.obd_dtcs("permanent")] == ["P0420"]
    info = service.obd_vehicle_info()
    assert info["vin"] == sim.scenario.vin and info["ecuName"] == "ECM-EngineControl"
    assert service.obd_clear() is True
    assert service.obd_dtcs("stored") == []


def test_obd_request_to_non_obd_ecu_is_refused(service: DiagnosticsService) -> None:
    with pytest.raises((EcuRefused, PluginTimeout)):
        service.read_pids(["rpm"], ecu="abs")


def test_silence_times_out_then_recovers(service: DiagnosticsService, sim: Simulator) -> None:
    sim.inject("silence", ecu="engine", count=1)
    with pytest.raises(PluginTimeout, match=r"engine .* did not answer"):
        service.read_vin("engine")
    assert service.read_vin("engine") == sim.scenario.vin


def test_response_pending_is_waited_for(service: DiagnosticsService, sim: Simulator) -> None:
    sim.inject("pending", ecu="engine", count=3, requests=1)  # 3 x 0.1 s of 0x78 > P2 (0.3 s)
    assert service.read_vin("engine") == sim.scenario.vin
    sim.inject("pending", ecu="engine", count=3, requests=1)
    assert service.read_pids(["rpm"])["rpm"]["unit"] == "rpm"  # raw OBD path honours 0x78 too


def test_response_pending_storm_hits_the_overall_timeout(service: DiagnosticsService, sim: Simulator) -> None:
    sim.inject("pending", ecu="engine", count=25, requests=1)  # 2.5 s of 0x78 > request timeout 1.5 s
    with pytest.raises(PluginTimeout):  # the storm outlasts the request timeout: no answer waited for
        service.read_vin("engine")
    sim.clear_faults()
    time.sleep(1.2)  # let the storm of the abandoned request drain
    assert service.read_vin("engine") == sim.scenario.vin


def test_malformed_frames_are_dropped_and_service_stays_usable(
    service: DiagnosticsService, sim: Simulator
) -> None:
    sim.inject("malformed", ecu="engine", count=2)
    for _ in range(2):
        with pytest.raises((PluginTimeout, MalformedAnswer)):
            service.read_vin("engine")
    assert service.read_vin("engine") == sim.scenario.vin


def test_extended_session_is_kept_alive(service: DiagnosticsService, sim: Simulator) -> None:
    assert service.set_session("engine", "extended") == "extended"
    before = sim.stats["requests"]
    time.sleep(0.6)
    assert sim.stats["requests"] >= before + 2  # TesterPresent sent without any request of ours
    assert service.read_dids("engine", ["F186"])["F186"]["value"] == "03"
    service.set_session("engine", "default")


def test_bad_arguments_are_invalid_arguments(service: DiagnosticsService) -> None:
    with pytest.raises(InvalidArguments, match="unknown ECU"):
        service.read_vin("radio")
    with pytest.raises(InvalidArguments):
        service.read_dtcs("engine", 0x100)
    with pytest.raises(InvalidArguments):
        service.read_pids([])
    with pytest.raises(InvalidArguments):
        service.set_session("engine", "programming")


def test_closed_service_fails_fast_with_device_unavailable(service: DiagnosticsService) -> None:
    service.close("CAN adapter can0 disconnected")
    with pytest.raises(DeviceUnavailable, match="can0 disconnected"):
        service.read_vin("engine")


class _GarbageEcu:
    """A valid ISO-TP peer on 0x7E0/0x7E8 that answers every request with ``answer``."""

    def __init__(self, channel: str, answer: bytes) -> None:
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.notifier = can.Notifier(self.bus, [], timeout=0.05)
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=0x7E8, rxid=0x7E0)
        self.stack = isotp.NotifierBasedCanStack(self.bus, self.notifier, address=address)
        self.stack.start()
        self.answer = answer
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            if self.stack.recv(block=True, timeout=0.05) is not None:
                self.stack.send(self.answer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(1)
        self.stack.stop()
        self.notifier.stop()
        self.bus.shutdown()


@pytest.mark.parametrize(
    "answer",
    [b"\x62\xf1", b"\x62\xf1\x90ABC", b"\x51\x01", b"\x7f", b"\x59\x02\xff\x03\x01", b"\x41\x0c"],
)
def test_malformed_uds_and_obd_answers_become_errors(channel: str, answer: bytes) -> None:
    ecu = _GarbageEcu(channel, answer)
    bus = can.Bus(interface="virtual", channel=channel)
    try:
        with DiagnosticsService(bus, ecus=[EcuAddress("engine", 0x7E0, 0x7E8)], p2_timeout=0.3) as svc:
            with pytest.raises((MalformedAnswer, EcuRefused)):
                svc.read_vin("engine")
            with pytest.raises((MalformedAnswer, EcuRefused)):
                svc.read_dtcs("engine")
            with pytest.raises((MalformedAnswer, EcuRefused)):
                svc.read_pids(["rpm"])
    finally:
        bus.shutdown()
        ecu.close()
