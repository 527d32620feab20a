// vehicle-host shell page, part 2: the status bar (clock, vehicle, CAN adapter, hub link, theme
// switch, a slot for pending updates), the day/night themes and the hub link's state.
(function () {
  'use strict';
  var S = window.__vhShell;
  var state = S.state;
  var $ = S.$;
  var GEARS = { P: 'P', R: 'R', N: 'N', D: 'D' };

  // -- hub link ---------------------------------------------------------------------------------
  S.setOnline = function (online) {
    state.online = online;
    if (online) state.everOnline = true;
    $('hub-state').textContent = online ? 'Online' : state.everOnline ? 'Offline' : 'Starting\u2026';
    $('hub-state').classList.toggle('online', online);
    $('hub-state').setAttribute('aria-label', online ? 'Hub online' : 'Hub offline');
    var banner = $('link-banner');
    banner.textContent = state.everOnline ? 'Reconnecting\u2026 the hub is not answering' : 'Starting\u2026';
    banner.classList.toggle('shown', !online);
  };

  // -- vehicle and adapter ----------------------------------------------------------------------
  S.onState = function (key, value) {
    if (typeof key !== 'string' || !value || typeof value !== 'object') return;
    if (key === 'vehicle') {
      var speed = Number(value.speed_kmh);
      var v = {
        speed_kmh: isFinite(speed) && value.speed_kmh !== null ? Math.max(0, Math.round(speed)) : null,
        gear: typeof value.gear === 'string' ? (GEARS[value.gear.toUpperCase()] || S.text(value.gear, 4)) : null,
        ignition: typeof value.ignition === 'boolean' ? value.ignition : (value.ignition ? S.text(String(value.ignition), 12) : null),
        parked: value.parked === true,
        stale: value.stale === true,
      };
      state.vehicle = v;
      state.speedKmh = isFinite(speed) && value.speed_kmh !== null ? Math.max(0, speed) : null;
      var parts = [];
      if (v.stale) parts.push('No vehicle data');
      else {
        if (v.speed_kmh !== null) parts.push(v.speed_kmh + ' km/h');
        if (v.gear) parts.push(v.gear);
        if (v.parked) parts.push('Parked');
      }
      $('vehicle').textContent = parts.join(' \u00b7 ');
      $('vehicle').classList.toggle('moving', !v.stale && !v.parked && (v.speed_kmh || 0) > 0);
      $('vehicle').classList.toggle('stale', v.stale);
      if (typeof value.headlights === 'boolean') S.autoTheme(value.headlights ? 'night' : 'day');
      S.updateLockout();
    } else if (key === 'can.adapter') {
      var present = value.present === true || value.connected === true || value.online === true;
      var name = S.text(value.channel || value.name || '', 32);
      state.adapter = { present: present, name: name, error: S.text(value.error, 200, '') || null };
      $('adapter').textContent = present ? 'CAN' + (name ? ' ' + name : '') : 'No CAN adapter';
      $('adapter').setAttribute('aria-label', present ? 'CAN adapter connected' : 'CAN adapter not connected');
      $('adapter').classList.toggle('online', present);
      S.renderLauncher();
    } else if (key === 'clipboard.read' && typeof value.app_id === 'string') {
      S.showBanner(S.appName(value.app_id) + ' read the clipboard');  // the driver should know
    } else if (key === 'updates.applied' && Array.isArray(value.apps)) {
      S.onUpdatesApplied(value.apps);
      S.send('app.list', 'hub', {});  // new versions and names in the launcher
    } else if (Object.keys(state.states).length < 32 || key in state.states) {
      state.states[key] = value;
    }
  };

  // -- updates: a new version runs from the app's next start; an urgent one restarts it now, and
  // the driver is told either way when the app is open (it is never swapped silently)
  S.onUpdatesApplied = function (apps) {
    apps.slice(0, 50).forEach(function (u) {
      if (!u || typeof u.app_id !== 'string' || !state.running[u.app_id]) return;
      var name = S.appName(u.app_id), version = S.text(u.version, 40, '');
      if (u.urgent === true) {  // a notice, not the app banner: the driver may be on the launcher
        S.showNotice({
          id: 'update:' + u.app_id + ':' + version, app_id: u.app_id, level: 'warning', at: Date.now(),
          title: name + ' was updated to ' + version, body: 'An urgent fix: the app was restarted.',
        });
        S.restartApp(u.app_id);
      } else if (state.appId === u.app_id) {
        S.showBanner(name + ' ' + version + ' is ready: it starts the next time you open the app');
      }
    });
  };

  // -- clock: HH:MM, redrawn at each minute's turn -------------------------------------------
  S.tick = function () {
    var now = new Date();
    $('clock').textContent = String(now.getHours()).padStart(2, '0') + ':' + String(now.getMinutes()).padStart(2, '0');
    clearTimeout(S.tick.timer);
    S.tick.timer = setTimeout(S.tick, 60500 - now.getSeconds() * 1000 - now.getMilliseconds());
  };

  // -- themes: day and night; the switch chooses, headlights choose automatically --------------
  function applyTheme() {
    var night = state.theme === 'night';
    document.body.classList.toggle('night', night);
    document.body.classList.toggle('day', !night);
    var button = $('theme');
    button.textContent = night ? '\u2600' : '\u263E';
    button.setAttribute('aria-label', night ? 'Switch to day theme' : 'Switch to night theme');
    button.setAttribute('aria-pressed', night ? 'true' : 'false');
  }
  S.setTheme = function (theme) {
    if (theme !== 'day' && theme !== 'night') return;
    state.theme = state.themeChoice = theme;
    applyTheme();
  };
  // a headlights change decides again (the driver's last choice holds until the next change)
  S.autoTheme = function (theme) {
    if (state.autoTheme === theme) return;
    state.autoTheme = theme;
    state.themeChoice = null;
    state.theme = theme;
    applyTheme();
  };
  $('theme').addEventListener('click', function () { S.setTheme(state.theme === 'night' ? 'day' : 'night'); });
  applyTheme();
})();
