"""The whole head unit under load, for ``benchmarks/load.py`` and ``tests/load``.

- the apps: the sample apps plus generated "live" apps (copies of examples/vehicle-info with their
  own app id whose page streams OBD-II values with ``fc.vehicle.watchPids`` and counts them);
- the processes, wired as ``vehicle-host run --simulator`` wires them (vehicle_host/launcher.py): a
  virtual CAN bus (``vhbus``, the project's cross-process python-can interface) with the ECU simulator
  on it, the reference dealer service, the hub with every plugin (can_diagnostics on that bus), and the
  real pywebview shell under Xvfb with its control channel;
- ``INSTRUMENT``: a script run in the shell's top frame that counts every app's setData messages and
  times one armed tap from the page's event to the frame painted after the renderer applied it;
- resident memory of every process of the host, grouped by role, from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from vehicle_host import launcher  # noqa: E402
from vehicle_host.config import HostConfig, ensure_private_dir  # noqa: E402
from vehicle_host.hub.client import HubClient  # noqa: E402
from vehicle_host.shell.control import ENV as CONTROL_ENV  # noqa: E402
from vehicle_host.shell.driver import ShellDriver  # noqa: E402
from vehicle_host.shell.xvfb import VirtualDisplay  # noqa: E402

EXAMPLES = REPO / "examples"
LIVE_PREFIX = "org.vehiclehost.load.live"
LIVE_PIDS = ("rpm", "speed")
TAP_HANDLER = "onTap"

LIVE_WXML = """<view class="card">
  <button id="tap" class="primary" bindtap="onTap">Tapped {{taps}} times</button>
  <view class="row"><text class="label">Readings</text><text id="ticks">{{ticks}}</text></view>
  <view class="row"><text class="label">Engine speed</text><text id="rpm">{{rpm}} rpm</text></view>
  <view class="row"><text class="label">Vehicle speed</text><text id="speed">{{speed}} km/h</text></view>
  <view class="row"><text class="label">Glitches</text><text id="errors">{{errors}}</text></view>
  <text class="error" wx:if="{{failed}}">{{failed}}</text>
</view>
"""

LIVE_JS = """Page({
  data: { taps: 0, ticks: 0, errors: 0, rpm: 0, speed: 0, failed: '' },
  handle: null,
  onLoad() {
    this.handle = fc.vehicle.watchPids({
      pids: %(pids)s,
      rateHz: %(rate)s,
      onData: (data) => {
        if (data.error) {
          this.setData({ errors: this.data.errors + 1 });
          return;
        }
        const v = data.values;
        this.setData({ ticks: this.data.ticks + 1, rpm: v.rpm.value, speed: v.speed.value });
      },
      success: () => {},
      fail: (err) => {
        this.handle = null;
        this.setData({ failed: err.errMsg });
      },
    });
  },
  onUnload() {
    if (this.handle) this.handle.stop();
  },
  onTap() {
    this.setData({ taps: this.data.taps + 1 });
  },
});
"""

# Runs in the shell's top frame (driver.eval). Counts setData per app as it reaches the shell, and
# times the armed tap: the page's event message -> the tap's setData reaching the shell -> the
# renderer's "painted" for that patch (its sequence number: one per render/patch the frame got) ->
# the next animation frame -> a task after that frame (the frame with the change was produced).
INSTRUMENT = """
(function () {
  if (window.__load) return true;
  if (!window.vh || !window.vh.receive) return false;
  var L = window.__load = { apps: {}, done: {}, pending: null, lastTaps: {} };
  var seqs = {};
  var lastSeq = new Map();
  var receive = window.vh.receive;
  window.vh.receive = function (batch) {
    var now = performance.now();
    if (Array.isArray(batch)) batch.forEach(function (m) {
      if (!m || typeof m !== 'object' || !m.payload || typeof m.payload !== 'object') return;
      var p = m.payload;
      var key = m.source + '|' + p.page_id;
      if (m.type === 'page.render') { seqs[key] = 1; return; }
      if (m.type !== 'page.setData') return;
      seqs[key] = (seqs[key] || 0) + 1;
      var a = L.apps[m.source] || (L.apps[m.source] = { setData: 0, ticks: 0, errors: 0 });
      a.setData += 1;
      var d = p.diff && typeof p.diff === 'object' ? p.diff : {};
      if (typeof d.ticks === 'number') a.ticks = d.ticks;
      if (typeof d.errors === 'number') a.errors = d.errors;
      if (typeof d.taps === 'number') {
        L.lastTaps[m.source] = d.taps;
        var P = L.pending;
        if (P && P.source === m.source && P.taps === d.taps && P.setData === undefined) {
          P.setData = now;
          P.key = key;
          P.seq = seqs[key];
          P.seqBefore = lastSeq.get(P.win) || 0;
        }
      }
    });
    return receive.apply(this, arguments);
  };
  window.addEventListener('message', function (e) {
    var m = e.data;
    if (!m || typeof m !== 'object') return;
    var now = performance.now();
    if (m.type === 'painted' && typeof m.seq === 'number') lastSeq.set(e.source, m.seq);
    var P = L.pending;
    if (!P || e.source !== P.win) return;
    if (m.type === 'event' && m.handler === '%(handler)s' && P.event === undefined) P.event = now;
    if (m.type !== 'painted' || P.seq === undefined || P.applied !== undefined || m.seq < P.seq) return;
    P.applied = now;
    P.appliedSeq = m.seq;
    P.drift = m.seq - seqs[P.key];  // > 0 would mean more paints than patches: a wrong match
    requestAnimationFrame(function () {
      P.raf = performance.now();
      var channel = new MessageChannel();
      channel.port1.onmessage = function () {
        P.frame = performance.now();
        L.done[P.taps] = { armed: P.armed, event: P.event, setData: P.setData, applied: P.applied,
                           raf: P.raf, frame: P.frame, seq: P.seq, appliedSeq: P.appliedSeq,
                           seqBefore: P.seqBefore, drift: P.drift };
        if (L.pending === P) L.pending = null;
      };
      channel.port2.postMessage(0);
    });
  }, true);
  L.arm = function (source, taps) {
    var frame = document.querySelector('#frame-host iframe.top');
    if (!frame || !frame.contentWindow) return null;
    L.pending = { source: source, taps: taps, armed: performance.now(), win: frame.contentWindow };
    return L.pending.armed;
  };
  L.take = function (taps) {
    var r = L.done[taps];
    if (r) delete L.done[taps];
    return r || null;
  };
  L.counters = function () {
    return { apps: L.apps, lastTaps: L.lastTaps };
  };
  return true;
})()
""".replace("%(handler)s", TAP_HANDLER)


@dataclass
class Apps:
    root: Path
    samples: list[str]
    live: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.samples, *self.live]


def make_apps(root: Path, live: int, rate_hz: float) -> Apps:
    """The sample apps plus ``live`` generated live-data apps, in ``root``."""
    shutil.copytree(EXAMPLES, root)
    samples = []
    for manifest in sorted(root.glob("*/app.json")):
        samples.append(json.loads(manifest.read_text())["vehicle"]["id"])
    ids = []
    for n in range(1, live + 1):
        app_id = f"{LIVE_PREFIX}{n:02d}"
        target = root / f"load-live-{n:02d}"
        shutil.copytree(EXAMPLES / "vehicle-info", target)
        manifest = json.loads((target / "app.json").read_text())
        manifest["window"]["navigationBarTitleText"] = f"Live {n}"
        manifest["vehicle"].update(
            {"id": app_id, "name": f"Live {n}", "permissions": ["vehicle.signals"], "drivingSafe": True}
        )
        (target / "app.json").write_text(json.dumps(manifest, indent=2) + "\n")
        page = target / "pages" / "index"
        (page / "index.wxml").write_text(LIVE_WXML)
        (page / "index.js").write_text(LIVE_JS % {"pids": json.dumps(list(LIVE_PIDS)), "rate": rate_hz})
        ids.append(app_id)
    return Apps(root, samples, ids)


# -- processes and memory ----------------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _subtree(pid: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(kids.get(current, []))
    return out


def rss_mb(pid: int) -> float:
    """Resident set size of one process in MB (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def memory_groups(hub_pid: int, shell_pid: int, stats: dict[str, Any]) -> dict[str, float]:
    """RSS (MB) per role: ``hub``, ``shell`` (the Python process), ``webkit`` (its WebKit children),
    ``worker:<app id>``, ``plugin:<name>``, ``pool`` (idle pre-started workers) and ``total``."""
    kids = _children()
    groups: dict[str, float] = {}
    claimed: set[int] = {hub_pid}
    for app_id, pid in sorted(stats.get("workers", {}).items()):
        tree = _subtree(int(pid), kids)
        claimed.update(tree)
        groups[f"worker:{app_id}"] = sum(rss_mb(p) for p in tree)
    for name, info in sorted(stats.get("plugins", {}).get("plugins", {}).items()):
        if info.get("pid"):
            tree = _subtree(int(info["pid"]), kids)
            claimed.update(tree)
            groups[f"plugin:{name}"] = sum(rss_mb(p) for p in tree)
    groups["hub"] = rss_mb(hub_pid)
    groups["pool"] = sum(rss_mb(p) for p in _subtree(hub_pid, kids) if p not in claimed)
    shell_tree = _subtree(shell_pid, kids)
    groups["shell"] = rss_mb(shell_pid)
    groups["webkit"] = sum(rss_mb(p) for p in shell_tree if p != shell_pid)
    groups["total"] = sum(v for k, v in groups.items())
    return {k: round(v, 2) for k, v in groups.items()}


# -- the running host --------------------------------------------------------------------------
@dataclass
class Stack:
    root: Path
    apps: Apps
    display: str
    config: HostConfig
    hub: Any
    shell: Any
    driver: ShellDriver
    control: Path
    logs: list[Path] = field(default_factory=list)

    def hub_stats(self) -> dict[str, Any]:
        async def ask() -> dict[str, Any]:
            client = HubClient(self.config.hub_endpoint, role="client")
            await client.connect()
            try:
                reply = await client.request("hub.stats", "hub", {}, timeout=10)
                return dict(reply.payload["stats"])
            finally:
                await client.close()

        return asyncio.run(ask())

    def memory(self) -> dict[str, float]:
        return memory_groups(self.hub.pid, self.shell.pid, self.hub_stats())

    def alive(self) -> bool:
        return self.hub.poll() is None and self.shell.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.config.runtime_dir.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


@contextlib.contextmanager
def running_stack(
    root: Path, *, live: int = 4, rate_hz: float = 5.0, size: str = "800x480", log_level: str = "WARNING"
) -> Iterator[Stack]:
    """Xvfb, the simulated CAN bus and ECUs, the dealer service, the hub and the shell, all stopped
    (with their process groups) on exit. ``root`` must be short (ipc socket paths)."""
    apps = make_apps(root / "apps", live, rate_hz)
    runtime = ensure_private_dir(root / "run")
    config = HostConfig(apps_dir=apps.root, runtime_dir=runtime, state_dir=root / "state")
    width, height = (int(v) for v in size.split("x"))
    with contextlib.ExitStack() as stack:
        display = stack.enter_context(VirtualDisplay(width, height)).display
        env = {**os.environ, "DISPLAY": display}
        with contextlib.redirect_stdout(sys.stderr):  # the launcher's notes; stdout is the report
            hub = launcher.start_hub(stack, config, env, log_level, simulator=True, config_file=None)
        control = runtime / "shell-control.sock"
        shell_args = [sys.executable, "-m", "vehicle_host", "shell", "--size", size]
        shell_args += ["--runtime-dir", str(runtime), "--log-level", log_level]
        shell_env = {**env, CONTROL_ENV: f"ipc://{control}"}
        shell_log = runtime / "shell.log"
        shell = stack.enter_context(launcher.child(shell_args, shell_env, shell_log))
        launcher.wait_for_path(control, shell, "the shell", shell_log)
        driver = ShellDriver(f"ipc://{control}", display, timeout=30)
        stack.callback(driver.close)
        driver.wait_for(
            lambda s: bool(s.get("online")) and s.get("apps", 0) >= len(apps.all),
            timeout=60,
            what="the launcher to list every app",
        )
        deadline = time.monotonic() + 10
        while not driver.eval(INSTRUMENT):
            if time.monotonic() > deadline:
                raise RuntimeError("the shell page has no vh.receive to instrument")
            time.sleep(0.1)
        yield Stack(root, apps, display, config, hub, shell, driver, control)
