// vehicle-host logic worker, last part: the host's door `__vh` (frozen; Python calls it with JSON
// text and drains what the realm emitted), the `fc`/`wx`/`ft` globals, and the lockdown: no eval, no
// Function constructors, no access to the prelude's internals.
(function (g, K) {
  'use strict';
  function parse(text) { return text === undefined || text === null ? undefined : JSON.parse(text); }

  var door = {
    start: function (json) {
      var s = parse(json);
      var limits = K.isObject(s.limits) ? s.limits : {};
      if (typeof limits.call_timeout_ms === 'number') K.limits.callTimeoutMs = limits.call_timeout_ms;
      if (typeof limits.max_timers === 'number') K.limits.maxTimers = limits.max_timers;
      K.setSystem(s.system);
      K.loadStorage(s.storage);
      K.installApis(s.apis);
      K.config = K.isObject(s.config) ? s.config : {};
      K.appId = typeof s.appId === 'string' ? s.appId : '';
      K.startTime = K.now();
    },
    at: function (ms) { K.setClock(ms); },
    define: function (path, kind, body) { K.defineModule(path, kind, body); },
    launch: function (json) { K.launch(parse(json)); },
    openPage: function (route, pageId, queryJson) { K.openPage(route, pageId, parse(queryJson)); },
    painted: function (pageId) { K.painted(pageId); },
    event: function (pageId, handler, eventJson, comp) { K.dispatch(pageId, handler, parse(eventJson), comp); },
    navResult: function (json) { K.onNavResult(parse(json)); },
    result: function (id, ok, resultJson, errorJson) { K.onResult(id, ok, parse(resultJson), parse(errorJson)); },
    streamEvent: function (id, dataJson, end) { K.onEvent(id, parse(dataJson), end); },
    visibility: function (visible) { K.visibility(visible); },
    fire: function (id) { K.fire(id); },
    afterFlush: function () { K.afterFlush(); },
    idle: function () { K.runIdle(); },
    // an error the realm could not catch itself (time limit, out of memory): App.onError / fc.onError
    appError: function (text) { K.notifyError(String(text)); },
    drain: function () { K.flushStorage(); return K.drain(); },
    names: function () { return JSON.stringify(K.names.slice().sort()); },
    pageCount: function () { return K.stack.length; },
  };
  Object.defineProperty(g, '__vh', { value: Object.freeze(door), writable: false, configurable: false, enumerable: false });
  ['fc', 'wx', 'ft'].forEach(function (name) {
    Object.defineProperty(g, name, { value: K.fcProxy, writable: false, configurable: false, enumerable: true });
  });
  delete g.__vhk;

  // Mini-app code gets plain ECMAScript and nothing that compiles strings into code.
  delete g.eval;
  var blocked = function () { throw new EvalError('code generation from strings is not allowed'); };
  [function () {}, async function () {}, function* () {}, async function* () {}].forEach(function (f) {
    Object.defineProperty(Object.getPrototypeOf(f), 'constructor', { value: blocked });
  });
  g.Function = blocked;
})(globalThis, globalThis.__vhk);
