// vehicle-host logic worker prelude: App(), Page(), getApp(), getCurrentPages(), setData and console.
// Runs first in a fresh QuickJS realm. The host talks to it only through globalThis.__vh:
// Python calls __vh.* and drains __vh.drain() (a JSON array of messages) after every call.
(function (g) {
  'use strict';
  var outbox = [];
  var appInstance = null;
  var pageDefs = Object.create(null);
  var pages = Object.create(null);
  var pageOrder = [];
  var loading = null;

  function emit(msg) { outbox.push(msg); }

  function reportError(e) {
    emit({ t: 'error', message: String(e), stack: String((e && e.stack) || '') });
  }

  function clone(value) {
    return value === undefined ? null : JSON.parse(JSON.stringify(value));
  }

  function show(value) {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return String(value.stack ? value + '\n' + value.stack : value);
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  }

  function logger(level) {
    return function () {
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(show(arguments[i]));
      emit({ t: 'log', level: level, message: parts.join(' ').slice(0, 8000) });
    };
  }
  g.console = { log: logger('info'), info: logger('info'), debug: logger('debug'),
                warn: logger('warn'), error: logger('error') };

  // 'a.b[2].c' -> ['a', 'b', 2, 'c']
  function parsePath(path) {
    var keys = [];
    var re = /([^.[\]]+)|\[(\d+)\]/g;
    var m;
    while ((m = re.exec(path)) !== null) keys.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    if (keys.length === 0) throw new Error('setData: empty key');
    return keys;
  }

  function setPath(target, path, value) {
    var keys = parsePath(path);
    var node = target;
    for (var i = 0; i < keys.length - 1; i++) {
      var next = node[keys[i]];
      if (next === null || typeof next !== 'object') {
        next = typeof keys[i + 1] === 'number' ? [] : {};
        node[keys[i]] = next;
      }
      node = next;
    }
    node[keys[keys.length - 1]] = value;
  }

  g.App = function (def) {
    if (appInstance !== null) throw new Error('App() may be called only once');
    appInstance = Object.assign({ globalData: {} }, def || {});
  };
  g.getApp = function () { return appInstance; };
  g.Page = function (def) {
    if (loading === null) throw new Error('Page() must be called while a page module is loading');
    pageDefs[loading] = def || {};
  };
  g.getCurrentPages = function () {
    return pageOrder.map(function (id) { return pages[id]; });
  };

  function makePage(route, pageId, query) {
    var def = pageDefs[route];
    if (def === undefined) throw new Error('page ' + route + ' did not call Page()');
    var page = {};
    Object.keys(def).forEach(function (k) { if (k !== 'data') page[k] = def[k]; });
    page.data = clone(def.data || {});
    page.route = route;
    page.options = query;
    page.setData = function (changes, callback) {
      if (changes === null || typeof changes !== 'object' || Array.isArray(changes)) {
        throw new TypeError('setData expects an object of key paths to values');
      }
      var diff = {};
      Object.keys(changes).forEach(function (key) {
        var value = clone(changes[key]);
        setPath(page.data, key, clone(value));
        diff[key] = value;
      });
      emit({ t: 'setData', pageId: pageId, diff: diff });
      if (typeof callback === 'function') {
        Promise.resolve().then(function () {
          try { callback.call(page); } catch (e) { reportError(e); }
        });
      }
    };
    return page;
  }

  function call(target, name, arg) {
    if (target && typeof target[name] === 'function') target[name].call(target, arg);
  }

  var api = {
    define: function (route, body) {
      loading = route;
      try { body.call(undefined); } finally { loading = null; }
    },
    launch: function (optionsJson) {
      var options = JSON.parse(optionsJson);
      call(appInstance, 'onLaunch', options);
      call(appInstance, 'onShow', options);
    },
    openPage: function (route, pageId, queryJson) {
      var query = JSON.parse(queryJson);
      var page = makePage(route, pageId, query);
      pages[pageId] = page;
      pageOrder.push(pageId);
      emit({ t: 'render', pageId: pageId, data: clone(page.data) });
      call(page, 'onLoad', query);
      call(page, 'onShow');
      call(page, 'onReady');
    },
    event: function (pageId, handler, eventJson) {
      var page = pages[pageId];
      if (page === undefined) throw new Error('no open page with id ' + pageId);
      if (typeof page[handler] !== 'function') {
        throw new Error('page ' + page.route + ' has no handler named ' + handler);
      }
      page[handler].call(page, JSON.parse(eventJson));
    },
    drain: function () {
      var out = JSON.stringify(outbox);
      outbox = [];
      return out;
    },
  };

  // the host's door into the realm cannot be replaced or changed by app code
  Object.defineProperty(g, '__vh', { value: Object.freeze(api), writable: false, configurable: false });

  // Mini-app code gets plain ECMAScript and nothing that compiles strings into code.
  delete g.eval;
  var blocked = function () { throw new EvalError('code generation from strings is not allowed'); };
  [function () {}, async function () {}, function* () {}, async function* () {}].forEach(function (f) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: blocked });
  });
  g.Function = blocked;
})(globalThis);
