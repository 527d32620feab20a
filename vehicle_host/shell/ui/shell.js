// vehicle-host shell page, part 1 (core): state, the bridge, requests with replies, helpers.
// Mini-app code never runs here; pages are host-rendered data inside sandboxed iframes.
// The parts share one namespace object while the page boots; shell-main.js removes it again.
// Parts: shell.js (core), shell-status.js (status bar, themes, link), shell-launcher.js (launcher,
// driving lockout), shell-pages.js (page stacks, chrome), shell-dialogs.js (ui.request),
// shell-info.js (app-info page), shell-main.js (messages from the hub, the `vh` object).
(function () {
  'use strict';
  var boot = window.VH_BOOT;
  var config = window.VH_CONFIG || {};
  delete window.VH_BOOT;
  delete window.VH_CONFIG;
  var token = boot.token;
  var COLOUR = /^(#[0-9a-fA-F]{3,8}|rgba?\(\s*[0-9.]+%?\s*,\s*[0-9.]+%?\s*,\s*[0-9.]+%?\s*(,\s*[0-9.]+\s*)?\)|transparent)$/;
  var MAX_PENDING = 64;

  function number(value, fallback, lo, hi) {
    var n = Number(value);
    return isFinite(n) && n >= lo && n <= hi ? n : fallback;
  }

  var S = window.__vhShell = {
    boot: boot,
    config: {
      lockoutKmh: number(config.lockoutKmh, 8, 0, 60),
      lockoutHysteresisKmh: number(config.lockoutHysteresisKmh, 3, 0, 20),
    },
    state: {
      apps: [], appId: null, online: false, everOnline: false, error: null, lastInspect: null,
      running: {},   // app id -> true while its worker runs (or a launch is on its way)
      recent: [],    // app ids, most recently opened first
      stacks: {},    // app id -> {pages: [...], tabBar, tabHidden, loading}
      info: {},      // app id -> app.info.result info (permissions for the launcher's rules)
      vehicle: null, adapter: null, states: {},
      lockout: { active: false, reason: null },
      theme: 'day', themeChoice: null,
    },
  };
  var state = S.state;
  var outbox = [];
  var bridgeReady = false;
  var nextRef = 1;
  var pending = {};  // ref -> callback(reply or null)

  S.$ = function (id) { return document.getElementById(id); };
  var $ = S.$;

  S.el = function (tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };

  // a button with a text and an accessible label (the label defaults to the text)
  S.button = function (text, cls, label, onTap) {
    var node = S.el('button', cls, text);
    if (label) node.setAttribute('aria-label', label);
    node.addEventListener('click', onTap);
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

  function post(raw) {
    if (!bridgeReady) { outbox.push(raw); return; }
    window.pywebview.api.send(token, raw);
  }

  S.send = function (type, target, payload) {
    post(JSON.stringify({ type: type, target: target, payload: payload }));
  };

  // a request whose reply (or null: no answer, link down) comes back to onReply
  S.request = function (type, target, payload, onReply) {
    if (Object.keys(pending).length >= MAX_PENDING) { onReply(null); return; }
    var ref = nextRef++;
    pending[ref] = onReply;
    post(JSON.stringify({ type: type, target: target, payload: payload, ref: ref }));
  };

  S.reply = function (m) {
    var onReply = pending[m.ref];
    delete pending[m.ref];
    if (!onReply) return;
    var ok = m.type !== 'link.noreply' && m.type !== 'link.dropped' && m.source === 'hub';
    onReply(ok ? (m.payload && typeof m.payload === 'object' ? m.payload : {}) : null);
  };

  window.addEventListener('pywebviewready', function () {
    bridgeReady = true;
    outbox.splice(0).forEach(function (raw) { window.pywebview.api.send(token, raw); });
  });

  S.VIEWS = ['launcher', 'app-view', 'info-view'];
  S.show = function (viewId) {
    if (S.view() !== viewId) $('notice').classList.remove('shown');  // it spoke of the view left behind
    S.VIEWS.forEach(function (id) { $(id).classList.toggle('active', id === viewId); });
  };
  S.view = function () {
    for (var i = 0; i < S.VIEWS.length; i++) if ($(S.VIEWS[i]).classList.contains('active')) return S.VIEWS[i];
    return null;
  };

  S.app = function (appId) {
    return state.apps.filter(function (a) { return a.id === appId; })[0] || null;
  };
  S.appName = function (appId) {
    var app = S.app(appId);
    return app ? S.text(app.name, 60, appId) : S.text(appId, 120);
  };

  // a line of text shown in box #id for ms milliseconds (a newer one replaces it and restarts the time)
  var hideTimers = {};
  function flash(id, text, ms) {
    var box = $(id);
    box.textContent = text;
    box.classList.add('shown');
    clearTimeout(hideTimers[id]);
    hideTimers[id] = setTimeout(function () { box.classList.remove('shown'); }, ms);
  }

  // about the app on screen (its script error, a clipboard read, its update)
  S.showBanner = function (text) { flash('banner', text, 8000); };
  // a short message from the shell itself (why a tile is unavailable, what a switch did)
  S.notice = function (text) { flash('notice', text, 5000); };
  S.noticeText = function () { return $('notice').classList.contains('shown') ? $('notice').textContent : null; };
})();
