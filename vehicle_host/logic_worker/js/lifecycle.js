// vehicle-host logic worker, part 2: App(), Page(), getApp(), getCurrentPages(), the page stack
// mirror (nav.result), page events and app visibility.
(function (g, K) {
  'use strict';
  var app = null;
  var pageDefs = Object.create(null);
  var pages = Object.create(null); // page id -> record {id, route, inst, shown, ready, comps}
  var stack = []; // page ids, bottom first
  K.loading = null; // {kind: 'page' | 'component', path}
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

  // evaluate a bundle module with Page() / Component() bound to its path
  K.defineModule = function (path, kind, body) {
    K.loading = { kind: kind, path: path };
    try { body.call(undefined); } finally { K.loading = null; }
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

  K.openPage = function (route, pageId, query) {
    if (pages[pageId] !== undefined) throw new Error('page id ' + pageId + ' is already open');
    var rec = makePage(route, pageId, query);
    pages[pageId] = rec;
    stack.push(pageId);
    var data;
    try { data = K.clone(rec.inst.data); } catch (e) { K.reportError(e); data = {}; }
    K.emit({ t: 'render', pageId: pageId, data: data });
    pageHook(rec, 'onLoad', query);
    K.showPage(rec);
  };

  K.painted = function (pageId) {
    var rec = pages[pageId];
    if (rec === undefined || rec.ready) return;
    rec.ready = true;
    pageHook(rec, 'onReady');
    K.componentsReady(rec);
  };

  // nav.result: hide/unload the covered or closed pages, then create/show, then the call's callbacks
  K.applyNav = function (res, pending) {
    if (!res.ok) {
      if (pending) pending.fail(String(res.error || 'navigation refused'));
      return;
    }
    var top = stack.length ? stack[stack.length - 1] : undefined;
    var closed = (Array.isArray(res.closed) ? res.closed : []).filter(function (id) { return pages[id] !== undefined; });
    closed.sort(function (a, b) { return stack.indexOf(b) - stack.indexOf(a); });
    if (res.opened && top !== undefined && closed.indexOf(top) < 0) K.hidePage(pages[top]);
    closed.forEach(function (id) { K.unloadPage(pages[id]); });
    if (K.isObject(res.opened)) {
      var query = K.isObject(res.opened.query) ? res.opened.query : {};
      K.openPage(String(res.opened.route).replace(/^\//, ''), res.opened.page_id, query);
    } else if (res.shown !== undefined && pages[res.shown] !== undefined) {
      var at = stack.indexOf(res.shown);
      if (at >= 0 && at !== stack.length - 1) { stack.splice(at, 1); stack.push(res.shown); }
      K.showPage(pages[res.shown]);
    } else if (stack.length) {
      K.showPage(pages[stack[stack.length - 1]]);
    }
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

  K.dispatch = function (pageId, handler, event, comp) {
    var rec = pages[pageId];
    if (rec === undefined) { K.console.warn('event ' + handler + ' for page ' + pageId + ', which is not open, ignored'); return; }
    if (handler === '$attach' || handler === '$props' || handler === '$detach') {
      K.componentLifecycle(rec, handler, comp || '', event);
      return;
    }
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
