"""Block-device hotplug events: a small source interface, a pyudev backend and a fake for tests.

A source yields :class:`BlockEvent` values (``add``/``remove`` of a :class:`BlockDevice`). The base
class owns the public :meth:`HotplugSource.events`; a backend overrides the one hook ``_events``.

:class:`PyudevSource` listens to the kernel's own uevents (``Monitor.from_netlink(ctx,
source="kernel")``), so it works without udevd. Kernel events carry no ``ID_FS_TYPE``: when it is
absent, the filesystem type is probed with ``blkid``. A ``change`` event whose size goes from 0 to
more (a card put into a reader, a loop device attached) counts as ``add``; back to 0 as ``remove``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import subprocess
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger("vehicle_host.usb_import")

Action = Literal["add", "remove"]
SECTOR = 512
BLKID_TIMEOUT_S = 10.0
#: What a filesystem type reported by a device (or blkid) may look like.
FS_TYPE = re.compile(r"^[a-z0-9_]{1,32}$")
NODE = re.compile(r"^/dev/[A-Za-z0-9_.+-][A-Za-z0-9_./+-]{0,127}$")
MAX_QUEUED_EVENTS = 256


@dataclass(frozen=True, slots=True)
class BlockDevice:
    """A block device (a whole disk or a partition) as hotplug sees it.

    ``fs_type`` is the filesystem type (``vfat``, ``ext4``...) or ``None`` when the device holds no
    recognisable filesystem (e.g. a whole disk with a partition table). ``removable`` is true for
    removable media and for anything on a USB bus. ``size`` is in bytes.
    """

    node: str
    fs_type: str | None
    removable: bool
    size: int


@dataclass(frozen=True, slots=True)
class BlockEvent:
    action: Action
    device: BlockDevice


class HotplugSource:
    """Where block-device events come from. Iterate ``events()`` once; ``close()`` ends it."""

    def events(self) -> AsyncIterator[BlockEvent]:
        return self._events()

    def _events(self) -> AsyncIterator[BlockEvent]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop producing events; a running ``events()`` iteration ends."""


class FakeSource(HotplugSource):
    """A source fed by the test: ``add(device)``/``remove(device)``; ``close()`` ends the stream."""

    def __init__(self, events: Iterable[BlockEvent] = ()) -> None:
        self._queue: asyncio.Queue[BlockEvent | None] = asyncio.Queue()
        for event in events:
            self._queue.put_nowait(event)

    def add(self, device: BlockDevice) -> None:
        self._queue.put_nowait(BlockEvent("add", device))

    def remove(self, device: BlockDevice) -> None:
        self._queue.put_nowait(BlockEvent("remove", device))

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def _events(self) -> AsyncIterator[BlockEvent]:
        while True:
            event = await self._queue.get()
            if event is None:
                return
            yield event


def probe_fs_type(node: str, *, timeout_s: float = BLKID_TIMEOUT_S) -> str | None:
    """The filesystem type on ``node`` as ``blkid`` finds it by reading the device, or ``None``."""
    if not NODE.match(node):
        return None
    try:
        done = subprocess.run(
            ["blkid", "-p", "-o", "value", "-s", "TYPE", "--", node],
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("cannot probe the filesystem type", extra={"node": node, "error": str(exc)})
        return None
    value = done.stdout.decode("ascii", "replace").strip().lower()
    return value if done.returncode == 0 and FS_TYPE.match(value) else None


def _attribute(device: Any, name: str) -> str:
    try:
        value = device.attributes.get(name)
    except Exception:  # pyudev raises various errors for attributes that vanish with the device
        return ""
    if isinstance(value, bytes):
        return value.decode("ascii", "replace").strip()
    return str(value or "").strip()


def _size_bytes(device: Any) -> int:
    text = _attribute(device, "size")
    return int(text) * SECTOR if text.isdigit() else 0


def _is_removable(device: Any) -> bool:
    disk = device
    if device.properties.get("DEVTYPE") == "partition" and device.parent is not None:
        disk = device.parent
    if _attribute(disk, "removable") == "1":
        return True
    return "/usb" in str(getattr(device, "sys_path", ""))


class PyudevSource(HotplugSource):
    """Kernel block-device uevents through pyudev (disks and partitions).

    ``existing=True`` first reports every block device already present as ``add`` (a stick that was
    in before the host started). Needs read access to the kernel uevent netlink socket (root, or
    CAP_NET_ADMIN); without it ``events()`` raises OSError.
    """

    def __init__(self, *, existing: bool = False, probe: bool = True) -> None:
        self.existing = existing
        self.probe = probe
        self._closed = asyncio.Event()
        self._sizes: dict[str, int] = {}
        #: set once the kernel socket is open: events from then on are seen
        self.listening = asyncio.Event()

    def close(self) -> None:
        self._closed.set()

    def _device(self, dev: Any) -> BlockDevice | None:
        node = dev.device_node
        if not node or dev.properties.get("DEVTYPE") not in ("disk", "partition"):
            return None
        fs_type = dev.properties.get("ID_FS_TYPE") or None
        size = _size_bytes(dev)
        if fs_type is None and self.probe and size > 0:
            fs_type = probe_fs_type(str(node))
        return BlockDevice(str(node), fs_type, _is_removable(dev), size)

    def _translate(self, action: str, dev: Any) -> BlockEvent | None:
        node = dev.device_node
        if not node:
            return None
        if action == "remove":
            self._sizes.pop(str(node), None)
            return BlockEvent("remove", BlockDevice(str(node), None, False, 0))
        size = _size_bytes(dev)
        before = self._sizes.get(str(node), 0)
        self._sizes[str(node)] = size
        if action == "change":
            if before == 0 and size > 0:
                action = "add"  # media arrived (card reader, loop device attached)
            elif before > 0 and size == 0:
                return BlockEvent("remove", BlockDevice(str(node), None, False, 0))
            else:
                return None
        if action != "add" or size == 0:
            return None
        device = self._device(dev)
        return BlockEvent("add", device) if device is not None else None

    async def _events(self) -> AsyncIterator[BlockEvent]:
        import pyudev  # imported lazily: only the real source needs libudev

        context = pyudev.Context()
        monitor = pyudev.Monitor.from_netlink(context, source="kernel")
        monitor.filter_by("block")
        monitor.start()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(MAX_QUEUED_EVENTS)

        def readable() -> None:
            while True:
                try:
                    dev = monitor.poll(timeout=0)
                except (OSError, ValueError) as exc:  # malformed uevent or a socket overrun
                    log.warning("dropped a kernel uevent", extra={"error": str(exc)})
                    continue
                if dev is None:
                    return
                if queue.full():
                    log.warning("too many block events queued; dropped one", extra={"node": dev.device_node})
                    continue
                queue.put_nowait((str(dev.action or ""), dev))

        fd = monitor.fileno()
        loop.add_reader(fd, readable)
        self.listening.set()
        try:
            if self.existing:
                found = await asyncio.to_thread(lambda: list(context.list_devices(subsystem="block")))
                for dev in found:
                    event = await asyncio.to_thread(self._translate, "add", dev)
                    if event is not None:
                        yield event
            closed = asyncio.ensure_future(self._closed.wait())
            try:
                while True:
                    getter = asyncio.ensure_future(queue.get())
                    await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await getter
                        return
                    action, dev = getter.result()
                    event = await asyncio.to_thread(self._translate, action, dev)
                    if event is not None:
                        yield event
            finally:
                closed.cancel()
        finally:
            loop.remove_reader(fd)  # the monitor's socket closes when the monitor is collected
