"""udsoncan's own Client over can-isotp against the simulator on a python-can virtual bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

import can
import isotp
import pytest
from udsoncan.exceptions import InvalidResponseException, NegativeResponseException, TimeoutException

from vehicle_host.simulator import Simulator, dtc_to_int, vin_check_digit

if TYPE_CHECKING:
    from tests.can.conftest import DiagTester


def test_vin_and_identification(simulator: Simulator, tester: DiagTester) -> None:
    with tester.client() as client:
        vin = client.read_data_by_identifier(0xF190).service_data.values[0xF190]
        values = client.read_data_by_identifier([0xF18C, 0xF187, 0xF189, 0xF197]).service_data.values
    assert vin == simulator.scenario.vin
    assert len(vin) == 17 and vin[8] == vin_check_digit(vin)
    engine = simulator.scenario.ecu("engine")
    assert values[0xF18C].strip() == engine.serial
    assert values[0xF187].strip() == engine.part_number
    assert values[0xF189].strip() == engine.software_version
    assert values[0xF197].strip() == engine.system_name


def test_each_ecu_answers_on_its_own_ids(simulator: Simulator, tester: DiagTester) -> None:
    with tester.client(0x7E2, 0x7EA) as client:
        values = client.read_data_by_identifier(0xF197).service_data.values
    assert values[0xF197].strip() == simulator.scenario.ecu("abs").system_name


def test_session_control_reports_timings_and_active_session(simulator: Simulator, tester: DiagTester) -> None:
    with tester.client() as client:
        response = client.change_session(3)
        assert response.service_data.p2_server_max == pytest.approx(simulator.scenario.p2_ms / 1000)
        assert response.service_data.p2_star_server_max == pytest.approx(simulator.scenario.p2_star_ms / 1000)
        assert client.read_data_by_identifier(0xF186).service_data.values[0xF186] == (3,)
        client.tester_present()
        client.change_session(1)
        assert client.read_data_by_identifier(0xF186).service_data.values[0xF186] == (1,)
        with pytest.raises(NegativeResponseException) as info:
            client.change_session(2)
        assert info.value.response.code == 0x22


def test_dtcs_by_status_mask_count_snapshot_and_extended_data(
    simulator: Simulator, tester: DiagTester
) -> None:
    with tester.client() as client:
        confirmed = client.get_dtc_by_status_mask(0x08).service_data.dtcs
        pending = client.get_dtc_by_status_mask(0x04).service_data.dtcs
        count = client.get_number_of_dtc_by_status_mask(0xFF).service_data.dtc_count
        snapshot = client.get_dtc_snapshot_by_dtc_number(dtc_to_int("P0301"), record_number=1)
        extended = client.get_dtc_extended_data_by_dtc_number(dtc_to_int("P0301"), record_number=0xFF)
        with pytest.raises(NegativeResponseException) as info:
            client.get_dtc_snapshot_by_dtc_number(dtc_to_int("P0999"), record_number=1)
    assert {d.id for d in confirmed} == {dtc_to_int("P0301"), dtc_to_int("P0420")}
    assert all(d.status.confirmed and d.status.warning_indicator_requested for d in confirmed)
    assert [d.id for d in pending] == [dtc_to_int("P0171")]
    assert count == 3
    records = {s.did: s.data for s in snapshot.service_data.dtcs[0].snapshots}
    assert records[0xF40C] == (2150 * 4,)  # raw OBD encoding: rpm * 4
    assert records[0xF40D] == (62,)
    assert {e.record_number: e.raw_data for e in extended.service_data.dtcs[0].extended_data} == {
        1: b"\x03",
        2: b"\x00",
    }
    assert info.value.response.code == 0x31


def test_clear_keeps_only_permanent_dtcs_out_of_uds(simulator: Simulator, tester: DiagTester) -> None:
    with tester.client() as client:
        assert client.clear_dtc(0xFFFFFF).positive
        assert client.get_dtc_by_status_mask(0xFF).service_data.dtcs == []
        with pytest.raises(NegativeResponseException) as info:
            client.clear_dtc(0x123456)
    assert info.value.response.code == 0x31
    assert tester.request(b"\x0a") == bytes([0x4A, 1, 0x04, 0x20])  # P0420 is permanent (OBD)
    with tester.client(0x7E1, 0x7E9) as client:  # other ECUs keep theirs
        assert len(client.get_dtc_by_status_mask(0x08).service_data.dtcs) == 1


def test_negative_responses_like_a_real_ecu(simulator: Simulator, tester: DiagTester) -> None:
    assert tester.request(b"\x85\x01") == bytes([0x7F, 0x85, 0x11])  # unknown service
    assert tester.request(b"\x19\x42\xff") == bytes([0x7F, 0x19, 0x12])  # unknown sub-function
    assert tester.request(b"\x22\xf1") == bytes([0x7F, 0x22, 0x13])  # odd length
    assert tester.request(b"\x22\x12\x34") == bytes([0x7F, 0x22, 0x31])  # unknown DID
    assert tester.request(b"\x2e\xf1\x90\x00") == bytes([0x7F, 0x2E, 0x7F])  # not in default session
    assert tester.request(b"\x3e\x80", timeout=0.3) is None  # suppressed positive response
    assert tester.request(b"\x3e\x00") == b"\x7e\x00"
    # one known and one unknown DID: only the known one comes back
    assert tester.request(b"\x22\x12\x34\xf1\x89") == b"\x62\xf1\x89" + b"E4.12.07"


def test_response_pending_is_waited_through(simulator: Simulator, tester: DiagTester) -> None:
    simulator.inject("pending", ecu="engine", count=3)
    with tester.client() as client:
        vin = client.read_data_by_identifier(0xF190).service_data.values[0xF190]
        assert simulator.stats["pending_sent"] == 3
        client.read_data_by_identifier(0xF190)  # the fault was for one request only
    assert vin == simulator.scenario.vin
    assert simulator.stats["pending_sent"] == 3


def test_silence_times_out_then_recovers(simulator: Simulator, tester: DiagTester) -> None:
    simulator.inject("silence", ecu="engine", count=None)
    with tester.client(timeout=0.4) as client:
        with pytest.raises(TimeoutException):
            client.read_data_by_identifier(0xF190)
        with pytest.raises(TimeoutException):
            client.tester_present()
        simulator.clear_faults()
        assert client.read_data_by_identifier(0xF190).service_data.values[0xF190] == simulator.scenario.vin


def test_malformed_answers_fail_the_request_not_the_simulator(
    simulator: Simulator, tester: DiagTester
) -> None:
    simulator.inject("malformed", ecu=0x7E0, count=1)
    with tester.client(timeout=0.5) as client:
        with pytest.raises((TimeoutException, InvalidResponseException)):
            client.read_data_by_identifier(0xF190)
        assert client.read_data_by_identifier(0xF190).service_data.values[0xF190] == simulator.scenario.vin
    assert simulator.stats["malformed_sent"] > 0


def test_garbage_sent_to_the_ecu_does_not_stop_it(simulator: Simulator, tester: DiagTester) -> None:
    garbage = [
        b"",
        b"\x00",
        b"\x0f" * 8,
        b"\x10\x00\x00\x00\x00\x00\x22\xf1",  # escaped first frame of length 0
        b"\x10\xff\x22\xf1\x90\x00\x00\x00",  # first frame, never continued
        b"\x25\x01\x02\x03",  # consecutive frame out of nowhere
        b"\x30\x00\x00",  # flow control to an idle server
        b"\xff" * 8,
        b"\x02\x22",  # single frame shorter than it says
    ]
    for data in garbage:
        tester.bus.send(can.Message(arbitration_id=0x7E0, is_extended_id=False, data=data))
        tester.bus.send(can.Message(arbitration_id=0x7DF, is_extended_id=False, data=data))
    response = None
    for _ in range(3):  # the first-frame timeout of the half-received request may swallow one try
        response = tester.request(b"\x22\xf1\x90", timeout=1.5)
        if response is not None:
            break
    assert response == b"\x62\xf1\x90" + simulator.scenario.vin.encode()
    assert simulator.running


def test_fault_arguments_are_checked(simulator: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        simulator.inject("explode")
    with pytest.raises(ValueError):
        simulator.inject("silence", count=-1)
    with pytest.raises(Exception, match="no ECU"):
        simulator.inject("silence", ecu="radio")


def test_isotp_stack_of_the_tester_is_unaffected_by_broadcasts(
    simulator: Simulator, tester: DiagTester
) -> None:
    stack: isotp.NotifierBasedCanStack = tester.stack()
    stack.send(b"\x22\xf1\x90")
    assert stack.recv(block=True, timeout=2) == b"\x62\xf1\x90" + simulator.scenario.vin.encode()
