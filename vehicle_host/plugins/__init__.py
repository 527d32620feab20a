"""Plugins: trusted Python services that mini-apps call through the hub's gateway.

The plugin contract (methods, schemas, permissions, driving-safe flags, the ``vehicle_host.plugins``
entry point group) arrives with the CAN diagnostics work.
"""
