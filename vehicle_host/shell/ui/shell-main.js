// vehicle-host shell page, part 7 (last): messages from the hub, the `vh` object the host drives the
// page with (vh.receive from the hub link; launch/home/snapshot for the tour and the tests).
(function () {
  'use strict';
  var S = window.__vhShell;
  delete window.__vhShell;
  var state = S.state;
  var $ = S.$;
  // message types only the hub itself may send (page.render / page.setData come from an app)
  var FROM_HUB = ['page.open', 'page.close', 'ui.request', 'state.changed', 'app.closed', 'app.error', 'app.list.result'];

  function receiveOne(m) {
    var p = m.payload && typeof m.payload === 'object' ? m.payload : {};
    if (typeof m.ref === 'number') { S.reply(m); return; }  // the answer to one of the page's requests
    if (FROM_HUB.indexOf(m.type) >= 0 && m.source !== 'hub') return;
    if (m.type === 'link.online') {
      if (p.again) {  // the link repeating itself: only news to a page that missed the first one
        if (state.online) return;
        S.send('app.list', 'hub', {});
      }
      S.setOnline(true);
      if (!p.again) state.lastRelaunch = S.relaunchLost(p.workers);
      S.renderLauncher();
    } else if (m.type === 'link.offline') {
      S.setOnline(false);
    } else if (m.type === 'app.list.result') {
      state.apps = Array.isArray(p.apps) ? p.apps.filter(function (a) { return a && typeof a.id === 'string'; }) : [];
      S.renderLauncher();
      S.fetchInfo();
      S.updateLockout();
    } else if (m.type === 'page.open') {
      S.openPage(p);
    } else if (m.type === 'page.close') {
      S.closePages(p);
    } else if (m.type === 'page.render') {
      var page = S.pageFor(m.source, p.page_id);
      if (page) {
        page.data = p.data && typeof p.data === 'object' ? p.data : {};
        page.rendered = false;
        page.pending = [];
        S.flush(page);
        S.refresh();
      }
    } else if (m.type === 'page.setData') {
      var target = S.pageFor(m.source, p.page_id);
      if (target) {
        target.pending.push({ diff: p.diff, component: typeof p.component === 'string' ? p.component : null });
        S.flush(target);
      }
    } else if (m.type === 'ui.request') {
      S.uiRequest(p);
    } else if (m.type === 'state.changed') {
      S.onState(p.key, p.value);
    } else if (m.type === 'app.closed') {
      S.onAppClosed(p);
    } else if (m.type === 'app.error') {
      S.onAppError(p);
    }
  }

  function rect(node) {
    if (!node) return null;
    var r = node.getBoundingClientRect();
    return r.width > 0 ? { x: r.left, y: r.top, w: r.width, h: r.height } : null;
  }

  window.vh = {
    receive: function (batch) {
      batch.forEach(function (m) {
        try { receiveOne(m); } catch (e) { console.error('vehicle-host shell:', e); }
      });
    },
    launch: S.openApp,
    home: S.goHome,
    close: function (appId) { S.closeApp(appId || state.appId); },
    closeAll: function () { Object.keys(state.running).forEach(S.closeApp); },
    inspect: S.inspect,
    setTheme: S.setTheme,
    // every visible control of the shell's own page: its label and its box (for layout checks)
    controls: function () {
      var out = [];
      Array.prototype.forEach.call(document.querySelectorAll('button, [role="button"], a[href], input'), function (b) {
        var r = b.getBoundingClientRect();
        var style = window.getComputedStyle(b);
        if (r.width === 0 || r.height === 0 || style.visibility === 'hidden') return;
        var label = (b.getAttribute('aria-label') || b.textContent || '').trim();
        out.push({ id: b.id || null, cls: b.className, label: label, w: r.width, h: r.height, x: r.left, y: r.top });
      });
      return out;
    },
    snapshot: function () {
      var top = S.currentPage();
      var st = state.appId === null ? null : state.stacks[state.appId];
      return {
        view: { launcher: 'launcher', 'app-view': 'app', 'info-view': 'info' }[S.view()] || 'none',
        appIds: state.apps.map(function (a) { return a.id; }),
        appId: state.appId, online: state.online, apps: state.apps.length,
        linkBanner: $('link-banner').classList.contains('shown') ? $('link-banner').textContent : null,
        lockout: { active: state.lockout.active, reason: state.lockout.reason },
        covered: state.appId !== null && S.view() === 'app-view' && $('lockout').classList.contains('shown'),
        unavailable: state.apps.reduce(function (o, a) { var r = S.unavailable(a); if (r) o[a.id] = r; return o; }, {}),
        recent: S.recentApps(), notice: S.noticeText(), theme: state.theme, info: S.infoSnapshot(),
        relaunched: state.lastRelaunch || [],
        running: Object.keys(state.running).filter(function (id) { return state.running[id]; }),
        pageId: top ? top.id : null, painted: top ? top.painted : 0,
        pages: st ? st.pages.map(function (pg) { return { page_id: pg.id, route: pg.route, title: pg.title }; }) : [],
        navBar: top ? { title: top.title, backgroundColor: top.nav.bg, frontColor: top.nav.front, loading: top.nav.loading } : null,
        tabBar: S.tabBarSnapshot(),
        dialog: S.dialogSnapshot(), queuedDialogs: S.queuedDialogs(), toast: S.toastSnapshot(),
        vehicle: state.vehicle, adapter: state.adapter,
        notices: S.noticesSnapshot ? S.noticesSnapshot() : null,
        error: state.error, banner: $('banner').classList.contains('shown') ? $('banner').textContent : null,
        frame: top && !state.error ? rect(top.frame) : null,
        inspect: state.lastInspect,
      };
    },
  };

  $('back').addEventListener('click', S.back);
  $('close-app').addEventListener('click', function () { S.closeApp(state.appId); });
  $('error-home').addEventListener('click', S.goHome);
  $('lockout-home').addEventListener('click', S.goHome);
  $('error-restart').addEventListener('click', function () { S.restartApp(state.appId); });
  S.tick();
  S.setOnline(false);
  S.renderLauncher();
})();
