// vehicle-host shell page, notices part: notification banners (state "notifications.latest", published
// by the notifications plugin) and progress banners (any state key ending in ".progress" with
// {title, done, total, status: running|done|failed}). Load it after shell-status.js and before
// shell-main.js: it wraps S.onState, so every other state key still reaches the status bar.
// Everything shown is text (textContent), never markup; sizes are clamped; at most a few banners.
(function () {
  'use strict';
  var S = window.__vhShell;
  var MAX_NOTICES = 3;
  var MAX_PROGRESS = 4;
  var MAX_SEEN = 64;
  var STALE_MS = 120000;  // a notification older than this is a replay (shell reconnect), not news
  var HIDE_MS = { info: 8000, success: 8000, warning: 12000, error: 20000 };
  var DONE_MS = 5000;
  var FAILED_MS = 12000;
  var LEVEL_COLOUR = { info: 'var(--accent)', success: 'var(--ok)', warning: 'var(--warn)', error: 'var(--danger)' };
  var PROGRESS_KEY = /^[A-Za-z0-9_.:-]{1,120}\.progress$/;

  // below the navigation bar (back, info and close stay reachable) and below dialogs (z-index 50)
  var layer = S.el('div', 'notices');
  layer.id = 'notices';
  layer.setAttribute('role', 'region');
  layer.setAttribute('aria-label', 'Notifications');
  layer.setAttribute('aria-live', 'polite');
  document.body.appendChild(layer);

  var notices = [];    // {id, app_id, title, body, level, node, timer}, newest first
  var seen = [];       // ids already shown (a republished state is not shown twice)
  var progress = {};   // state key -> {title, done, total, status, node, timer}
  var progressOrder = [];

  function card(colour) {
    var node = S.el('div', 'notice-card');
    node.style.borderLeftColor = colour;
    return node;
  }

  function closeButton(label, onTap) {
    return S.button('\u2715', 'notice-close', label, onTap);
  }

  // -- notifications --------------------------------------------------------------------------
  function dropNotice(id) {
    for (var i = 0; i < notices.length; i++) {
      if (notices[i].id === id) {
        clearTimeout(notices[i].timer);
        notices[i].node.remove();
        notices.splice(i, 1);
        return;
      }
    }
  }

  function showNotice(value) {
    var id = S.text(value.id, 64);
    var at = Number(value.at);
    if (!id || seen.indexOf(id) >= 0) return;
    if (isFinite(at) && at < Date.now() - STALE_MS) return;
    seen.push(id);
    if (seen.length > MAX_SEEN) seen.shift();
    var level = Object.prototype.hasOwnProperty.call(LEVEL_COLOUR, value.level) ? value.level : 'info';
    var n = {
      id: id,
      app_id: S.text(value.app_id, 128),
      title: S.text(value.title, 80),
      body: S.text(value.body, 500),
      level: level,
    };
    n.node = card(LEVEL_COLOUR[level]);
    n.node.setAttribute('role', level === 'error' || level === 'warning' ? 'alert' : 'status');
    n.node.dataset.id = id;
    var box = S.el('div', 'notice-text');
    var from = S.el('div', 'notice-app', n.app_id ? S.appName(n.app_id) : '');
    var title = S.el('div', 'notice-title', n.title);
    var body = S.el('div', 'notice-body', n.body);
    box.appendChild(from);
    box.appendChild(title);
    if (n.body) box.appendChild(body);
    n.node.appendChild(box);
    n.node.appendChild(closeButton('Dismiss notification', function () { dropNotice(id); }));
    notices.unshift(n);
    layer.insertBefore(n.node, layer.firstChild);
    while (notices.length > MAX_NOTICES) dropNotice(notices[notices.length - 1].id);
    n.timer = setTimeout(function () { dropNotice(id); }, HIDE_MS[level]);
  }

  // -- progress -------------------------------------------------------------------------------
  function dropProgress(key) {
    var p = progress[key];
    if (!p) return;
    clearTimeout(p.timer);
    p.node.remove();
    delete progress[key];
    progressOrder.splice(progressOrder.indexOf(key), 1);
  }

  function count(value) {
    var n = Number(value);
    return typeof value === 'number' && isFinite(n) && n >= 0 ? n : null;
  }

  function showProgress(key, value) {
    var status = value.status === 'done' || value.status === 'failed' ? value.status : 'running';
    var p = progress[key];
    if (!p) {
      if (status !== 'running') return;  // an end without a start (a replay after a reconnect)
      if (progressOrder.length >= MAX_PROGRESS) {
        var ended = progressOrder.filter(function (k) { return progress[k].status !== 'running'; })[0];
        if (ended === undefined) return;  // the banners are full of running work: keep those
        dropProgress(ended);
      }
      p = progress[key] = { node: card('var(--accent)') };
      p.node.dataset.key = key;
      var box = S.el('div', 'notice-text');
      p.titleNode = S.el('div', 'progress-title');
      var track = S.el('div', 'progress-track');
      p.bar = S.el('div', 'progress-bar');
      p.bar.setAttribute('role', 'progressbar');
      p.bar.setAttribute('aria-valuemin', '0');
      p.bar.setAttribute('aria-valuemax', '100');
      track.appendChild(p.bar);
      p.statusNode = S.el('div', 'progress-status');
      box.appendChild(p.titleNode);
      box.appendChild(track);
      box.appendChild(p.statusNode);
      p.node.appendChild(box);
      p.node.appendChild(closeButton('Hide progress', function () { dropProgress(key); }));
      progressOrder.push(key);
      layer.appendChild(p.node);
    }
    var done = count(value.done);
    var total = count(value.total);
    var pct = status === 'done' ? 100 : total ? Math.min(100, Math.round(((done || 0) / total) * 100)) : null;
    p.title = S.text(value.title, 80) || key.slice(0, -'.progress'.length);
    p.done = done;
    p.total = total;
    p.status = status;
    p.pct = pct;
    p.titleNode.textContent = p.title;
    p.bar.style.width = (pct === null ? 100 : pct) + '%';
    p.bar.style.opacity = pct === null && status === 'running' ? '0.4' : '1';
    p.bar.style.background = status === 'failed' ? 'var(--danger)' : status === 'done' ? 'var(--ok)' : 'var(--accent)';
    p.node.style.borderLeftColor = p.bar.style.background;
    if (pct === null) p.bar.removeAttribute('aria-valuenow');
    else p.bar.setAttribute('aria-valuenow', String(pct));
    var amount = done !== null && total ? ' \u00b7 ' + Math.min(done, total) + ' of ' + total : '';
    p.statusNode.textContent = status === 'done' ? 'Done' + amount
      : status === 'failed' ? 'Failed' + amount
      : (pct === null ? 'Working\u2026' : pct + '%') + amount;
    p.node.setAttribute('role', status === 'failed' ? 'alert' : 'status');
    clearTimeout(p.timer);
    if (status !== 'running') p.timer = setTimeout(function () { dropProgress(key); }, status === 'done' ? DONE_MS : FAILED_MS);
  }

  // -- the hook: these keys are drawn here; every other key goes on to the status bar ------------
  var next = S.onState;
  S.onState = function (key, value) {
    if (typeof key === 'string' && value && typeof value === 'object' && !Array.isArray(value)) {
      if (key === 'notifications.latest') { showNotice(value); return; }
      if (PROGRESS_KEY.test(key)) { showProgress(key, value); return; }
    }
    next(key, value);
  };

  // the shell's own messages that must be seen wherever the driver is (e.g. an urgent app update)
  S.showNotice = showNotice;

  // what is on screen, for vh.snapshot() and the tests
  S.noticesSnapshot = function () {
    return {
      notifications: notices.map(function (n) {
        return { id: n.id, app_id: n.app_id, title: n.title, body: n.body, level: n.level };
      }),
      progress: progressOrder.map(function (k) {
        var p = progress[k];
        return { key: k, title: p.title, done: p.done, total: p.total, status: p.status, percent: p.pct };
      }),
    };
  };
})();
