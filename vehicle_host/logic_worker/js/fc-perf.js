// vehicle-host logic worker, part 11: performance (getPerformance, navigation/render entries from the worker
// clock), requestIdleCallback, device benchmark and renderer information, debug switch, preload hints.
(function (g, K) {
  'use strict';

  // -- performance entries: recorded by lifecycle.js around navigation ------------------------------
  var entries = [];
  var bufferSize = 30; // WeChat buffers 30 entries unless setBufferSize says otherwise
  var MAX_BUFFER = 1000;
  var observers = [];
  function matches(entry, name, type) {
    return (name === undefined || entry.name === name) && (type === undefined || entry.entryType === type);
  }
  function listOf(all) {
    return {
      getEntries: function () { return K.clone(all); },
      getEntriesByName: function (name, type) { return K.clone(all.filter(function (e) { return matches(e, name, type); })); },
      getEntriesByType: function (type) { return K.clone(all.filter(function (e) { return matches(e, undefined, type); })); },
    };
  }
  K.recordEntry = function (entry) {
    entries.push(entry);
    if (entries.length > bufferSize) entries.splice(0, entries.length - bufferSize);
    observers.slice().forEach(function (o) {
      if (o.types !== null && o.types.indexOf(entry.entryType) >= 0) K.later(function () { K.guard(o.callback, undefined, [listOf([entry])]); });
    });
  };

  var performance = null;
  K.define('getPerformance', function () {
    if (performance !== null) return performance;
    performance = {
      now: function () { return K.now(); },
      getEntries: function () { return listOf(entries).getEntries(); },
      getEntriesByName: function (name, type) { return listOf(entries).getEntriesByName(name, type); },
      getEntriesByType: function (type) { return listOf(entries).getEntriesByType(type); },
      setBufferSize: function (size) {
        var n = Math.floor(Number(size));
        if (!(n >= 1)) throw new TypeError('setBufferSize expects a positive number');
        bufferSize = Math.min(n, MAX_BUFFER);
        if (entries.length > bufferSize) entries.splice(0, entries.length - bufferSize);
      },
      createObserver: function (callback) {
        if (!K.isFn(callback)) throw new TypeError('createObserver expects a function, got ' + K.typeName(callback));
        var obs = { callback: callback, types: null };
        return {
          observe: function (options) {
            var o = K.isObject(options) ? options : {};
            var types = Array.isArray(o.entryTypes) ? o.entryTypes.map(String) : typeof o.type === 'string' ? [o.type] : null;
            if (types === null) throw new TypeError('observe expects {entryTypes: [...]} or {type}');
            obs.types = types;
            if (observers.indexOf(obs) < 0) observers.push(obs);
          },
          disconnect: function () {
            var at = observers.indexOf(obs);
            if (at >= 0) observers.splice(at, 1);
          },
        };
      },
    };
    return performance;
  });

  // -- requestIdleCallback: the worker runs the queue when it has nothing else to do ---------------
  var idle = []; // {id, fn, deadline (ms or null)}
  var nextIdle = 1;
  var idleAsked = false;
  var MAX_IDLE = 1000;
  var IDLE_BATCH = 64;
  var IDLE_BUDGET_MS = 50; // what timeRemaining() starts from, as in browsers
  function askIdle() {
    if (idleAsked || idle.length === 0) return;
    idleAsked = true;
    K.emit({ t: 'idle' });
  }
  K.define('requestIdleCallback', function (callback, options) {
    if (!K.isFn(callback)) throw new TypeError('requestIdleCallback expects a function, got ' + K.typeName(callback));
    if (idle.length >= MAX_IDLE) {
      throw new RangeError('requestIdleCallback: ' + MAX_IDLE + ' callbacks are already waiting; cancel the ones you no longer need');
    }
    var timeout = K.isObject(options) && typeof options.timeout === 'number' && options.timeout > 0 ? options.timeout : null;
    var id = nextIdle++;
    idle.push({ id: id, fn: callback, deadline: timeout === null ? null : K.now() + timeout });
    askIdle();
    return id;
  });
  K.define('cancelIdleCallback', function (id) {
    for (var i = 0; i < idle.length; i++) {
      if (idle[i].id === id) { idle.splice(i, 1); return; }
    }
  });
  K.runIdle = function () {
    idleAsked = false;
    var start = K.now();
    var batch = idle.splice(0, IDLE_BATCH);
    for (var i = 0; i < batch.length; i++) {
      var item = batch[i];
      if (i > 0 && K.now() - start >= IDLE_BUDGET_MS) { idle = batch.slice(i).concat(idle); break; }
      var deadline = {
        didTimeout: item.deadline !== null && K.now() >= item.deadline,
        timeRemaining: function () { return Math.max(0, IDLE_BUDGET_MS - (K.now() - start)); },
      };
      K.guard(item.fn, undefined, [deadline]);
    }
    askIdle(); // what is left, and what the callbacks asked for, waits for the next idle time
  };

  // -- device and renderer -----------------------------------------------------------------------
  K.asyncApi('getDeviceBenchmarkInfo', {}, function (args, ctl) {
    var s = K.system;
    var level = typeof s.benchmarkLevel === 'number' ? s.benchmarkLevel : -1;
    var model = typeof s.modelLevel === 'number' ? s.modelLevel : 0; // 0: unknown
    K.later(function () { ctl.ok({ benchmarkLevel: level, modelLevel: model }); });
  }, { optionalArgs: true });

  K.asyncApi('getRendererUserAgent', {}, function (args, ctl) {
    var s = K.system;
    var ua = typeof s.rendererUserAgent === 'string' ? s.rendererUserAgent
      : 'Mozilla/5.0 (X11; Linux) AppleWebKit/605.1.15 (KHTML, like Gecko) vehicle-host/' + String(s.version);
    K.later(function () { ctl.ok({ userAgent: ua }); });
  }, { optionalArgs: true });

  // -- debug switch: console.debug reaches the host's log only while debugging is on --------------
  K.asyncApi('setEnableDebug', { enableDebug: 'boolean!' }, function (args, ctl) {
    K.debugEnabled = args.enableDebug;
    K.system.enableDebug = args.enableDebug;
    K.later(function () { ctl.ok({}); });
  });

  // -- preload hints: WeChat documents both as hints to the view layer, and a page here renders
  // the same without them (assets are in the local bundle, pages open in fresh frames) ------------
  K.asyncApi('preloadAssets', { data: 'array!' }, function (args, ctl) {
    args.data.forEach(function (item, i) {
      if (!K.isObject(item) || (item.type !== 'image' && item.type !== 'font') || typeof item.src !== 'string') {
        throw new Error('parameter error: data[' + i + '] should be {type: "image" | "font", src: String};');
      }
    });
    K.later(function () { ctl.ok({}); });
  }, { noPromise: true });
  K.asyncApi('preloadWebview', {}, function (args, ctl) { K.later(function () { ctl.ok({}); }); },
    { noPromise: true, optionalArgs: true });
})(globalThis, globalThis.__vhk);
