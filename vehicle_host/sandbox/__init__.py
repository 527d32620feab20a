"""Worker isolation: the bubblewrap command line (``bwrap``) and what a worker does to itself (``confine``).

Configuration lives in ``vehicle_host.sandbox.config``; nothing here imports the hub.
"""
