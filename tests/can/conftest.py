"""Fixtures for the CAN tests: a simulator on a python-can virtual bus and testers talking to it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from typing import Any

import can
import isotp
import pytest
import udsoncan
from udsoncan.client import Client
from udsoncan.connections import PythonIsoTpConnection

from vehicle_host.simulator import DID_LENGTHS, EXTENDED_DATA_SIZE, SNAPSHOT_DIDS, Scenario, Simulator

_channels = itertools.count()


def uds_config(timeout: float = 2.0) -> dict[str, Any]:
    config = dict(udsoncan.configs.default_client_config)
    codecs: dict[int, Any] = {did: udsoncan.AsciiCodec(n) for did, n in DID_LENGTHS.items() if did != 0xF186}
    codecs[0xF186] = ">B"
    codecs.update({did: ">H" if n == 2 else ">B" for did, n in SNAPSHOT_DIDS.items()})
    config["data_identifiers"] = codecs
    config["extended_data_size"] = EXTENDED_DATA_SIZE
    config["request_timeout"] = timeout
    config["p2_timeout"] = 1.0
    config["use_server_timing"] = False  # a shared CI box cannot promise the ECU's 50 ms
    return config


class DiagTester:
    """A tester on its own bus instance: raw ISO-TP stacks and udsoncan clients."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self.notifier = can.Notifier(bus, [], timeout=0.1)
        self._stacks: list[isotp.NotifierBasedCanStack] = []

    def stack(self, txid: int = 0x7E0, rxid: int = 0x7E8) -> isotp.NotifierBasedCanStack:
        address = isotp.Address(isotp.AddressingMode.Normal_11bits, txid=txid, rxid=rxid)
        params = {"tx_padding": 0x55, "tx_data_min_length": 8, "blocksize": 0}
        stack = isotp.NotifierBasedCanStack(self.bus, self.notifier, address=address, params=params)
        stack.start()
        self._stacks.append(stack)
        return stack

    def request(
        self, payload: bytes, txid: int = 0x7E0, rxid: int = 0x7E8, timeout: float = 2.0
    ) -> bytes | None:
        stack = self.stack(txid, rxid)
        try:
            stack.send(payload)
            data = stack.recv(block=True, timeout=timeout)
            return None if data is None else bytes(data)
        finally:
            stack.stop()
            self._stacks.remove(stack)

    def client(self, txid: int = 0x7E0, rxid: int = 0x7E8, timeout: float = 2.0) -> Client:
        stack = isotp.NotifierBasedCanStack(
            self.bus,
            self.notifier,
            address=isotp.Address(isotp.AddressingMode.Normal_11bits, txid=txid, rxid=rxid),
            params={"tx_padding": 0x55, "tx_data_min_length": 8},
        )
        return Client(PythonIsoTpConnection(stack), config=uds_config(timeout))

    def close(self) -> None:
        for stack in self._stacks:
            stack.stop()
        self.notifier.stop(timeout=1.0)


@pytest.fixture
def channel() -> str:
    return f"vh-test-{os.getpid()}-{next(_channels)}"


@pytest.fixture
def start_simulator(channel: str) -> Iterator[Callable[..., Simulator]]:
    started: list[tuple[Simulator, can.BusABC]] = []

    def start(scenario: Scenario | None = None) -> Simulator:
        bus = can.Bus(interface="virtual", channel=channel)
        sim = Simulator(bus, scenario or Scenario.default())
        sim.start()
        started.append((sim, bus))
        return sim

    yield start
    for sim, bus in started:
        sim.stop()
        bus.shutdown()


@pytest.fixture
def simulator(start_simulator: Callable[..., Simulator]) -> Simulator:
    return start_simulator()


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    """The default simulator under the short name the diagnostics tests use."""
    return simulator


@pytest.fixture
def tester(channel: str) -> Iterator[DiagTester]:
    bus = can.Bus(interface="virtual", channel=channel)
    t = DiagTester(bus)
    yield t
    t.close()
    bus.shutdown()
