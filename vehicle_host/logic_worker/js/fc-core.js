// vehicle-host logic worker, part 6: the `fc` namespace machinery: callback and Promise styles,
// argument checks, calls that leave the worker (api.call / nav.request), plugin namespaces and the
// fallback for APIs this head unit does not have.
(function (g, K) {
  'use strict';
  var fc = {};
  K.fc = fc;
  K.names = []; // every implemented fc API name (canIUse and api-names.json)
  K.pluginMethods = Object.create(null);

  K.define = function (name, fn) {
    fc[name] = fn;
    K.names.push(name);
  };

  // -- argument checks: {url: 'string!', timeout: 'number'} -> WeChat-style "parameter error" text
  K.check = function (args, spec) {
    var problems = [];
    Object.keys(spec || {}).forEach(function (key) {
      var want = spec[key];
      var required = want.charAt(want.length - 1) === '!';
      if (required) want = want.slice(0, -1);
      var v = args[key];
      if (v === undefined) {
        if (required) problems.push('parameter.' + key + ' should be ' + want.split('|').map(cap).join(' or ') + ' instead of Undefined;');
        return;
      }
      var ok = want.split('|').some(function (w) {
        if (w === 'any') return true;
        if (w === 'array') return Array.isArray(v);
        if (w === 'object') return K.isObject(v);
        if (w === 'arraybuffer') return v instanceof ArrayBuffer || ArrayBuffer.isView(v);
        if (w === 'number') return typeof v === 'number' && isFinite(v);
        return typeof v === w;
      });
      if (!ok) problems.push('parameter.' + key + ' should be ' + want.split('|').map(cap).join(' or ') + ' instead of ' + K.typeName(v) + ';');
    });
    return problems.length ? 'parameter error: ' + problems.join(' ') : null;
  };
  function cap(s) { return s === 'arraybuffer' ? 'ArrayBuffer' : s.charAt(0).toUpperCase() + s.slice(1); }

  function callbacksOf(args) {
    if (!K.isObject(args)) return null;
    if (K.isFn(args.success) || K.isFn(args.fail) || K.isFn(args.complete)) return args;
    return null;
  }

  // An asynchronous API. run(args, ctl) calls ctl.ok(result) or ctl.fail(message) once, now or later;
  // it may return a value (a task object) that the API returns instead of the Promise.
  K.asyncApi = function (name, spec, run, options) {
    var opts = options || {};
    K.define(name, function (args) {
      if (args === undefined || (opts.optionalArgs && args === null)) args = {};
      var cbs = callbacksOf(args);
      var resolve = null;
      var reject = null;
      var promise = cbs || opts.noPromise ? undefined : new Promise(function (res, rej) { resolve = res; reject = rej; });
      var done = false;
      function finish(ok, payload) {
        if (done) return;
        done = true;
        if (cbs) {
          var fn = ok ? cbs.success : cbs.fail;
          if (K.isFn(fn)) K.guard(fn, undefined, [payload]);
          if (K.isFn(cbs.complete)) K.guard(cbs.complete, undefined, [payload]);
        } else if (resolve) {
          if (ok) resolve(payload); else reject(payload);
        }
        if (opts.onFinish) opts.onFinish(ok, payload);
      }
      var ctl = {
        name: name,
        ok: function (result) {
          var out = K.isObject(result) ? Object.assign({}, result) : {};
          out.errMsg = name + ':ok';
          finish(true, out);
        },
        fail: function (message, extra) {
          var out = Object.assign({}, extra || {});
          out.errMsg = name + ':fail ' + message;
          finish(false, out);
        },
        get done() { return done; },
      };
      var problem = K.isObject(args) ? K.check(args, spec) :
        'parameter error: parameter should be Object instead of ' + K.typeName(args) + ';';
      if (problem) {
        K.later(function () { ctl.fail(problem); });
        return promise;
      }
      var ret;
      try { ret = run(args, ctl); } catch (e) { var m = String((e && e.message) || e); K.later(function () { ctl.fail(m); }); }
      return ret !== undefined ? ret : promise;
    });
  };

  // A synchronous API: throws Error('<name>:fail <reason>') as WeChat does.
  K.syncApi = function (name, fn) {
    K.define(name, function () {
      try { return fn.apply(undefined, arguments); } catch (e) {
        var msg = String((e && e.message) || e);
        throw new Error(msg.indexOf(name + ':fail') === 0 ? msg : name + ':fail ' + msg);
      }
    });
  };

  // -- calls that leave the worker -----------------------------------------------------------------
  var calls = Object.create(null);
  var nextCall = 1;
  // handlers: {result(ok, value, error), event(data, end)}; the worker guarantees exactly one result
  // (the hub's, or a timeout) unless the call is cancelled
  K.hostCall = function (method, args, handlers, options) {
    var opts = options || {};
    var wireArgs = K.wireEncode(args || {});
    var id = nextCall++;
    calls[id] = handlers;
    var msg = { t: 'call', id: id, method: method, args: wireArgs };
    if (opts.timeoutMs) msg.timeoutMs = opts.timeoutMs;
    if (opts.stream) msg.stream = true;
    K.emit(msg);
    return id;
  };
  K.cancelCall = function (id) {
    if (calls[id] === undefined) return false;
    delete calls[id];
    K.emit({ t: 'cancel', id: id });
    return true;
  };
  K.onResult = function (id, ok, result, error) {
    var h = calls[id];
    if (h === undefined) return;
    if (!h.stream || !ok) delete calls[id];
    h.result(ok, K.wireDecode(result), error || {});
  };
  K.onEvent = function (id, data, end) {
    var h = calls[id];
    if (h === undefined) return;
    if (end) delete calls[id];
    if (h.event) h.event(K.wireDecode(data), !!end);
  };
  K.navRequest = function (action, fields, pending) {
    var id = nextCall++;
    calls[id] = { nav: pending };
    K.emit(Object.assign({ t: 'nav', id: id, action: action }, fields));
  };
  K.onNavResult = function (res) {
    var h = calls[res.call_id];
    if (h !== undefined) delete calls[res.call_id];
    K.applyNav(res, h && h.nav);
  };

  // the reason of a failed host call, for an errMsg: "denied: ..." or the message alone
  K.reason = function (error) {
    var message = String((error && error.message) || 'failed');
    return error && error.code && error.code !== 'failed' ? error.code + ': ' + message : message;
  };

  // an fc API served by a method of the hub: args -> api.call{method, args}, result -> success
  K.hostApi = function (name, method, spec, options) {
    var opts = options || {};
    K.asyncApi(name, spec, function (args, ctl) {
      var payload = opts.args ? opts.args(args) : K.plainArgs(args);
      K.hostCall(method, payload, {
        result: function (ok, value, error) {
          if (!ok) { ctl.fail(K.reason(error), { code: error.code }); return; }
          var out;
          try { out = opts.result ? opts.result(value, args) : value; } catch (e) { ctl.fail(String((e && e.message) || e)); return; }
          ctl.ok(out);
        },
      }, { timeoutMs: opts.timeoutMs });
    }, opts);
  };
  K.plainArgs = function (args) {
    var out = {};
    Object.keys(args).forEach(function (k) {
      if (typeof args[k] !== 'function' && args[k] !== undefined) out[k] = args[k];
    });
    return out;
  };

  // -- plugin namespaces: fc.vehicle.readDtcs(args) for every method the host offers --------------
  K.installApis = function (apis) {
    (Array.isArray(apis) ? apis : []).forEach(function (entry) {
      var name = typeof entry === 'string' ? entry : K.isObject(entry) ? entry.name : undefined;
      if (typeof name !== 'string' || !/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)+$/.test(name)) return;
      var streams = K.isObject(entry) && entry.streams === true;
      var parts = name.split('.');
      var node = fc;
      for (var i = 0; i < parts.length - 1; i++) {
        var next = K.hasOwn(node, parts[i]) ? node[parts[i]] : undefined;
        if (next === undefined) { next = {}; node[parts[i]] = next; }
        if (!K.isObject(next)) return; // a built-in API of the same name wins
        node = next;
      }
      var leaf = parts[parts.length - 1];
      if (K.hasOwn(node, leaf)) return;
      // the method's own time limit (timeout_s from its declaration) plus a second for the trip
      var timeoutMs = K.isObject(entry) && typeof entry.timeout_s === 'number' && entry.timeout_s > 0
        ? Math.min(entry.timeout_s, 600) * 1000 + 1000 : undefined;
      K.pluginMethods[name] = { streams: streams };
      node[leaf] = streams ? streamMethod(name) : pluginMethod(name, timeoutMs);
    });
  };

  function pluginResult(value) {
    return K.isObject(value) ? value : { result: value };
  }

  function pluginMethod(name, timeoutMs) {
    return function (args) {
      return invokeLocal(name, args, function (a, ctl) {
        K.hostCall(name, K.plainArgs(a), {
          result: function (ok, value, error) {
            if (ok) ctl.ok(pluginResult(value)); else ctl.fail(K.reason(error), { code: error.code });
          },
        }, { timeoutMs: timeoutMs });
      });
    };
  }

  // a streaming method: args.onData(data) per api.event; returns {stop()} (-> api.cancel)
  function streamMethod(name) {
    return function (args) {
      var handle = { stop: function () {} };
      invokeLocal(name, args, function (a, ctl) {
        if (!K.isFn(a.onData)) throw new Error('parameter error: parameter.onData should be Function instead of ' + K.typeName(a.onData) + ';');
        var stopped = false;
        var id = K.hostCall(name, K.plainArgs(a), {
          stream: true,
          result: function (ok, value, error) {
            if (ok) ctl.ok(pluginResult(value)); else ctl.fail(K.reason(error), { code: error.code });
          },
          event: function (data, end) {
            if (!stopped) K.guard(a.onData, undefined, [data]);
            if (end && !ctl.done) ctl.ok({});
          },
        }, { stream: true });
        handle.stop = function () {
          if (stopped) return;
          stopped = true;
          if (K.cancelCall(id) && !ctl.done) ctl.fail('cancelled', { code: 'cancelled' });
        };
      }, true);
      return handle;
    };
  }

  // like asyncApi, for names that are not registered as built-ins
  function invokeLocal(name, args, run, noPromise) {
    var api = K.localApis[name];
    if (api === undefined) {
      K.asyncApi(name, {}, run, { noPromise: noPromise });
      api = K.localApis[name] = fc[name];
      delete fc[name];
      K.names.pop();
    }
    return api(args);
  }
  K.localApis = Object.create(null);

  // -- canIUse --------------------------------------------------------------------------------
  K.define('canIUse', function (schema) {
    if (typeof schema !== 'string' || schema === '') return false;
    if (K.pluginMethods[schema] !== undefined) return true;
    var first = schema.split('.')[0];
    return K.names.indexOf(first) >= 0;
  });

  // -- event listener pairs: onX(fn) / offX(fn) -------------------------------------------------
  K.listenerPair = function (on, off, list) {
    K.define(on, function (fn) {
      if (!K.isFn(fn)) throw new TypeError(on + ' expects a function, got ' + K.typeName(fn));
      if (list.indexOf(fn) < 0) list.push(fn);
    });
    K.define(off, function (fn) {
      if (fn === undefined) { list.length = 0; return; }
      var at = list.indexOf(fn);
      if (at >= 0) list.splice(at, 1);
    });
  };

  // -- unknown APIs: a function that fails without sending anything ------------------------------
  var unsupported = Object.create(null);
  function unsupportedApi(name) {
    if (unsupported[name] === undefined) {
      var fn;
      K.asyncApi(name, {}, function (args, ctl) { K.later(function () { ctl.fail('not supported on this head unit'); }); },
        { optionalArgs: true });
      fn = fc[name];
      delete fc[name];
      K.names.pop();
      unsupported[name] = fn;
    }
    return unsupported[name];
  }
  var NOT_APIS = { then: true, toJSON: true, constructor: true, valueOf: true, toString: true, inspect: true };
  K.fcProxy = new Proxy(fc, {
    get: function (target, prop) {
      if (typeof prop !== 'string' || prop in target || NOT_APIS[prop] === true) return target[prop];
      return unsupportedApi(prop);
    },
    set: function () { return false; },
    defineProperty: function () { return false; },
    deleteProperty: function () { return false; },
  });
})(globalThis, globalThis.__vhk);
