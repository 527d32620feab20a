"""CAN diagnostics plugin (UDS and OBD-II over python-can, can-isotp, udsoncan; DBC via cantools).

- :mod:`.service`: ``DiagnosticsService``, the blocking core (scan, VIN, DIDs, DTCs, snapshots,
  clear, sessions with keep-alive, OBD-II modes 01/02/03/04/07/09/0A).
- :mod:`.plugin`: ``CanDiagnosticsPlugin``, the ``vehicle.*`` methods mini-apps call.
- :mod:`.vehicle_state`, :mod:`.hotplug`, :mod:`.dtc`, :mod:`.obd`, :mod:`.cli` (``vehicle-host diag``).
"""
