// vehicle-host shell page: launcher, page chrome, one sandboxed iframe per open page.
// Mini-app code never runs here; pages are host-rendered data inside the iframe.
(function () {
  'use strict';
  var boot = window.VH_BOOT;
  delete window.VH_BOOT;
  var token = boot.token;
  var MAX_EVENT_CHARS = 16000;
  var GROUPS = [['driver', 'For the driver'], ['dealer', 'Dealer'], ['partner', 'Partners']];

  var state = { apps: [], appId: null, page: null, online: false, error: null, lastInspect: null };
  var outbox = [];
  var bridgeReady = false;

  function $(id) { return document.getElementById(id); }

  function send(type, target, payload) {
    var raw = JSON.stringify({ type: type, target: target, payload: payload });
    if (!bridgeReady) { outbox.push(raw); return; }
    window.pywebview.api.send(token, raw);
  }
  window.addEventListener('pywebviewready', function () {
    bridgeReady = true;
    outbox.splice(0).forEach(function (raw) { window.pywebview.api.send(token, raw); });
  });

  function show(viewId) {
    ['launcher', 'app-view'].forEach(function (id) { $(id).classList.toggle('active', id === viewId); });
  }

  // -- launcher ---------------------------------------------------------------------------------
  function renderLauncher() {
    var root = $('launcher');
    root.textContent = '';
    if (state.apps.length === 0) {
      var empty = document.createElement('div');
      empty.className = 'empty';
      empty.textContent = state.online ? 'No mini-apps are installed.' : 'Waiting for the hub...';
      root.appendChild(empty);
      return;
    }
    GROUPS.forEach(function (group) {
      var apps = state.apps.filter(function (a) { return a.group === group[0]; });
      if (apps.length === 0) return;
      var heading = document.createElement('h2');
      heading.textContent = group[1];
      root.appendChild(heading);
      var grid = document.createElement('div');
      grid.className = 'grid';
      apps.forEach(function (app) { grid.appendChild(tile(app)); });
      root.appendChild(grid);
    });
  }

  function tile(app) {
    var el = document.createElement('button');
    el.className = 'tile' + (app.compatible ? '' : ' disabled');
    el.id = 'tile-' + app.id;
    el.dataset.appId = app.id;
    var icon = document.createElement('div');
    icon.className = 'icon';
    if (app.icon && app.icon.indexOf('data:image/') === 0) {
      var img = document.createElement('img');
      img.src = app.icon;
      img.alt = '';
      icon.appendChild(img);
    } else {
      icon.textContent = (app.name || '?').charAt(0).toUpperCase();
    }
    var name = document.createElement('div');
    name.className = 'name';
    name.textContent = app.name;
    el.appendChild(icon);
    el.appendChild(name);
    el.addEventListener('click', function () { openApp(app.id); });
    return el;
  }

  // -- app view ---------------------------------------------------------------------------------
  function appName(appId) {
    var app = state.apps.filter(function (a) { return a.id === appId; })[0];
    return app ? app.name : appId;
  }

  function openApp(appId) {
    closeFrame();
    state.appId = appId;
    state.error = null;
    $('title').textContent = appName(appId);
    $('app-error').classList.remove('shown');
    $('app-loading').classList.add('shown');
    $('banner').classList.remove('shown');
    show('app-view');
    send('app.launch', 'hub', { app_id: appId });
  }

  function goHome() {
    if (state.appId !== null) send('app.close', 'hub', { app_id: state.appId });
    closeFrame();
    state.appId = null;
    show('launcher');
  }

  function closeFrame() {
    if (state.page && state.page.frame) state.page.frame.remove();
    state.page = null;
  }

  function rendererDocument() {
    return '<!doctype html><html><head><meta charset="utf-8">' +
      '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; ' +
      'img-src data:; script-src \'' + boot.rendererHash + '\'">' +
      '</head><body><script>' + boot.renderer + '<\/script></body></html>';
  }

  function openPage(p) {
    if (p.app_id !== state.appId) return;
    closeFrame();
    var frame = document.createElement('iframe');
    frame.setAttribute('sandbox', 'allow-scripts');
    frame.setAttribute('referrerpolicy', 'no-referrer');
    var page = { id: p.page_id, route: p.route, tree: p.tree, css: p.css, data: null, pending: [],
                 frame: frame, loaded: false, rendered: false, painted: 0 };
    state.page = page;
    $('title').textContent = p.title || appName(p.app_id);
    frame.addEventListener('load', function () { page.loaded = true; flush(page); });
    frame.srcdoc = rendererDocument();
    $('frame-host').appendChild(frame);
  }

  function post(page, message) { page.frame.contentWindow.postMessage(message, '*'); }

  function flush(page) {
    if (!page.loaded || page.data === null) return;
    if (!page.rendered) {
      post(page, { type: 'render', tree: page.tree, data: page.data, css: page.css });
      page.rendered = true;
    }
    page.pending.splice(0).forEach(function (diff) { post(page, { type: 'patch', diff: diff }); });
  }

  function pageFor(source, pageId) {
    var page = state.page;
    if (!page || page.id !== pageId || source !== 'app:' + state.appId) return null;
    return page;
  }

  function showError(title, text, canRestart) {
    state.error = { title: title, text: text };
    closeFrame();
    $('app-loading').classList.remove('shown');
    $('error-title').textContent = title;
    $('error-text').textContent = text;
    $('error-restart').style.display = canRestart ? '' : 'none';
    $('app-error').classList.add('shown');
  }

  function showBanner(text) {
    var banner = $('banner');
    banner.textContent = text;
    banner.classList.add('shown');
    clearTimeout(showBanner.timer);
    showBanner.timer = setTimeout(function () { banner.classList.remove('shown'); }, 8000);
  }

  function onAppError(p) {
    if (p.app_id !== state.appId) return;
    var name = appName(p.app_id);
    if (p.kind === 'script') {
      var where = p.file ? ' (' + p.file + ':' + p.line + ')' : '';
      if (state.page && state.page.data === null) {
        showError(name + ' could not start', p.message + where, true);  // nothing was ever shown
      } else {
        showBanner(name + ' hit an error' + where + ': ' + p.message);
      }
    } else if (p.kind === 'crashed') {
      showError(name + ' stopped', p.message, true);
    } else if (p.kind === 'incompatible') {
      showError(name + ' is not compatible with this head unit', p.message, false);
    } else if (p.kind === 'invalid') {
      showError(name + ' failed verification', p.message + ' Contact the publisher.', false);
    } else {
      showError(name + ' is not available', p.message, false);
    }
  }

  // -- messages from the hub (batched by the shell's dispatcher) ------------------------------
  function receiveOne(m) {
    var p = m.payload;
    if (m.type === 'link.online') {
      state.online = true;
      $('hub-state').textContent = 'Online';
      $('hub-state').classList.add('online');
    } else if (m.type === 'link.offline') {
      state.online = false;
      $('hub-state').textContent = 'Hub unreachable, reconnecting...';
      $('hub-state').classList.remove('online');
    } else if (m.type === 'app.list.result') {
      state.apps = p.apps;
      renderLauncher();
    } else if (m.type === 'page.open') {
      openPage(p);
    } else if (m.type === 'page.render') {
      var page = pageFor(m.source, p.page_id);
      if (page) { page.data = p.data; $('app-loading').classList.remove('shown'); flush(page); }
    } else if (m.type === 'page.setData') {
      var target = pageFor(m.source, p.page_id);
      if (target) { target.pending.push(p.diff); flush(target); }
    } else if (m.type === 'app.error') {
      onAppError(p);
    }
  }

  window.vh = {
    receive: function (batch) {
      batch.forEach(function (m) {
        try { receiveOne(m); } catch (e) { console.error('vehicle-host shell:', e); }
      });
    },
    launch: openApp,
    home: goHome,
    inspect: function () {
      state.lastInspect = null;
      if (state.page && state.page.loaded) post(state.page, { type: 'inspect', id: Date.now() });
    },
    snapshot: function () {
      var frameRect = state.page ? state.page.frame.getBoundingClientRect() : null;
      return {
        view: $('launcher').classList.contains('active') ? 'launcher' : 'app',
        appIds: state.apps.map(function (a) { return a.id; }),
        appId: state.appId, online: state.online, apps: state.apps.length,
        pageId: state.page ? state.page.id : null, painted: state.page ? state.page.painted : 0,
        error: state.error, banner: $('banner').classList.contains('shown') ? $('banner').textContent : null,
        frame: frameRect ? { x: frameRect.left, y: frameRect.top, w: frameRect.width, h: frameRect.height } : null,
        inspect: state.lastInspect,
      };
    },
  };

  // -- messages from the page's iframe ------------------------------------------------------------
  window.addEventListener('message', function (event) {
    var page = state.page;
    if (!page || event.source !== page.frame.contentWindow) return;
    var m = event.data;
    if (!m || typeof m !== 'object') return;
    if (m.type === 'painted') {
      page.painted = Number(m.seq) || 0;
    } else if (m.type === 'inspect.result') {
      state.lastInspect = { text: String(m.text || ''), nodes: Array.isArray(m.nodes) ? m.nodes : [] };
    } else if (m.type === 'event' && typeof m.handler === 'string' && m.handler.length <= 128) {
      var detail;
      try { detail = JSON.stringify(m.event || {}); } catch (e) { return; }
      if (detail.length > MAX_EVENT_CHARS) return;
      send('page.event', 'app:' + state.appId, { page_id: page.id, handler: m.handler, event: JSON.parse(detail) });
    }
  });

  $('back').addEventListener('click', goHome);
  $('error-home').addEventListener('click', goHome);
  $('error-restart').addEventListener('click', function () { if (state.appId) openApp(state.appId); });

  function tick() {
    var now = new Date();
    $('clock').textContent = String(now.getHours()).padStart(2, '0') + ':' + String(now.getMinutes()).padStart(2, '0');
  }
  tick();
  setInterval(tick, 10000);
  renderLauncher();
})();
