"""Hotplug of CAN network interfaces: ``(action, ifname)`` events from the kernel (pyudev) or a fake.

A :class:`HotplugSource` calls a callback with ``("add" | "remove" | "change", ifname)`` from its own
thread. :class:`PyudevHotplugSource` listens to kernel uevents of subsystem ``net`` and keeps
interfaces whose ARP hardware type (``/sys/class/net/<if>/type``) is CAN (280);
:class:`FakeHotplugSource` lets tests plug and unplug by hand.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

log = logging.getLogger("vehicle_host.can_diagnostics")

ARPHRD_CAN = 280
ACTIONS = ("add", "remove", "change", "move")
SYS_CLASS_NET = Path("/sys/class/net")

HotplugCallback = Callable[[str, str], None]


def interface_type(ifname: str, root: Path = SYS_CLASS_NET) -> int | None:
    """The ARP hardware type of a network interface, or None when it does not exist."""
    if not ifname or "/" in ifname or ifname in (".", ".."):
        return None
    try:
        return int((root / ifname / "type").read_text().strip())
    except (OSError, ValueError):
        return None


class HotplugSource:
    """Base class: ``start(callback)`` then events until ``stop()``; ``present(ifname)`` now."""

    def start(self, callback: HotplugCallback) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def present(self, ifname: str) -> bool:
        raise NotImplementedError


class PyudevHotplugSource(HotplugSource):
    """Kernel uevents for network interfaces of the given ARP types (CAN by default).

    ``remove`` events carry no sysfs attributes any more, so a removal is reported for interfaces
    that were seen as matching (at start or by an earlier event) or are listed in ``watch``.
    """

    def __init__(self, arphrd_types: Iterable[int] = (ARPHRD_CAN,), watch: Iterable[str] = ()) -> None:
        self.types = frozenset(arphrd_types)
        self._known: set[str] = set(watch)
        self._observer: Any = None
        self._monitor: Any = None

    def present(self, ifname: str) -> bool:
        return interface_type(ifname) in self.types

    def _matches(self, action: str, ifname: str, device: Any) -> bool:
        if action == "remove":
            return ifname in self._known
        raw = None
        with contextlib.suppress(Exception):
            raw = device.attributes.get("type")
        try:
            kind = int(raw) if raw is not None else interface_type(ifname)
        except ValueError:
            kind = None
        if kind in self.types:
            self._known.add(ifname)
            return True
        return False

    def start(self, callback: HotplugCallback) -> None:
        import pyudev

        context = pyudev.Context()
        for device in context.list_devices(subsystem="net"):
            if device.sys_name and interface_type(device.sys_name) in self.types:
                self._known.add(device.sys_name)
        self._monitor = pyudev.Monitor.from_netlink(context, source="kernel")
        self._monitor.filter_by(subsystem="net")
        self._monitor.start()  # bind now, so no event between start() and the thread's first poll is lost

        def handle(device: Any) -> None:
            action = str(device.action or "")
            ifname = str(device.sys_name or "")
            if action not in ACTIONS or not ifname:
                return
            try:
                if self._matches(action, ifname, device):
                    callback(action, ifname)
            except Exception:
                log.exception("hotplug callback failed for %s %s", action, ifname)

        self._observer = pyudev.MonitorObserver(self._monitor, callback=handle, name="can-hotplug")
        self._observer.daemon = True
        self._observer.start()

    def stop(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.send_stop()
            self._observer = None


class FakeHotplugSource(HotplugSource):
    """Hotplug by hand: ``plug(ifname)`` / ``unplug(ifname)`` deliver events synchronously."""

    def __init__(self, present: Iterable[str] = ()) -> None:
        self._present = set(present)
        self._callback: HotplugCallback | None = None
        self._lock = threading.Lock()

    def start(self, callback: HotplugCallback) -> None:
        self._callback = callback

    def stop(self) -> None:
        self._callback = None

    def present(self, ifname: str) -> bool:
        with self._lock:
            return ifname in self._present

    def _emit(self, action: str, ifname: str) -> None:
        callback = self._callback
        if callback is not None:
            callback(action, ifname)

    def plug(self, ifname: str) -> None:
        with self._lock:
            self._present.add(ifname)
        self._emit("add", ifname)

    def unplug(self, ifname: str) -> None:
        with self._lock:
            self._present.discard(ifname)
        self._emit("remove", ifname)
