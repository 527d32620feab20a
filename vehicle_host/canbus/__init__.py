"""A virtual CAN bus that several processes share (python-can interface ``vhbus``).

``can.Bus(interface="vhbus", channel="ipc:///path/can0.sock")`` or ``channel="tcp://127.0.0.1:PORT"``.
The first participant starts the broker in a thread unless one already serves the endpoint; for a
broker that outlives its participants run ``python -m vehicle_host.canbus --endpoint E``.
"""

from __future__ import annotations

from vehicle_host.canbus.broker import BrokerBusyError, EndpointError, parse_endpoint, serve_bus

__all__ = ["BrokerBusyError", "EndpointError", "parse_endpoint", "serve_bus"]
