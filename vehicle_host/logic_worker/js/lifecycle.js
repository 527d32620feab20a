// vehicle-host logic worker, part 3: App(), Page(), getApp(), getCurrentPages(), the page stack
// mirror (nav.result), page events and app visibility.
(function (g, K) {
  'use strict';
  var app = null;
  var pageDefs = Object.create(null);
  var pages = Object.create(null); // page id -> record {id, route, inst, shown, ready, comps}
  var stack = []; // page ids, bottom first
  K.pages = pages;
  K.stack = stack;
  K.appListeners = { show: [], hide: [] };
  K.launchOptions = { path: '', query: {}, scene: 1001, referrerInfo: {}, apiCategory: 'default' };

  function copyDef(target, def) {
    Object.keys(def).forEach(function (k) {
      if (k === 'data') return;
      var v = def[k];
      if (typeof v === 'function' || v === null || typeof v !== 'object') { target[k] = v; return; }
      try { target[k] = K.clone(v); } catch (e) { target[k] = v; }
    });
  }

  g.App = function (def) {
    if (app !== null && !app.__vhDefault) throw new Error('App() may be called only once, in app.js');
    if (def !== undefined && !K.isObject(def)) throw new TypeError('App() expects an object, got ' + K.typeName(def));
    app = {};
    copyDef(app, def || {});
    if (!K.isObject(app.globalData)) app.globalData = K.isObject(def && def.globalData) ? def.globalData : {};
  };
  g.getApp = function () { return app; };
  g.Page = function (def) {
    if (K.loading === null || K.loading.kind !== 'page') {
      throw new Error('Page() must be called in a page module (a route listed in app.json pages)');
    }
    if (def !== undefined && !K.isObject(def)) throw new TypeError('Page() expects an object, got ' + K.typeName(def));
    pageDefs[K.loading.path] = def || {};
  };
  g.getCurrentPages = function () {
    return stack.map(function (id) { return pages[id].inst; });
  };

  function appHook(name, arg) {
    if (app !== null && typeof app[name] === 'function') K.guard(app[name], app, [arg]);
  }
  K.errorListeners.push(function (text) {
    if (app !== null && typeof app.onError === 'function') app.onError.call(app, text);
  });

  K.launch = function (options) {
    K.launchOptions = options;
    if (app === null) { app = { globalData: {} }; Object.defineProperty(app, '__vhDefault', { value: true }); }
    appHook('onLaunch', K.clone(options));
    appHook('onShow', K.clone(options));
    K.appListeners.show.slice().forEach(function (fn) { K.guard(fn, undefined, [K.clone(options)]); });
  };

  function pageHook(rec, name, arg) {
    if (typeof rec.inst[name] === 'function') K.guard(rec.inst[name], rec.inst, arg === undefined ? [] : [arg]);
  }

  function makePage(route, pageId, query) {
    var def = pageDefs[route];
    var rec = { id: pageId, route: route, shown: false, ready: false, comps: Object.create(null), alive: true };
    var inst = {};
    if (def === undefined) {
      K.reportError(new Error('page ' + route + ' is not defined: its module is missing or did not call Page()'));
      def = {};
    }
    copyDef(inst, def);
    try { inst.data = K.clone(def.data || {}); } catch (e) { K.reportError(e); inst.data = {}; }
    inst.route = route;
    inst.is = route;
    inst.options = query;
    var label = 'page ' + route;
    var alive = function () { return rec.alive; };
    inst.setData = function (changes, callback) {
      K.setData(inst, pageId, '', changes, callback, label, alive);
    };
    inst.selectComponent = function () { return null; };
    inst.selectAllComponents = function () { return []; };
    rec.inst = inst;
    return rec;
  }

  K.showPage = function (rec) {
    if (rec.shown) return;
    rec.shown = true;
    pageHook(rec, 'onShow');
    K.pageLifetime(rec, 'show');
  };
  K.hidePage = function (rec) {
    if (!rec.shown) return;
    rec.shown = false;
    pageHook(rec, 'onHide');
    K.pageLifetime(rec, 'hide');
  };
  K.unloadPage = function (rec) {
    pageHook(rec, 'onUnload');
    K.detachAll(rec);
    rec.alive = false;
    delete pages[rec.id];
    var at = stack.indexOf(rec.id);
    if (at >= 0) stack.splice(at, 1);
  };

  // -- route events (wx.onBeforeAppRoute ...), in WeChat's order around each navigation -----------
  K.routeListeners = { beforeAppRoute: [], appRoute: [], appRouteDone: [], beforePageLoad: [], afterPageLoad: [],
    beforePageUnload: [], afterPageUnload: [] };
  var routeCount = 0;
  function routeEvent(name, payload) {
    K.routeListeners[name].slice().forEach(function (fn) { K.guard(fn, undefined, [K.clone(payload)]); });
  }
  function beginRoute(openType, path, query, webviewId) {
    routeCount++;
    var route = { id: 'route_' + routeCount, openType: openType, path: path, query: query, webviewId: webviewId,
      startTime: K.now(), timeStamp: Date.now(), referrer: stack.length ? pages[stack[stack.length - 1]] : undefined };
    routeEvent('beforeAppRoute', { path: path, query: query, openType: openType, webviewId: webviewId,
      routeEventId: route.id, renderer: 'webview', notFound: false });
    return route;
  }
  function routePayload(route) {
    return { path: route.path, query: route.query, openType: route.openType, webviewId: route.webviewId,
      timeStamp: route.timeStamp, routeEventId: route.id };
  }
  function endRoute(route, opened) {
    var payload = routePayload(route);
    payload.renderer = 'webview';
    payload.notFound = false;
    routeEvent('appRoute', payload);
    if (opened) { opened.pendingRoute = route; return; } // done once the new page is painted
    finishRoute(route, undefined);
  }
  function finishRoute(route, rec) {
    var end = K.now();
    var ref = route.referrer;
    K.recordEntry({ entryType: 'navigation', name: route.openType === 'appLaunch' ? 'appLaunch' : 'route',
      startTime: route.startTime, duration: end - route.startTime, path: route.path, pageId: route.webviewId,
      navigationType: route.openType, referrerPath: ref ? ref.route : '', referrerPageId: ref ? ref.id : 0 });
    if (rec) {
      K.recordEntry({ entryType: 'render', name: 'firstRender', startTime: rec.created, duration: end - rec.created,
        path: rec.route, pageId: rec.id });
    }
    K.later(function () { routeEvent('appRouteDone', routePayload(route)); });
  }
  function unloadWithEvents(rec, route) {
    routeEvent('beforePageUnload', { path: rec.route, webviewId: rec.id, routeEventId: route.id });
    K.unloadPage(rec);
    routeEvent('afterPageUnload', { path: rec.route, webviewId: rec.id, routeEventId: route.id });
  }

  function createPage(route, pageId, query, nav) {
    if (pages[pageId] !== undefined) throw new Error('page id ' + pageId + ' is already open');
    routeEvent('beforePageLoad', { path: route, query: query, openType: nav.openType, routeEventId: nav.id,
      componentFramework: 'exparser' });
    var rec = makePage(route, pageId, query);
    rec.created = K.now();
    pages[pageId] = rec;
    stack.push(pageId);
    var data;
    try { data = K.clone(rec.inst.data); } catch (e) { K.reportError(e); data = {}; }
    K.emit({ t: 'render', pageId: pageId, data: data });
    pageHook(rec, 'onLoad', query);
    K.showPage(rec);
    routeEvent('afterPageLoad', { path: route, query: query, openType: nav.openType, webviewId: pageId,
      routeEventId: nav.id });
    return rec;
  }

  // the entry page at launch (worker.start)
  K.openPage = function (route, pageId, query) {
    var nav = beginRoute('appLaunch', route, query, pageId);
    nav.startTime = Math.min(nav.startTime, K.startTime);
    var rec = createPage(route, pageId, query, nav);
    endRoute(nav, rec);
  };

  K.painted = function (pageId) {
    var rec = pages[pageId];
    if (rec === undefined || rec.ready) return;
    rec.ready = true;
    pageHook(rec, 'onReady');
    K.componentsReady(rec);
    if (rec.pendingRoute !== undefined) {
      var route = rec.pendingRoute;
      delete rec.pendingRoute;
      finishRoute(route, rec);
    }
  };

  // what a nav.result nobody asked for did (the hub acting on the shell's back button, ...)
  function inferOpenType(res, closed) {
    if (!K.isObject(res.opened)) return 'navigateBack';
    if (closed.length === 0) return 'navigateTo';
    return closed.length === stack.length && stack.length > 1 ? 'reLaunch' : 'redirectTo';
  }

  // nav.result: hide/unload the covered or closed pages, then create/show, then the call's callbacks
  K.applyNav = function (res, pending) {
    if (!res.ok) {
      if (pending) pending.fail(String(res.error || 'navigation refused'));
      return;
    }
    var top = stack.length ? stack[stack.length - 1] : undefined;
    var closed = (Array.isArray(res.closed) ? res.closed : []).filter(function (id) { return pages[id] !== undefined; });
    closed.sort(function (a, b) { return stack.indexOf(b) - stack.indexOf(a); });
    var openType = pending && pending.action ? pending.action : inferOpenType(res, closed);
    var opened = K.isObject(res.opened) ? res.opened : null;
    var remaining = stack.filter(function (id) { return closed.indexOf(id) < 0; });
    var shown = opened ? undefined : res.shown !== undefined && pages[res.shown] !== undefined ? res.shown
      : remaining[remaining.length - 1];
    var query = opened && K.isObject(opened.query) ? opened.query : {};
    var path = opened ? String(opened.route).replace(/^\//, '') : shown !== undefined ? pages[shown].route : '';
    var nav = beginRoute(openType, path, opened ? query : shown !== undefined ? K.clone(pages[shown].inst.options || {}) : {},
      opened ? opened.page_id : shown);
    if (opened && top !== undefined && closed.indexOf(top) < 0) K.hidePage(pages[top]);
    closed.forEach(function (id) { if (pages[id] !== undefined) unloadWithEvents(pages[id], nav); });
    var rec;
    if (opened) {
      rec = createPage(path, opened.page_id, query, nav);
    } else if (shown !== undefined && pages[shown] !== undefined) {
      var at = stack.indexOf(shown);
      if (at >= 0 && at !== stack.length - 1) { stack.splice(at, 1); stack.push(shown); }
      K.showPage(pages[shown]);
    }
    endRoute(nav, rec);
    if (pending) pending.ok({});
  };

  K.visibility = function (visible) {
    var top = stack.length ? pages[stack[stack.length - 1]] : undefined;
    if (visible) {
      var options = K.clone(K.launchOptions);
      appHook('onShow', options);
      K.appListeners.show.slice().forEach(function (fn) { K.guard(fn, undefined, [K.clone(options)]); });
      if (top) K.showPage(top);
    } else {
      appHook('onHide');
      K.appListeners.hide.slice().forEach(function (fn) { K.guard(fn, undefined, [{}]); });
      if (top) K.hidePage(top);
    }
  };

  // reserved handlers the renderer sends for page-level events
  var RESERVED = {
    $pullDownRefresh: 'onPullDownRefresh',
    $reachBottom: 'onReachBottom',
    $pageScroll: 'onPageScroll',
    $resize: 'onResize',
    $tabItemTap: 'onTabItemTap',
  };

  // a <navigator> tap in the shell: its open-type picks the navigation API
  var OPEN_TYPES = { navigate: 'navigateTo', redirect: 'redirectTo', switchTab: 'switchTab', reLaunch: 'reLaunch',
    navigateBack: 'navigateBack' };
  function navFailed(res) { K.console.error('<navigator> could not navigate: ' + res.errMsg); }
  function navigatorTap(rec, ev) {
    var openType = ev.openType === undefined || ev.openType === '' ? 'navigate' : ev.openType;
    var api = K.hasOwn(OPEN_TYPES, openType) ? OPEN_TYPES[openType] : undefined;
    if (api === undefined) {
      K.console.error('<navigator> on page ' + rec.route + ': open-type "' + String(openType).slice(0, 40) +
        '" is not supported here (use navigate, redirect, switchTab, reLaunch or navigateBack)');
      return;
    }
    var args = { fail: navFailed };
    if (api === 'navigateBack') args.delta = typeof ev.delta === 'number' && isFinite(ev.delta) ? ev.delta : 1;
    else args.url = ev.url;
    K.fc[api](args);
  }

  function routeOf(url) { return String(url).split('?')[0].replace(/^\//, '').replace(/\.html$/, ''); }
  // a tap on the shell's tab bar: the page's onTabItemTap, then switchTab
  function tabBarTap(rec, ev) {
    var pagePath = routeOf(ev.url);
    var tap = { pagePath: pagePath };
    var list = K.isObject(K.config) && K.isObject(K.config.tabBar) && Array.isArray(K.config.tabBar.list) ? K.config.tabBar.list : [];
    for (var i = 0; i < list.length; i++) {
      if (K.isObject(list[i]) && typeof list[i].pagePath === 'string' && routeOf(list[i].pagePath) === pagePath) {
        tap.index = i;
        if (typeof list[i].text === 'string') tap.text = list[i].text;
        break;
      }
    }
    pageHook(rec, 'onTabItemTap', tap);
    K.fc.switchTab({ url: ev.url, fail: navFailed });
  }

  K.dispatch = function (pageId, handler, event, comp) {
    var rec = pages[pageId];
    if (rec === undefined) { K.console.warn('event ' + handler + ' for page ' + pageId + ', which is not open, ignored'); return; }
    if (handler === '$attach' || handler === '$props' || handler === '$detach') {
      K.componentLifecycle(rec, handler, comp || '', event);
      return;
    }
    if (handler === '$navigate') { navigatorTap(rec, K.isObject(event) ? event : {}); return; }
    if (handler === '$switchTab') { tabBarTap(rec, K.isObject(event) ? event : {}); return; }
    if (handler.charAt(0) === '$') {
      var hook = RESERVED[handler];
      if (hook === undefined) throw new Error('unknown reserved handler ' + handler);
      var arg = hook === 'onPullDownRefresh' || hook === 'onReachBottom' ? undefined : event;
      pageHook(rec, hook, arg);
      if (hook === 'onResize') K.pageLifetime(rec, 'resize', event);
      return;
    }
    if (comp) { K.componentMethod(rec, comp, handler, event); return; }
    var fn = K.hasOwn(rec.inst, handler) ? rec.inst[handler] : undefined;
    if (typeof fn !== 'function') {
      K.console.warn('Page "' + rec.route + '" does not have a method "' + handler + '" to handle event "' +
        (event && event.type) + '".');
      return;
    }
    K.guard(fn, rec.inst, [event]);
  };
})(globalThis, globalThis.__vhk);
