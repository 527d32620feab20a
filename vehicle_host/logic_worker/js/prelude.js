// vehicle-host logic worker, part 1 of the prelude: internals shared by the other prelude files,
// console, data paths and the setData batcher. runtime.py evaluates the files of PRELUDE_FILES in
// order in a fresh QuickJS realm; door.js (last) seals the host's door `__vh` and removes `__vhk`.
(function (g) {
  'use strict';
  var K = {};
  var hasOwn = Object.prototype.hasOwnProperty;
  K.hasOwn = function (obj, key) { return obj !== null && obj !== undefined && hasOwn.call(obj, key); };
  K.outbox = [];
  K.emit = function (msg) { K.outbox.push(msg); };
  K.limits = { setDataBytes: 256 * 1024, maxTimers: 1000, minIntervalMs: 4, callTimeoutMs: 15000 };
  K.errorListeners = []; // App.onError and fc.onError, called with the error text

  K.typeName = function (v) {
    if (v === null) return 'Null';
    if (v === undefined) return 'Undefined';
    if (Array.isArray(v)) return 'Array';
    if (v instanceof ArrayBuffer) return 'ArrayBuffer';
    var t = typeof v;
    return t.charAt(0).toUpperCase() + t.slice(1);
  };
  K.isObject = function (v) { return v !== null && typeof v === 'object' && !Array.isArray(v); };
  K.isFn = function (v) { return typeof v === 'function'; };

  K.clone = function (value) {
    if (value === undefined) return null;
    return JSON.parse(JSON.stringify(value));
  };

  K.show = function (value) {
    if (typeof value === 'string') return value;
    if (value instanceof Error) return String(value.stack ? value + '\n' + value.stack : value);
    if (value === undefined) return 'undefined';
    if (typeof value === 'function') return '[Function ' + (value.name || 'anonymous') + ']';
    try { return JSON.stringify(value); } catch (e) { return String(value); }
  };

  K.debugEnabled = true; // setEnableDebug / system.enableDebug
  function logger(level) {
    return function () {
      if (level === 'debug' && !K.debugEnabled) return;
      var parts = [];
      for (var i = 0; i < arguments.length; i++) parts.push(K.show(arguments[i]));
      K.emit({ t: 'log', level: level, message: parts.join(' ').slice(0, 8000) });
    };
  }
  K.console = {
    log: logger('info'), info: logger('info'), debug: logger('debug'),
    warn: logger('warn'), error: logger('error'),
  };
  g.console = K.console;

  // -- errors: reported to the host (script.error) and to App.onError / fc.onError -----------------
  var inErrorListener = false;
  K.errorText = function (e) {
    var text = String(e);
    if (e && e.stack) text += '\n' + e.stack;
    return text;
  };
  K.notifyError = function (text) {
    if (inErrorListener) return; // an onError that throws must not recurse
    inErrorListener = true;
    try {
      K.errorListeners.slice().forEach(function (fn) {
        try { fn(text); } catch (e2) { K.emit({ t: 'error', message: String(e2), stack: String((e2 && e2.stack) || '') }); }
      });
    } finally { inErrorListener = false; }
  };
  K.reportError = function (e) {
    K.emit({ t: 'error', message: String(e), stack: String((e && e.stack) || '') });
    K.notifyError(K.errorText(e));
  };
  // call app code; an exception is reported and swallowed so the host's sequence goes on
  K.guard = function (fn, self, args) {
    try { return fn.apply(self, args || []); } catch (e) { K.reportError(e); return undefined; }
  };
  K.later = function (fn) { Promise.resolve().then(fn); };

  // -- the worker's clock (ms): the host sets it before every call in; it runs on within the call --
  var perf = g.performance;
  var localNow = perf && typeof perf.now === 'function' ? perf.now.bind(perf) : Date.now;
  var hostMs = 0;
  var localAtSet = localNow();
  var lastNow = 0;
  K.setClock = function (ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return;
    hostMs = ms;
    localAtSet = localNow();
  };
  K.now = function () {
    var t = hostMs + Math.max(0, localNow() - localAtSet);
    if (t < lastNow) t = lastNow; // never backwards
    lastNow = t;
    return t;
  };
  K.startTime = 0;

  // -- data paths: 'a.b[2].c' -> ['a', 'b', 2, 'c'] --------------------------------------------
  K.parsePath = function (path) {
    var keys = [];
    var re = /([^.[\]]+)|\[(\d+)\]/g;
    var m;
    while ((m = re.exec(path)) !== null) keys.push(m[2] !== undefined ? Number(m[2]) : m[1]);
    if (keys.length === 0) throw new Error('setData: empty key ' + JSON.stringify(path));
    return keys;
  };
  K.pathKey = function (segs) {
    var out = '';
    for (var i = 0; i < segs.length; i++) {
      if (typeof segs[i] === 'number') out += '[' + segs[i] + ']';
      else out += (i ? '.' : '') + segs[i];
    }
    return out;
  };
  function forbidden(seg) { return seg === '__proto__' || seg === 'constructor' || seg === 'prototype'; }
  K.setPath = function (target, segs, value) {
    var node = target;
    for (var i = 0; i < segs.length; i++) {
      if (forbidden(segs[i])) throw new Error('setData: reserved key ' + segs[i]);
    }
    for (var j = 0; j < segs.length - 1; j++) {
      var next = node[segs[j]];
      if (next === null || typeof next !== 'object') {
        next = typeof segs[j + 1] === 'number' ? [] : {};
        node[segs[j]] = next;
      }
      node = next;
    }
    node[segs[segs.length - 1]] = value;
  };
  K.getPath = function (target, segs) {
    var node = target;
    for (var i = 0; i < segs.length; i++) {
      if (node === null || node === undefined) return undefined;
      node = node[segs[i]];
    }
    return node;
  };

  K.utf8Length = function (s) {
    var n = 0;
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      n += c < 0x80 ? 1 : c < 0x800 ? 2 : (c >= 0xd800 && c < 0xdc00) ? (i++, 4) : 3;
    }
    return n;
  };

  // -- bytes across the wire: ArrayBuffer <-> {"__vh_bytes__": base64} ----------------------------
  K.bytesToBase64 = function (buffer) {
    var bytes = new Uint8Array(buffer);
    var parts = [];
    for (var i = 0; i < bytes.length; i += 8192) {
      parts.push(String.fromCharCode.apply(null, bytes.subarray(i, i + 8192)));
    }
    return btoa(parts.join(''));
  };
  K.base64ToBytes = function (text) {
    var bin = atob(String(text).replace(/[\s]/g, ''));
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  };
  K.wireEncode = function (value, depth) {
    depth = depth || 0;
    if (depth > 32) throw new Error('value nests deeper than 32 levels');
    if (value instanceof ArrayBuffer) return { __vh_bytes__: K.bytesToBase64(value) };
    if (ArrayBuffer.isView(value)) {
      return { __vh_bytes__: K.bytesToBase64(value.buffer.slice(value.byteOffset, value.byteOffset + value.byteLength)) };
    }
    if (Array.isArray(value)) return value.map(function (v) { return K.wireEncode(v, depth + 1); });
    if (value !== null && typeof value === 'object') {
      var out = {};
      Object.keys(value).forEach(function (k) {
        if (typeof value[k] !== 'function' && value[k] !== undefined) out[k] = K.wireEncode(value[k], depth + 1);
      });
      return out;
    }
    return value;
  };
  K.wireDecode = function (value) {
    if (Array.isArray(value)) return value.map(K.wireDecode);
    if (value !== null && typeof value === 'object') {
      var keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === '__vh_bytes__') return K.base64ToBytes(value.__vh_bytes__);
      var out = {};
      keys.forEach(function (k) { out[k] = K.wireDecode(value[k]); });
      return out;
    }
    return value;
  };

  // -- setData: apply now, send the merged diff of one turn per page / component ------------------
  var batches = []; // in order of first write: {pageId, comp, diff, below, callbacks, alive}
  var batchIndex = Object.create(null);
  var afterFlush = [];
  function batchFor(pageId, comp, alive) {
    var key = pageId + '/' + comp;
    var batch = batchIndex[key];
    if (batch === undefined) {
      batch = { pageId: pageId, comp: comp, diff: Object.create(null), keys: [], below: Object.create(null), alive: alive };
      batchIndex[key] = batch;
      batches.push(batch);
    }
    return batch;
  }
  // merge one change into a turn's diff: a later key replaces earlier keys below it and writes into
  // an earlier key above it, so the diff stays small whatever the loop looks like
  K.mergeDiff = function (batch, segs, value) {
    var diff = batch.diff;
    var prefix = '';
    for (var i = 0; i < segs.length - 1; i++) {
      prefix = K.pathKey(segs.slice(0, i + 1));
      if (prefix in diff) {
        var holder = diff[prefix];
        if (holder !== null && typeof holder === 'object') {
          K.setPath(holder, segs.slice(i + 1), value);
          return;
        }
      }
    }
    var key = K.pathKey(segs);
    if (batch.below[key]) {
      batch.keys = batch.keys.filter(function (k) {
        var under = k.length > key.length && k.lastIndexOf(key, 0) === 0 && (k.charAt(key.length) === '.' || k.charAt(key.length) === '[');
        if (under) delete diff[k];
        return !under;
      });
    }
    if (key in diff) batch.keys = batch.keys.filter(function (k) { return k !== key; });
    diff[key] = value;
    batch.keys.push(key);
    for (var j = 1; j < segs.length; j++) batch.below[K.pathKey(segs.slice(0, j))] = true;
  };

  // owner: the page or component instance (its .data is updated); returns the canonical keys set
  K.setData = function (owner, pageId, comp, changes, callback, label, alive) {
    if (!K.isObject(changes)) {
      throw new TypeError('setData expects an object of key paths to values, got ' + K.typeName(changes));
    }
    var text;
    try { text = JSON.stringify(changes); } catch (e) {
      throw new TypeError('setData: the data cannot be serialised (' + e.message + ')');
    }
    var size = K.utf8Length(text);
    if (size > K.limits.setDataBytes) {
      K.console.error('setData on ' + label + ' refused: ' + size + ' bytes exceeds the ' +
        (K.limits.setDataBytes / 1024) + ' KB limit; send only what changed');
      return [];
    }
    var values = JSON.parse(text);
    var batch = batchFor(pageId, comp, alive);
    var changed = [];
    Object.keys(values).forEach(function (path) {
      var segs = K.parsePath(path);
      K.setPath(owner.data, segs, K.clone(values[path]));
      K.mergeDiff(batch, segs, values[path]);
      changed.push(K.pathKey(segs));
    });
    if (typeof callback === 'function') afterFlush.push({ fn: callback, self: owner });
    return changed;
  };
  K.queueDiff = function (pageId, comp, key, value, alive) {
    K.mergeDiff(batchFor(pageId, comp, alive), K.parsePath(key), K.clone(value));
  };

  // everything the realm emitted since the last drain; setData batches last, one per page/component
  K.drain = function () {
    var out = K.outbox;
    K.outbox = [];
    batches.forEach(function (b) {
      if (b.keys.length === 0 || (b.alive && !b.alive())) return;
      var diff = {};
      b.keys.forEach(function (k) { diff[k] = b.diff[k]; });
      var msg = { t: 'setData', pageId: b.pageId, diff: diff };
      if (b.comp) msg.comp = b.comp;
      out.push(msg);
    });
    batches = [];
    batchIndex = Object.create(null);
    if (afterFlush.length) out.push({ t: 'flushed' });
    return JSON.stringify(out);
  };
  // the host sent the diffs: setData callbacks run now
  K.afterFlush = function () {
    var due = afterFlush;
    afterFlush = [];
    due.forEach(function (cb) { K.guard(cb.fn, cb.self, []); });
  };

  Object.defineProperty(g, '__vhk', { value: K, configurable: true, enumerable: false, writable: false });
})(globalThis);
