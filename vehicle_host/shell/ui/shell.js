// vehicle-host shell page, part 1 of 4 (core): state, the bridge, helpers, launcher, status bar.
// Mini-app code never runs here; pages are host-rendered data inside sandboxed iframes.
// The parts share one namespace object while the page boots; shell-main.js removes it again.
(function () {
  'use strict';
  var boot = window.VH_BOOT;
  delete window.VH_BOOT;
  var token = boot.token;
  var GROUPS = [['driver', 'For the driver'], ['dealer', 'Dealer'], ['partner', 'Partners']];
  var COLOUR = /^(#[0-9a-fA-F]{3,8}|rgba?\(\s*[0-9.]+%?\s*,\s*[0-9.]+%?\s*,\s*[0-9.]+%?\s*(,\s*[0-9.]+\s*)?\)|transparent)$/;

  var S = window.__vhShell = {
    boot: boot,
    state: {
      apps: [], appId: null, online: false, error: null, lastInspect: null,
      running: {},   // app id -> true while its worker runs (or a launch is on its way)
      stacks: {},    // app id -> {pages: [...], tabBar, tabHidden, loading}
      vehicle: null, adapter: null, states: {},
    },
  };
  var state = S.state;
  var outbox = [];
  var bridgeReady = false;

  S.$ = function (id) { return document.getElementById(id); };
  var $ = S.$;

  S.el = function (tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  // a string of at most n characters (anything else becomes the fallback)
  S.text = function (value, n, fallback) {
    if (typeof value === 'number' && isFinite(value)) value = String(value);
    if (typeof value !== 'string') return fallback === undefined ? '' : fallback;
    return value.length > n ? value.slice(0, n - 1) + '\u2026' : value;
  };

  // a CSS colour from app data, or null: only #hex, rgb()/rgba() and 'transparent' pass
  S.colour = function (value) {
    return typeof value === 'string' && value.length <= 40 && COLOUR.test(value.trim()) ? value.trim() : null;
  };

  S.send = function (type, target, payload) {
    var raw = JSON.stringify({ type: type, target: target, payload: payload });
    if (!bridgeReady) { outbox.push(raw); return; }
    window.pywebview.api.send(token, raw);
  };
  window.addEventListener('pywebviewready', function () {
    bridgeReady = true;
    outbox.splice(0).forEach(function (raw) { window.pywebview.api.send(token, raw); });
  });

  S.show = function (viewId) {
    ['launcher', 'app-view'].forEach(function (id) { $(id).classList.toggle('active', id === viewId); });
  };

  S.appName = function (appId) {
    var app = state.apps.filter(function (a) { return a.id === appId; })[0];
    return app ? app.name : appId;
  };

  S.showBanner = function (text) {
    var banner = $('banner');
    banner.textContent = text;
    banner.classList.add('shown');
    clearTimeout(S.showBanner.timer);
    S.showBanner.timer = setTimeout(function () { banner.classList.remove('shown'); }, 8000);
  };

  // -- launcher ---------------------------------------------------------------------------------
  S.renderLauncher = function () {
    var root = $('launcher');
    root.textContent = '';
    if (state.apps.length === 0) {
      root.appendChild(S.el('div', 'empty', state.online ? 'No mini-apps are installed.' : 'Waiting for the hub...'));
      return;
    }
    GROUPS.forEach(function (group) {
      var apps = state.apps.filter(function (a) { return a.group === group[0]; });
      if (apps.length === 0) return;
      root.appendChild(S.el('h2', '', group[1]));
      var grid = S.el('div', 'grid');
      apps.forEach(function (app) { grid.appendChild(tile(app)); });
      root.appendChild(grid);
    });
  };

  function tile(app) {
    var node = S.el('button', 'tile' + (app.compatible ? '' : ' disabled') + (state.running[app.id] ? ' running' : ''));
    node.id = 'tile-' + app.id;
    node.dataset.appId = app.id;
    var icon = S.el('div', 'icon');
    if (app.icon && app.icon.indexOf('data:image/') === 0) {
      var img = document.createElement('img');
      img.src = app.icon;
      img.alt = '';
      icon.appendChild(img);
    } else {
      icon.textContent = (app.name || '?').charAt(0).toUpperCase();
    }
    node.appendChild(icon);
    node.appendChild(S.el('div', 'name', app.name));
    node.addEventListener('click', function () { S.openApp(app.id); });
    return node;
  }

  // -- status bar -------------------------------------------------------------------------------
  S.setOnline = function (online) {
    state.online = online;
    $('hub-state').textContent = online ? 'Online' : 'Hub unreachable, reconnecting...';
    $('hub-state').classList.toggle('online', online);
  };

  var GEARS = { P: 'P', R: 'R', N: 'N', D: 'D' };

  S.onState = function (key, value) {
    if (typeof key !== 'string' || !value || typeof value !== 'object') return;
    if (key === 'vehicle') {
      var speed = Number(value.speed_kmh);
      var v = {
        speed_kmh: isFinite(speed) ? Math.max(0, Math.round(speed)) : null,
        gear: typeof value.gear === 'string' ? (GEARS[value.gear.toUpperCase()] || S.text(value.gear, 4)) : null,
        ignition: typeof value.ignition === 'boolean' ? value.ignition : (value.ignition ? S.text(String(value.ignition), 12) : null),
        parked: value.parked === true,
      };
      state.vehicle = v;
      var parts = [];
      if (v.speed_kmh !== null) parts.push(v.speed_kmh + ' km/h');
      if (v.gear) parts.push(v.gear);
      if (v.parked) parts.push('Parked');
      $('vehicle').textContent = parts.join(' \u00b7 ');
      $('vehicle').classList.toggle('moving', !v.parked && (v.speed_kmh || 0) > 0);
    } else if (key === 'can.adapter') {
      var present = value.present === true || value.connected === true || value.online === true;
      state.adapter = { present: present, name: S.text(value.name || value.channel || '', 32) };
      $('adapter').textContent = present ? 'CAN' + (state.adapter.name ? ' ' + state.adapter.name : '') : 'No CAN adapter';
      $('adapter').classList.toggle('online', present);
    } else if (key === 'clipboard.read' && typeof value.app_id === 'string') {
      S.showBanner(S.appName(value.app_id) + ' read the clipboard');  // the driver should know
    } else if (Object.keys(state.states).length < 32 || key in state.states) {
      state.states[key] = value;
    }
  };

  S.tick = function () {
    var now = new Date();
    $('clock').textContent = String(now.getHours()).padStart(2, '0') + ':' + String(now.getMinutes()).padStart(2, '0');
  };
})();
