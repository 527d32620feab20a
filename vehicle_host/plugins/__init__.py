"""Plugins: trusted Python services that mini-apps call through the hub's gateway.

- ``contract``: what a plugin declares (:class:`~vehicle_host.plugins.contract.Method`) and subclasses.
- ``registry``: plugins by entry-point name (group ``vehicle_host.plugins``), imported lazily.
- ``host``: the process that runs one plugin against the hub (``python -m vehicle_host.plugins.host``).
- ``storage``, ``network``, ``can_diagnostics``: the plugins that ship with the host.
"""
