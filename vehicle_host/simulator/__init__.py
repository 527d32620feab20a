"""ECU simulator for python-can buses (virtual, vhbus, socketcan/vcan).

>>> from vehicle_host.simulator import Simulator, Scenario
>>> sim = Simulator(bus, Scenario.default()); sim.start(); ...; sim.stop()
"""

from __future__ import annotations

from vehicle_host.simulator.scenario import (
    DID_LENGTHS,
    EXTENDED_DATA_SIZE,
    SNAPSHOT_DIDS,
    DtcSpec,
    EcuSpec,
    Scenario,
    ScenarioError,
    Snapshot,
    dtc_to_int,
    dtc_to_str,
    vin_check_digit,
)
from vehicle_host.simulator.server import FAULTS, Simulator

__all__ = [
    "DID_LENGTHS",
    "EXTENDED_DATA_SIZE",
    "FAULTS",
    "SNAPSHOT_DIDS",
    "DtcSpec",
    "EcuSpec",
    "Scenario",
    "ScenarioError",
    "Simulator",
    "Snapshot",
    "dtc_to_int",
    "dtc_to_str",
    "vin_check_digit",
]
