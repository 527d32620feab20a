"""CAN diagnostics plugin (OBD-II and UDS over python-can, can-isotp, udsoncan, cantools).

Placeholder package: the plugin is built by its own issue; nothing here is wired into the host yet.
"""
