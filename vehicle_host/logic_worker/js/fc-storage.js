// vehicle-host logic worker, part 8: storage. Reads are served from the copy the hub sent in
// worker.start; every write changes the copy at once and is sent as storage.set / storage.remove /
// storage.clear, merged per turn (the last write of a key wins).
(function (g, K) {
  'use strict';
  var store = Object.create(null); // key -> JSON text
  var used = 0; // bytes of keys + values
  var QUOTA = 10 * 1024 * 1024;
  var PER_KEY = 1000000; // key + value: 1 MB, so the write still fits one wire message (1 MiB)
  var MAX_KEY = 256; // UTF-8 bytes, as the storage plugin accepts
  var pending = []; // ordered writes of this turn: {op, key, value}

  function cost(key, text) { return K.utf8Length(key) + K.utf8Length(text); }

  K.loadStorage = function (items) {
    Object.keys(K.isObject(items) ? items : {}).forEach(function (key) {
      var text = items[key];
      if (typeof text !== 'string') return;
      store[key] = text;
      used += cost(key, text);
    });
  };

  function queue(op, key, value) {
    if (op === 'clear') pending = [];
    else pending = pending.filter(function (w) { return w.key !== key; });
    pending.push({ op: op, key: key, value: value });
  }
  K.flushStorage = function () {
    var writes = pending;
    pending = [];
    writes.forEach(function (w) {
      var args = w.op === 'set' ? { key: w.key, value: w.value } : w.op === 'remove' ? { key: w.key } : {};
      K.hostCall('storage.' + w.op, args, {
        result: function (ok, value, error) {
          if (!ok) K.console.error('storage.' + w.op + ' could not be saved on the head unit: ' + K.reason(error));
        },
      });
    });
  };

  function checkKey(key) {
    if (typeof key !== 'string') throw new Error('parameter error: parameter.key should be String instead of ' + K.typeName(key) + ';');
    if (key.length === 0) throw new Error('parameter error: the key must not be empty;');
    if (K.utf8Length(key) > MAX_KEY) throw new Error('the key is longer than ' + MAX_KEY + ' bytes of UTF-8');
    // as the storage plugin: no control characters; and text only (a lone surrogate is no UTF-8)
    if (/[\u0000-\u001f\u007f]/.test(key)) throw new Error('the key may not contain control characters');
    if (/[\ud800-\udbff](?![\udc00-\udfff])|(^|[^\ud800-\udbff])[\udc00-\udfff]/.test(key)) {
      throw new Error('the key is not valid text (a lone UTF-16 surrogate)');
    }
  }

  function set(key, data) {
    checkKey(key);
    if (data === undefined) throw new Error('parameter error: parameter.data should not be Undefined;');
    var text;
    try { text = JSON.stringify(data); } catch (e) { throw new Error('the data of key "' + key + '" cannot be stored: ' + e.message); }
    if (text === undefined) throw new Error('the data of key "' + key + '" cannot be stored (a ' + K.typeName(data) + ')');
    var size = cost(key, text);
    if (size > PER_KEY) {
      throw new Error('the data of key "' + key + '" is ' + size + ' bytes; one key may hold at most 1 MB');
    }
    var before = store[key] === undefined ? 0 : cost(key, store[key]);
    if (used - before + size > QUOTA) {
      throw new Error('exceed storage max size 10MB: remove keys you no longer need with removeStorage');
    }
    store[key] = text;
    used += size - before;
    queue('set', key, text);
  }
  function get(key) {
    checkKey(key);
    var text = store[key];
    if (text === undefined) return undefined;
    try { return JSON.parse(text); } catch (e) { return text; }
  }
  function remove(key) {
    checkKey(key);
    if (store[key] === undefined) return;
    used -= cost(key, store[key]);
    delete store[key];
    queue('remove', key);
  }
  function clear() {
    store = Object.create(null);
    used = 0;
    queue('clear');
  }
  function info() {
    return { keys: Object.keys(store), currentSize: Math.ceil(used / 1024), limitSize: QUOTA / 1024 };
  }

  K.syncApi('setStorageSync', function (key, data) { set(key, data); });
  K.syncApi('getStorageSync', function (key) { var v = get(key); return v === undefined ? '' : v; });
  K.syncApi('removeStorageSync', function (key) { remove(key); });
  K.syncApi('clearStorageSync', function () { clear(); });
  K.syncApi('getStorageInfoSync', function () { return info(); });
  K.syncApi('batchGetStorageSync', function (keyList) {
    if (!Array.isArray(keyList)) throw new Error('parameter error: parameter.keyList should be Array instead of ' + K.typeName(keyList) + ';');
    return keyList.map(function (key) { var v = get(key); return v === undefined ? '' : v; });
  });
  K.syncApi('batchSetStorageSync', function (kvList) {
    if (!Array.isArray(kvList)) throw new Error('parameter error: parameter.kvList should be Array instead of ' + K.typeName(kvList) + ';');
    kvList.forEach(function (kv) {
      if (!K.isObject(kv)) throw new Error('parameter error: kvList items should be {key, value} objects;');
      set(kv.key, kv.value);
    });
  });

  function local(name, spec, fn) {
    K.asyncApi(name, spec, function (args, ctl) {
      var result;
      try { result = fn(args); } catch (e) { var m = String(e.message || e); K.later(function () { ctl.fail(m); }); return; }
      K.later(function () { ctl.ok(result); });
    });
  }
  local('setStorage', { key: 'string!', data: 'any' }, function (a) { set(a.key, a.data); return {}; });
  local('getStorage', { key: 'string!' }, function (a) {
    var v = get(a.key);
    if (v === undefined) throw new Error('data not found');
    return { data: v };
  });
  local('removeStorage', { key: 'string!' }, function (a) { remove(a.key); return {}; });
  local('clearStorage', {}, function () { clear(); return {}; });
  local('getStorageInfo', {}, function () { return info(); });
  local('batchGetStorage', { keyList: 'array!' }, function (a) {
    return { dataList: a.keyList.map(function (key) { var v = get(key); return v === undefined ? '' : v; }) };
  });
  local('batchSetStorage', { kvList: 'array!' }, function (a) {
    a.kvList.forEach(function (kv) {
      if (!K.isObject(kv)) throw new Error('parameter error: kvList items should be {key, value} objects;');
      set(kv.key, kv.value);
    });
    return {};
  });
})(globalThis, globalThis.__vhk);
