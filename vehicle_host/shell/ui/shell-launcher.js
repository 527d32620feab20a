// vehicle-host shell page, part 3: the launcher (recent apps, groups of tiles, why a tile is
// unavailable) and the driving lockout.
//
// Driving lockout: above config.lockoutKmh (default 8 km/h) apps whose manifest is not drivingSafe
// are covered by "Paused while driving" (their frames and workers keep running underneath); the
// cover lifts below lockoutKmh - lockoutHysteresisKmh (3 km/h) or when the vehicle says parked.
// Stale or missing vehicle state counts as not moving: a silent CAN bus must not lock the driver of
// a parked car out of every app (the hub's parked_only rule still guards what needs a parked car).
(function () {
  'use strict';
  var S = window.__vhShell;
  var state = S.state;
  var $ = S.$;
  var GROUPS = [['driver', 'For the driver'], ['dealer', 'Dealer'], ['partner', 'Partners']];
  var MAX_INFO_FETCH = 64;

  // -- driving lockout --------------------------------------------------------------------------
  S.updateLockout = function () {
    var v = state.vehicle;
    var speed = state.speedKmh;
    var limit = S.config.lockoutKmh;
    var active;
    if (!v || v.stale || speed === null || speed === undefined || v.parked) active = false;
    else if (state.lockout.active) active = speed >= limit - S.config.lockoutHysteresisKmh;
    else active = speed > limit;
    var was = state.lockout.active;
    state.lockout = { active: active, reason: active ? 'Driving at ' + Math.round(speed) + ' km/h' : null };
    if (was === active) return;
    var appId = state.appId;
    if (appId !== null && S.view() === 'app-view' && !S.drivingSafe(appId)) {
      if (active) S.onAppHidden(appId);  // its dialogs wait, its toast goes
      else S.onAppShown(appId);
    }
    S.refresh();
    S.renderLauncher();
  };

  S.drivingSafe = function (appId) {
    var app = S.app(appId);
    return !!(app && app.drivingSafe === true);
  };
  S.locked = function (appId) { return state.lockout.active && !S.drivingSafe(appId); };

  function permissionsOf(app) {
    if (Array.isArray(app.permissions)) return app.permissions;
    var info = state.info[app.id];
    return info && Array.isArray(info.permissions) ? info.permissions.map(function (p) { return p && p.name; }) : [];
  }

  // why the app cannot be opened now, in words for the driver (null: it can)
  S.unavailable = function (app) {
    if (app.compatible === false) return 'Not compatible with this head unit \u2014 ask the publisher for an update';
    if (S.locked(app.id)) return 'Paused while driving \u2014 ' + S.text(app.name, 60) + ' opens when you stop';
    var needsCan = permissionsOf(app).some(function (p) { return typeof p === 'string' && p.indexOf('vehicle.diagnostics.') === 0; });
    if (needsCan && state.adapter && !state.adapter.present) return 'CAN adapter not connected';
    return null;
  };

  // app.list has no permissions: ask app.info for each app once, for the adapter rule and the info page
  S.fetchInfo = function () {
    state.apps.slice(0, MAX_INFO_FETCH).forEach(function (app) {
      if (Array.isArray(app.permissions) || state.info[app.id]) return;
      S.request('app.info', 'hub', { app_id: app.id }, function (reply) {
        if (reply && reply.info && typeof reply.info === 'object' && !reply.info.error) {
          state.info[app.id] = reply.info;
          S.renderLauncher();
        }
      });
    });
  };

  // -- recent apps ------------------------------------------------------------------------------
  S.touchRecent = function (appId) {
    state.recent = [appId].concat(state.recent.filter(function (id) { return id !== appId; })).slice(0, 16);
  };
  S.recentApps = function () {
    return state.recent.filter(function (id) { return state.running[id]; });
  };

  // -- launcher ---------------------------------------------------------------------------------
  // redrawn only when what it shows changes: state pushes arrive often, and a tile replaced between
  // press and release would swallow the driver's tap
  var drawn = null;
  S.renderLauncher = function () {
    var root = $('launcher');
    var key = JSON.stringify([state.online, state.everOnline, S.recentApps(), state.running,
      state.apps.map(function (a) { return [a.id, a.name, a.group, a.icon, S.unavailable(a)]; })]);
    if (key === drawn) return;
    drawn = key;
    var scroll = root.scrollTop;
    root.textContent = '';
    if (state.apps.length === 0) {
      var text = state.online ? 'No mini-apps are installed.' : state.everOnline ? 'Reconnecting\u2026' : 'Starting\u2026';
      root.appendChild(S.el('div', 'empty', text));
      return;
    }
    var recent = S.recentApps();
    if (recent.length) {
      root.appendChild(S.el('h2', '', 'Recent'));
      var strip = S.el('div', 'recent');
      recent.forEach(function (appId) { strip.appendChild(recentChip(appId)); });
      root.appendChild(strip);
    }
    GROUPS.forEach(function (group) {
      var apps = state.apps.filter(function (a) { return a.group === group[0]; });
      if (apps.length === 0) return;
      root.appendChild(S.el('h2', '', group[1]));
      var grid = S.el('div', 'grid');
      apps.forEach(function (app) { grid.appendChild(tile(app)); });
      root.appendChild(grid);
    });
    root.scrollTop = scroll;
  };

  function recentChip(appId) {
    var name = S.appName(appId);
    var chip = S.el('div', 'chip' + (S.locked(appId) ? ' disabled' : ''));
    var open = S.button(name, 'chip-open', 'Open ' + name, function () { S.tapApp(appId); });
    open.dataset.recentId = appId;
    chip.appendChild(open);
    var close = S.button('\u2715', 'chip-close', 'Close ' + name, function () { S.closeApp(appId); });
    close.dataset.closeId = appId;
    chip.appendChild(close);
    return chip;
  }

  function tile(app) {
    var reason = S.unavailable(app);
    var wrap = S.el('div', 'tile-wrap');
    var node = S.el('button', 'tile' + (reason ? ' disabled' : '') + (state.running[app.id] ? ' running' : ''));
    node.id = 'tile-' + app.id;
    node.dataset.appId = app.id;
    var name = S.text(app.name, 60, app.id);
    node.setAttribute('aria-label', reason ? name + ' (unavailable: ' + reason + ')' : name);
    if (reason) node.setAttribute('aria-disabled', 'true');
    var icon = S.el('div', 'icon');
    if (typeof app.icon === 'string' && app.icon.indexOf('data:image/') === 0) {
      var img = document.createElement('img');
      img.src = app.icon;
      img.alt = '';
      icon.appendChild(img);
    } else {
      icon.textContent = (name || '?').charAt(0).toUpperCase();
    }
    node.appendChild(icon);
    node.appendChild(S.el('div', 'name', name));
    if (reason) node.appendChild(S.el('div', 'reason', reason.split(' \u2014 ')[0]));
    longPress(node, function () { S.openInfo(app.id); });
    node.addEventListener('click', function () {
      if (node.dataset.longPressed) { delete node.dataset.longPressed; return; }
      S.tapApp(app.id);
    });
    wrap.appendChild(node);
    var info = S.button('', 'tile-info', 'About ' + name, function () { S.openInfo(app.id); });
    info.appendChild(S.el('span', 'i-mark', 'i'));
    info.dataset.infoId = app.id;
    wrap.appendChild(info);
    return wrap;
  }

  function longPress(node, action) {
    var timer = 0;
    node.addEventListener('pointerdown', function () {
      clearTimeout(timer);
      timer = setTimeout(function () { node.dataset.longPressed = '1'; action(); }, 700);
    });
    ['pointerup', 'pointerleave', 'pointercancel'].forEach(function (type) {
      node.addEventListener(type, function () { clearTimeout(timer); });
    });
  }

  // a tap on a tile or a recent app: open it, or say why not
  S.tapApp = function (appId) {
    var app = S.app(appId);
    var reason = app ? S.unavailable(app) : null;
    if (reason && !(state.running[appId] && !S.locked(appId))) {
      S.notice(reason);
      return;
    }
    S.openApp(appId);
  };
})();
