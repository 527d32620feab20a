"""Hotplug sources: real kernel uevents through pyudev, and the fake used by plugin tests."""

from __future__ import annotations

import threading
from pathlib import Path

from vehicle_host.plugins.can_diagnostics.hotplug import (
    ARPHRD_CAN,
    FakeHotplugSource,
    PyudevHotplugSource,
    interface_type,
)

ARPHRD_LOOPBACK = 772


def test_pyudev_source_receives_a_real_kernel_event_for_lo() -> None:
    events: list[tuple[str, str]] = []
    seen = threading.Event()
    source = PyudevHotplugSource(arphrd_types=(ARPHRD_LOOPBACK,))

    def on_event(action: str, ifname: str) -> None:
        events.append((action, ifname))
        if ifname == "lo":
            seen.set()

    source.start(on_event)
    try:
        Path("/sys/class/net/lo/uevent").write_text("change")
        assert seen.wait(5), "no uevent for lo arrived"
    finally:
        source.stop()
    assert ("change", "lo") in events
    assert source.present("lo")


def test_pyudev_source_filters_out_non_can_interfaces() -> None:
    events: list[tuple[str, str]] = []
    source = PyudevHotplugSource()  # CAN only: lo (type 772) must not come through
    source.start(lambda action, ifname: events.append((action, ifname)))
    try:
        Path("/sys/class/net/lo/uevent").write_text("change")
        threading.Event().wait(0.5)
    finally:
        source.stop()
    assert events == []
    assert not source.present("lo")


def test_interface_type_reads_sysfs_and_rejects_odd_names() -> None:
    assert interface_type("lo") == ARPHRD_LOOPBACK
    assert interface_type("no-such-if0") is None
    assert interface_type("../lo") is None
    assert ARPHRD_CAN == 280


def test_fake_source_delivers_plug_and_unplug() -> None:
    events: list[tuple[str, str]] = []
    fake = FakeHotplugSource(present=["can0"])
    assert fake.present("can0") and not fake.present("can1")
    fake.start(lambda action, ifname: events.append((action, ifname)))
    fake.unplug("can0")
    fake.plug("can1")
    fake.stop()
    fake.plug("can2")  # after stop: no callback
    assert events == [("remove", "can0"), ("add", "can1")]
    assert not fake.present("can0") and fake.present("can1")
