// vehicle-host shell page, part 4: each app's page stack (one sandboxed iframe per page), the
// chrome around it (navigation bar, back button, tab bar), app switching and the frames' messages.
(function () {
  'use strict';
  var S = window.__vhShell;
  var state = S.state;
  var $ = S.$;
  var MAX_EVENT_CHARS = 16000;
  var MAX_FRAMES_PER_APP = 12;  // the hub allows 10; anything beyond that is dropped from the bottom
  var HANDLER = /^\$?[A-Za-z_][A-Za-z0-9_$.]{0,127}$/;
  var COMPONENT = /^[A-Za-z0-9_.:-]{1,64}$/;
  var OPEN_TYPES = ['navigate', 'redirect', 'switchTab', 'reLaunch', 'navigateBack', 'exit'];

  function routeOf(value) { return typeof value === 'string' ? value.replace(/^\/+/, '').split('?')[0] : ''; }

  S.stack = function (appId) {
    var st = state.stacks[appId];
    if (!st) st = state.stacks[appId] = { pages: [], tabBar: null, tabHidden: false, loading: null };
    return st;
  };
  S.top = function (appId) {
    var st = state.stacks[appId];
    return st && st.pages.length ? st.pages[st.pages.length - 1] : null;
  };
  S.currentPage = function () { return state.appId === null ? null : S.top(state.appId); };

  function rendererDocument() {
    var boot = S.boot;
    return '<!doctype html><html><head><meta charset="utf-8">' +
      '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; ' +
      'img-src data:; script-src \'' + boot.rendererHash + '\'">' +
      '</head><body><script>' + boot.renderer + '<\/script></body></html>';
  }

  function removePage(page) {
    if (page.frame) page.frame.remove();
    page.frame = null;
  }

  function post(page, message) {
    if (page.frame && page.frame.contentWindow) page.frame.contentWindow.postMessage(message, '*');
  }

  // the renderer's protocol: see the header of renderer-core.js
  S.flush = function (page) {
    if (!page.loaded || page.data === null || !page.frame) return;
    if (!page.rendered) {
      post(page, { type: 'render', tree: page.tree, data: page.data, css: page.css, templates: page.templates,
                   components: page.components, window: page.window });
      page.rendered = true;
    }
    page.pending.splice(0).forEach(function (item) {
      var message = { type: 'patch', diff: item.diff };
      if (item.component) message.component = item.component;
      post(page, message);
    });
  };

  // -- hub -> shell: pages ----------------------------------------------------------------------
  S.openPage = function (p) {
    if (typeof p.app_id !== 'string' || typeof p.page_id !== 'number') return;
    var appId = p.app_id;
    var st = S.stack(appId);
    var mode = p.mode === 'push' || p.mode === 'replace' ? p.mode : 'reset';
    if (mode === 'reset') st.pages.splice(0).forEach(removePage);
    if (mode === 'replace' && st.pages.length) removePage(st.pages.pop());
    while (st.pages.length >= MAX_FRAMES_PER_APP) removePage(st.pages.shift());
    if (p.tab_bar && typeof p.tab_bar === 'object') setTabBar(st, p.tab_bar);
    state.running[appId] = true;
    var win = p.window && typeof p.window === 'object' ? p.window : {};
    var style = win.navigationBarTextStyle;
    var frame = document.createElement('iframe');
    frame.setAttribute('sandbox', 'allow-scripts');
    frame.setAttribute('referrerpolicy', 'no-referrer');
    var page = {
      id: p.page_id, appId: appId, route: routeOf(p.route),
      title: S.text(win.navigationBarTitleText, 100, '') || S.text(p.title, 100, '') || S.appName(appId),
      nav: { bg: S.colour(win.navigationBarBackgroundColor),
             front: style === 'black' ? '#000000' : style === 'white' ? '#ffffff' : null, loading: false },
      tree: p.tree, css: typeof p.css === 'string' ? p.css : '', templates: p.templates || {},
      components: p.components || {}, window: win, data: null, pending: [], frame: frame, loaded: false, rendered: false,
      painted: 0, paintedSent: false,
    };
    st.pages.push(page);
    frame.addEventListener('load', function () { page.loaded = true; S.flush(page); });
    frame.srcdoc = rendererDocument();
    $('frame-host').appendChild(frame);
    if (appId === state.appId) state.error = null;
    S.refresh();
  };

  S.closePages = function (p) {
    var st = state.stacks[p.app_id];
    if (!st || !Array.isArray(p.page_ids)) return;
    st.pages = st.pages.filter(function (page) {
      if (p.page_ids.indexOf(page.id) < 0) return true;
      removePage(page);
      return false;
    });
    if (typeof p.shown === 'number') {
      var shown = st.pages.filter(function (page) { return page.id === p.shown; })[0];
      if (shown) { st.pages.splice(st.pages.indexOf(shown), 1); st.pages.push(shown); }
    }
    S.refresh();
  };

  S.pageFor = function (source, pageId) {
    if (typeof source !== 'string' || source.indexOf('app:') !== 0) return null;
    var st = state.stacks[source.slice(4)];
    if (!st) return null;
    return st.pages.filter(function (page) { return page.id === pageId; })[0] || null;
  };

  // -- chrome -----------------------------------------------------------------------------------
  S.refresh = function () {
    var appId = state.appId;
    var top = S.currentPage();
    Object.keys(state.stacks).forEach(function (id) {
      state.stacks[id].pages.forEach(function (page) {
        if (page.frame) page.frame.classList.toggle('top', page === top && !state.error);
      });
    });
    if (appId === null) return;
    var navbar = $('navbar');
    $('title').textContent = top ? top.title : S.appName(appId);
    navbar.style.background = top && top.nav.bg ? top.nav.bg : '';
    navbar.style.color = top && top.nav.front ? top.nav.front : '';
    $('nav-spinner').classList.toggle('shown', !!(top && top.nav.loading));
    var st = state.stacks[appId];
    $('back').setAttribute('aria-label', st && st.pages.length > 1 ? 'Back' : 'Home');
    renderTabBar(st, top);
    var locked = S.locked(appId) && !state.error;
    $('lockout').classList.toggle('shown', locked);
    $('lockout-text').textContent = S.appName(appId) + ' continues when you stop.';
    $('app-loading').classList.toggle('shown', !locked && !state.error && (!top || top.data === null));
    $('app-error').classList.toggle('shown', !!state.error);
  };

  // -- tab bar ----------------------------------------------------------------------------------
  function setTabBar(st, config) {
    var list = Array.isArray(config.list) ? config.list.slice(0, 5) : [];
    var old = st.tabBar;
    var items = list.map(function (item, i) {
      var before = old && old.items[i] && old.items.length === list.length ? old.items[i] : null;
      return { pagePath: routeOf(item && item.pagePath), text: S.text(item && item.text, 20, ''),
               badge: before ? before.badge : null, dot: before ? before.dot : false };
    });
    st.tabBar = {
      items: items,
      color: S.colour(config.color), selectedColor: S.colour(config.selectedColor),
      backgroundColor: S.colour(config.backgroundColor),
    };
    if (old) {  // styles set at run time survive a reset
      ['color', 'selectedColor', 'backgroundColor'].forEach(function (k) { if (old[k + 'Set']) st.tabBar[k] = old[k]; });
    }
  }

  function selectedTab(st, top) {
    if (!st || !st.tabBar || !top) return -1;
    for (var i = 0; i < st.tabBar.items.length; i++) if (st.tabBar.items[i].pagePath === top.route) return i;
    return -1;
  }

  function renderTabBar(st, top) {
    var bar = $('tabbar');
    var selected = selectedTab(st, top);
    var shown = selected >= 0 && !st.tabHidden;
    $('app-view').classList.toggle('with-tabs', shown);
    bar.textContent = '';
    if (!shown) return;
    var tb = st.tabBar;
    bar.style.background = tb.backgroundColor || '';
    tb.items.forEach(function (item, i) {
      var button = S.el('button', i === selected ? 'selected' : '', item.text);
      button.dataset.index = String(i);
      var colour = i === selected ? (tb.selectedColor || '#ffffff') : tb.color;
      if (colour) button.style.color = colour;
      if (item.badge !== null) button.appendChild(S.el('span', 'badge', item.badge));
      else if (item.dot) button.appendChild(S.el('span', 'dot'));
      button.addEventListener('click', function () { tapTab(i); });
      bar.appendChild(button);
    });
  }

  function tapTab(index) {
    var appId = state.appId;
    var st = state.stacks[appId];
    var top = S.top(appId);
    if (!st || !st.tabBar || !top || index === selectedTab(st, top)) return;
    S.send('page.event', 'app:' + appId, { page_id: top.id, handler: '$switchTab',
                                           event: { url: '/' + st.tabBar.items[index].pagePath } });
  }

  var INDEXED = ['setBadge', 'removeBadge', 'showRedDot', 'hideRedDot', 'setItem'];

  S.tabBarOp = function (appId, params) {
    var st = state.stacks[appId];
    if (!st || !st.tabBar) return { error: 'This app has no tab bar (add tabBar to app.json).' };
    var tb = st.tabBar;
    var op = params.op;
    var item = null;
    if (INDEXED.indexOf(op) >= 0) {
      if (typeof params.index !== 'number' || params.index % 1 !== 0 || !tb.items[params.index]) {
        return { error: 'tab index ' + params.index + ' is out of range (0..' + (tb.items.length - 1) + ').' };
      }
      item = tb.items[params.index];
    }
    if (op === 'setBadge') { item.badge = S.text(params.text, 4, '') || '\u2026'; item.dot = false; }
    else if (op === 'removeBadge') item.badge = null;
    else if (op === 'showRedDot') { item.dot = true; item.badge = null; }
    else if (op === 'hideRedDot') item.dot = false;
    else if (op === 'setItem') { if (typeof params.text === 'string') item.text = S.text(params.text, 20, item.text); }
    else if (op === 'setStyle') {
      ['color', 'selectedColor', 'backgroundColor'].forEach(function (k) {
        var c = S.colour(params[k]);
        if (c) { tb[k] = c; tb[k + 'Set'] = true; }
      });
    } else if (op === 'show') st.tabHidden = false;
    else if (op === 'hide') st.tabHidden = true;
    else return { error: 'unknown tabBar op ' + S.text(String(op), 32) };
    S.refresh();
    return {};
  };

  S.tabBarSnapshot = function () {
    var st = state.appId === null ? null : state.stacks[state.appId];
    if (!st || !st.tabBar) return null;
    var selected = selectedTab(st, S.currentPage());
    return {
      shown: selected >= 0 && !st.tabHidden, selected: selected, hidden: st.tabHidden,
      items: st.tabBar.items.map(function (i) { return { pagePath: i.pagePath, text: i.text, badge: i.badge, dot: i.dot }; }),
      color: st.tabBar.color, selectedColor: st.tabBar.selectedColor, backgroundColor: st.tabBar.backgroundColor,
    };
  };

  // -- navigation bar ---------------------------------------------------------------------------
  S.navBarOp = function (appId, params) {
    var top = S.top(appId);
    if (!top) return { error: 'The app has no page open.' };
    var op = params.op;
    if (op === 'setTitle') top.title = S.text(params.title, 100, top.title);
    else if (op === 'setColor') {
      if (params.frontColor !== undefined) {
        var front = String(params.frontColor).toLowerCase();
        if (front !== '#ffffff' && front !== '#000000') return { error: 'frontColor must be #ffffff or #000000.' };
        top.nav.front = front;
      }
      if (params.backgroundColor !== undefined) {
        var bg = S.colour(params.backgroundColor);
        if (!bg) return { error: 'backgroundColor must be a hex colour such as #1f2a37.' };
        top.nav.bg = bg;
      }
    } else if (op === 'showLoading') top.nav.loading = true;
    else if (op === 'hideLoading') top.nav.loading = false;
    else return { error: 'unknown navigationBar op ' + S.text(String(op), 32) };
    S.refresh();
    return {};
  };

  // -- apps: open, leave, back, close -----------------------------------------------------------
  S.openApp = function (appId) {
    if (typeof appId !== 'string') return;
    if (state.appId !== null && state.appId !== appId) S.goHome();
    var again = state.appId === appId;
    state.appId = appId;
    state.error = null;
    S.touchRecent(appId);
    $('banner').classList.remove('shown');
    S.show('app-view');
    var top = S.top(appId);
    if (!again && state.running[appId] && top) {
      S.send('app.visibility', 'hub', { app_id: appId, visible: true });
    } else if (!again && !top) {  // not running, or a launch that never produced a page: (re)launch
      S.dropApp(appId);
      state.running[appId] = true;
      S.send('app.launch', 'hub', { app_id: appId });
    }
    S.refresh();
    S.onAppShown(appId);
  };

  S.goHome = function () {
    var appId = state.appId;
    if (appId !== null) {
      S.onAppHidden(appId);
      if (state.running[appId] && S.top(appId)) S.send('app.visibility', 'hub', { app_id: appId, visible: false });
    }
    state.appId = null;
    state.error = null;
    S.show('launcher');
    S.refresh();
    S.renderLauncher();
  };

  S.back = function () {
    var appId = state.appId;
    if (appId === null) return;
    var st = state.stacks[appId];
    if (st && st.pages.length > 1 && !state.error) S.send('app.back', 'hub', { app_id: appId });
    else S.goHome();
  };

  // forget an app's pages and dialogs (its worker is gone or going; quiet: so is the hub that asked)
  S.dropApp = function (appId, quiet) {
    var st = state.stacks[appId];
    if (st) st.pages.splice(0).forEach(removePage);
    delete state.stacks[appId];
    delete state.running[appId];
    S.cancelDialogs(appId, quiet);
  };

  // the hub came back without these apps (it restarted): launch them again, keep the one on screen
  S.relaunchLost = function (workers) {
    if (!Array.isArray(workers)) return [];
    var lost = Object.keys(state.running).filter(function (id) { return state.running[id] && workers.indexOf(id) < 0; });
    lost.forEach(function (appId) {
      S.dropApp(appId, true);
      state.running[appId] = true;
      S.send('app.launch', 'hub', { app_id: appId });
    });
    if (state.appId !== null && lost.indexOf(state.appId) >= 0) state.error = null;
    S.refresh();
    return lost;
  };

  S.closeApp = function (appId) {
    if (typeof appId !== 'string') return;
    if (!state.running[appId]) {  // already gone (e.g. crashed): just leave
      if (state.appId === appId) S.goHome();
      return;
    }
    S.send('app.close', 'hub', { app_id: appId });
    S.dropApp(appId);
    if (state.appId === appId) S.goHome();
    else S.renderLauncher();
  };

  // exitMiniProgram, restartMiniProgram, navigateToMiniProgram, navigateBackMiniProgram: only the
  // app on screen may switch apps, and only to an installed one; the switch happens after the answer
  S.appOp = function (appId, params) {
    var op = params.op;
    if (state.appId !== appId) return { error: 'only the app on screen can do this' };
    if (op === 'app.exit') {
      setTimeout(function () { S.closeApp(appId); }, 0);
    } else if (op === 'app.restart') {
      setTimeout(function () { S.restartApp(appId); }, 0);
    } else if (op === 'app.open') {
      var target = params.appId;
      var known = state.apps.some(function (a) { return a.id === target; });
      if (!known) return { error: 'app ' + S.text(String(target), 64) + ' is not installed' };
      if (target === appId) return { error: 'an app cannot open itself' };
      state.openedBy = state.openedBy || {};
      state.openedBy[target] = appId;
      setTimeout(function () { S.openApp(target); }, 0);
    } else if (op === 'app.back') {
      var back = state.openedBy && state.openedBy[appId];
      if (!back) return { error: 'this app was not opened by another app' };
      delete state.openedBy[appId];
      setTimeout(function () { S.openApp(back); }, 0);
    } else {
      return { error: 'unknown app operation' };
    }
    return {};
  };

  S.restartApp = function (appId) {
    if (typeof appId !== 'string') return;
    if (state.running[appId]) {  // still running (a script error at start): close first, launch on app.closed
      state.relaunch = state.relaunch || {};
      state.relaunch[appId] = true;
      S.send('app.close', 'hub', { app_id: appId });
      S.dropApp(appId);
    } else {
      S.dropApp(appId);
      S.send('app.launch', 'hub', { app_id: appId });
    }
    state.running[appId] = true;
    state.error = null;
    S.refresh();
  };

  S.onAppClosed = function (p) {
    var appId = p.app_id;
    if (state.relaunch && state.relaunch[appId]) {
      delete state.relaunch[appId];
      S.send('app.launch', 'hub', { app_id: appId });
      return;
    }
    S.dropApp(appId);
    if (state.appId === appId) S.goHome();
    else S.renderLauncher();
  };

  function showError(title, text, canRestart) {
    state.error = { title: title, text: text };
    $('error-title').textContent = title;
    $('error-text').textContent = text;
    $('error-restart').style.display = canRestart ? '' : 'none';
    S.refresh();
  }

  S.onAppError = function (p) {
    var appId = p.app_id;
    var name = S.appName(appId);
    var message = S.text(p.message, 2000, '');
    if (p.kind === 'script') {
      if (appId !== state.appId) return;
      var where = p.file ? ' (' + S.text(p.file, 200) + ':' + S.text(p.line, 12, '?') + ')' : '';
      var top = S.top(appId);
      if (!top || top.data === null) showError(name + ' could not start', message + where, true);
      else S.showBanner(name + ' hit an error' + where + ': ' + message);
      return;
    }
    if (state.relaunch) delete state.relaunch[appId];
    S.dropApp(appId);  // every other kind means the app is not running
    if (appId !== state.appId) { S.renderLauncher(); return; }
    if (p.kind === 'crashed' || p.kind === 'killed') showError(name + ' stopped', message, true);
    else if (p.kind === 'incompatible') showError(name + ' is not compatible with this head unit', message, false);
    else if (p.kind === 'invalid') showError(name + ' failed verification', message + ' Contact the publisher.', false);
    else showError(name + ' is not available', message, false);
  };

  // -- messages from the pages' iframes ---------------------------------------------------------
  function pageOfFrame(source) {
    var found = null;
    Object.keys(state.stacks).forEach(function (id) {
      state.stacks[id].pages.forEach(function (page) {
        if (page.frame && page.frame.contentWindow === source) found = page;
      });
    });
    return found;
  }

  function forward(page, handler, detail, component) {
    var json;
    try { json = JSON.stringify(detail || {}); } catch (e) { return; }
    if (json.length > MAX_EVENT_CHARS || !state.running[page.appId]) return;
    var payload = { page_id: page.id, handler: handler, event: JSON.parse(json) };
    if (component) payload.component = component;
    S.send('page.event', 'app:' + page.appId, payload);
  }

  window.addEventListener('message', function (event) {
    var page = pageOfFrame(event.source);
    var m = event.data;
    if (!page || !m || typeof m !== 'object') return;
    var kind = m.type;
    if (kind === 'painted') {
      page.painted = Number(m.seq) > 0 ? Number(m.seq) : page.painted + 1;
      if (!page.paintedSent) {
        page.paintedSent = true;
        S.send('page.painted', 'app:' + page.appId, { page_id: page.id });
      }
    } else if (kind === 'inspect.result') {
      if (page === S.currentPage()) {
        state.lastInspect = { text: String(m.text || ''), nodes: Array.isArray(m.nodes) ? m.nodes : [],
                              components: Array.isArray(m.components) ? m.components : [] };
      }
    } else if (kind === 'event') {
      if (typeof m.handler !== 'string' || !HANDLER.test(m.handler)) return;
      if (m.component !== undefined && m.component !== null && m.component !== '' &&
          (typeof m.component !== 'string' || !COMPONENT.test(m.component))) return;
      forward(page, m.handler, m.event, m.component || null);
    } else if (kind === 'navigate') {
      var openType = OPEN_TYPES.indexOf(m.openType) >= 0 ? m.openType : 'navigate';
      var url = typeof m.url === 'string' ? m.url : '';
      if (url.length > 1024 || (!url && openType !== 'navigateBack' && openType !== 'exit')) return;
      var detail = { url: url, openType: openType };
      if (typeof m.delta === 'number' && m.delta % 1 === 0 && m.delta > 0 && m.delta <= 10) detail.delta = m.delta;
      forward(page, '$navigate', detail, null);
    }
  });

  S.inspect = function () {
    state.lastInspect = null;
    var top = S.currentPage();
    if (top && top.loaded) post(top, { type: 'inspect', id: Date.now() });
  };
})();
