"""Network guard for test processes: resolver and socket hooks that refuse any target outside loopback.

Put this directory first on ``PYTHONPATH`` and set ``VH_NETGUARD_FILE``: every Python process started
that way installs the hooks at start-up (then runs the interpreter's own ``sitecustomize``), and each
refused attempt is appended to that file as one JSON line before the call raises
:class:`NetGuardViolation`. The hostile suite's conftest installs the same hooks in the test process.

Allowed: 127.0.0.0/8, ``::1``, IPv4-mapped loopback, the name ``localhost``, unix sockets, numeric
lookups (they send nothing). Refused: every other address and every other name (a name lookup would
send a DNS query).
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

FILE_ENV = "VH_NETGUARD_FILE"
#: JSON ``{"name": ["address", ...]}``: the guard's fake DNS answers these names, sending nothing.
DNS_ENV = "VH_NETGUARD_DNS"
LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})

Recorder = Callable[[dict[str, Any]], None]

_lock = threading.Lock()
_originals: dict[str, Any] = {}
#: The fake DNS: lower-case name without the trailing dot -> its addresses.
FAKE_DNS: dict[str, list[str]] = {}


class NetGuardViolation(OSError):
    """A test process tried to reach (or look up) something outside loopback."""


def _numeric(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a numeric host spells (any inet_aton form: decimal, octal, hex), else None."""
    text = host.strip("[]").split("%", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def is_loopback(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def host_allowed(host: object, *, lookup: bool) -> bool:
    """Whether ``host`` may be reached (``lookup`` False) or looked up (``lookup`` True)."""
    if host is None:
        return lookup  # getaddrinfo(None, ...) is a local bind lookup
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in LOOPBACK_NAMES:
        return True
    address = _numeric(host)
    if address is None:
        return False
    return lookup or is_loopback(address)


def _inet_target(family: int, address: object) -> object | None:
    """The host part of an inet address tuple; None for families the guard allows (unix, netlink...)."""
    if family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        host: object = address[0]
        return host
    if family in (socket.AF_INET, socket.AF_INET6):
        return address  # a malformed address: let the guard refuse it
    return None


def _fake_key(host: object) -> str | None:
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return None
    key = host.lower().rstrip(".")
    return key if key in FAKE_DNS else None


def fake_addrinfo(name: str, port: Any, type_: int = 0, proto: int = 0) -> list[Any]:
    """``getaddrinfo`` answers for a name in :data:`FAKE_DNS`, shaped like the real ones."""
    number = int(port) if isinstance(port, int | str) and str(port).isdigit() else 0
    kinds = [type_] if type_ else [socket.SOCK_STREAM]
    out: list[Any] = []
    for address in FAKE_DNS[name]:
        ip = ipaddress.ip_address(address)
        for kind in kinds:
            if ip.version == 4:
                out.append((socket.AF_INET, kind, proto or 6, "", (address, number)))
            else:
                out.append((socket.AF_INET6, kind, proto or 6, "", (address, number, 0, 0)))
    return out


def install(record: Recorder) -> None:
    """Replace the resolver and socket entry points of :mod:`socket` with guarded ones."""
    with _lock:
        if _originals:
            return
        for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "gethostbyaddr"):
            _originals[name] = getattr(socket, name)
        for name in ("connect", "connect_ex", "sendto", "sendmsg"):
            _originals["socket." + name] = getattr(socket.socket, name)

    def refuse(call: str, target: object) -> NetGuardViolation:
        entry = {"pid": os.getpid(), "call": call, "target": repr(target), "time": time.time()}
        record(entry)
        return NetGuardViolation(f"network guard: {call} to {target!r} is outside 127.0.0.0/8")

    def getaddrinfo(
        host: Any, port: Any = None, family: int = 0, type: int = 0, proto: int = 0, flags: int = 0
    ) -> Any:
        name = _fake_key(host)
        if name is not None:
            found = fake_addrinfo(name, port, type, proto)
            return [info for info in found if family in (0, info[0])]
        if not host_allowed(host, lookup=True):
            raise refuse("getaddrinfo", host)
        return _originals["getaddrinfo"](host, port, family, type, proto, flags)

    def gethostbyname(host: Any) -> Any:
        name = _fake_key(host)
        if name is not None:
            v4 = [a for a in FAKE_DNS[name] if ipaddress.ip_address(a).version == 4]
            if not v4:
                raise socket.gaierror(socket.EAI_NONAME, "no IPv4 address in the fake DNS")
            return v4[0]
        if not host_allowed(host, lookup=True):
            raise refuse("gethostbyname", host)
        return _originals["gethostbyname"](host)

    def gethostbyname_ex(host: Any) -> Any:
        if not host_allowed(host, lookup=True):
            raise refuse("gethostbyname_ex", host)
        return _originals["gethostbyname_ex"](host)

    def gethostbyaddr(host: Any) -> Any:
        if not host_allowed(host, lookup=False):
            raise refuse("gethostbyaddr", host)
        return _originals["gethostbyaddr"](host)

    def check(sock: socket.socket, call: str, address: object) -> None:
        target = _inet_target(sock.family, address)
        if target is not None and not host_allowed(target, lookup=False):
            raise refuse(call, address)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and target is None:
            raise refuse(call, address)

    def connect(self: socket.socket, address: Any) -> None:
        check(self, "connect", address)
        _originals["socket.connect"](self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, "connect_ex", address)
        result: int = _originals["socket.connect_ex"](self, address)
        return result

    def sendto(self: socket.socket, data: Any, *rest: Any) -> int:
        if rest:
            check(self, "sendto", rest[-1])
        result: int = _originals["socket.sendto"](self, data, *rest)
        return result

    def sendmsg(self: socket.socket, buffers: Any, *rest: Any) -> int:
        if len(rest) >= 3 and rest[2] is not None:
            check(self, "sendmsg", rest[2])
        result: int = _originals["socket.sendmsg"](self, buffers, *rest)
        return result

    socket.getaddrinfo = getaddrinfo
    socket.gethostbyname = gethostbyname
    socket.gethostbyname_ex = gethostbyname_ex
    socket.gethostbyaddr = gethostbyaddr
    methods: dict[str, Any] = {
        "connect": connect,
        "connect_ex": connect_ex,
        "sendto": sendto,
        "sendmsg": sendmsg,
    }
    for name, hook in methods.items():
        setattr(socket.socket, name, hook)


def uninstall() -> None:
    """Put the original entry points back (the test process does this at teardown)."""
    with _lock:
        for name, original in _originals.items():
            if name.startswith("socket."):
                setattr(socket.socket, name.removeprefix("socket."), original)
            else:
                setattr(socket, name, original)
        _originals.clear()


def file_recorder(path: str) -> Recorder:
    def record(entry: dict[str, Any]) -> None:
        line = json.dumps(entry) + "\n"
        with open(path, "a", encoding="utf-8") as out:  # O_APPEND: lines from many processes stay whole
            out.write(line)

    return record


def _chain_next_sitecustomize() -> None:
    """Run the ``sitecustomize`` this one shadows (Debian ships one), if any."""
    here = os.path.dirname(os.path.abspath(__file__))
    saved = list(sys.path)
    module = sys.modules.pop("sitecustomize", None)
    try:
        sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
        importlib.import_module("sitecustomize")
    except ImportError:
        pass
    finally:
        sys.path[:] = saved
        if module is not None:
            sys.modules["sitecustomize"] = module


if __name__ == "sitecustomize":
    FAKE_DNS.update(json.loads(os.environ.get(DNS_ENV) or "{}"))
    _path = os.environ.get(FILE_ENV)
    if _path:
        install(file_recorder(_path))
    _chain_next_sitecustomize()
