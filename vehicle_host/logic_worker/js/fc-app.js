// vehicle-host logic worker, part 10: the app's own life (exit, restart, other mini-apps), account info,
// settings and grants, clipboard, phone, display and network status. Each leaves the worker as one
// api.call the hub routes (app.*, settings.*, clipboard.*, display.*, network.*).
(function (g, K) {
  'use strict';
  var MAX_TEXT = 1000 * 1000;

  // -- the app itself and other mini-apps ---------------------------------------------------------
  K.hostApi('exitMiniProgram', 'app.exit', {}, { optionalArgs: true, args: function () { return {}; } });
  K.hostApi('restartMiniProgram', 'app.restart', { path: 'string' }, {
    optionalArgs: true,
    args: function (a) { return a.path === undefined ? {} : { path: a.path }; },
  });
  K.hostApi('navigateToMiniProgram', 'app.open', {
    appId: 'string!', path: 'string', extraData: 'object', envVersion: 'string',
  }, {
    args: function (a) {
      if (a.appId === '' || a.appId.length > 256) throw new Error('parameter error: appId must hold 1 to 256 characters;');
      if (a.envVersion !== undefined && ['develop', 'trial', 'release'].indexOf(a.envVersion) < 0) {
        throw new Error('parameter error: envVersion must be develop, trial or release;');
      }
      var out = { appId: a.appId };
      if (a.path !== undefined) out.path = a.path;
      if (a.extraData !== undefined) out.extraData = a.extraData;
      if (a.envVersion !== undefined) out.envVersion = a.envVersion;
      return out;
    },
  });
  K.hostApi('navigateBackMiniProgram', 'app.back', { extraData: 'object' }, {
    optionalArgs: true,
    args: function (a) { return a.extraData === undefined ? {} : { extraData: a.extraData }; },
  });

  K.syncApi('getAccountInfoSync', function () {
    var s = K.system;
    var version = typeof s.appVersion === 'string' ? s.appVersion : typeof s.app_version === 'string' ? s.app_version : '';
    return { miniProgram: { appId: K.appId, envVersion: 'release', version: version }, plugin: {} };
  });

  // -- settings: the hub's grant store ------------------------------------------------------------
  function settingsResult(value) {
    var out = K.isObject(value) ? Object.assign({}, value) : {};
    if (!K.isObject(out.authSetting)) out.authSetting = {};
    return out;
  }
  K.hostApi('authorize', 'settings.authorize', { scope: 'string!' }, {
    args: function (a) {
      if (a.scope === '' || a.scope.length > 128) throw new Error('parameter error: scope must hold 1 to 128 characters;');
      return { scope: a.scope };
    },
    result: function () { return {}; },
    timeoutMs: 600 * 1000, // the driver may be asked
  });
  function withSubscriptions(a) { return a.withSubscriptions === undefined ? {} : { withSubscriptions: a.withSubscriptions }; }
  K.hostApi('getSetting', 'settings.get', { withSubscriptions: 'boolean' }, {
    optionalArgs: true, args: withSubscriptions, result: settingsResult,
  });

  // -- clipboard, display ----------------------------------------------------------------------
  K.hostApi('setClipboardData', 'clipboard.set', { data: 'string!' }, {
    args: function (a) {
      if (K.utf8Length(a.data) > MAX_TEXT) throw new Error('the data is larger than 1 MB (1,000,000 bytes)');
      return { data: a.data };
    },
    result: function () { return {}; },
  });
  K.hostApi('getClipboardData', 'clipboard.get', {}, {
    optionalArgs: true,
    args: function () { return {}; },
    result: function (value) { return { data: K.isObject(value) && typeof value.data === 'string' ? value.data : '' }; },
  });
  K.hostApi('setKeepScreenOn', 'display.setKeepScreenOn', { keepScreenOn: 'boolean!' }, {
    args: function (a) { return { keepScreenOn: a.keepScreenOn }; },
    result: function () { return {}; },
  });
  K.hostApi('getScreenBrightness', 'display.getScreenBrightness', {}, {
    optionalArgs: true,
    args: function () { return {}; },
    result: function (value) {
      var v = K.isObject(value) ? value.value : undefined;
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error('the head unit reported no brightness');
      return { value: v };
    },
  });
  K.hostApi('setScreenBrightness', 'display.setScreenBrightness', { value: 'number!' }, {
    args: function (a) {
      if (!(a.value >= 0 && a.value <= 1)) throw new Error('parameter error: value must be between 0 and 1;');
      return { value: a.value };
    },
    result: function () { return {}; },
  });

  // -- network status -----------------------------------------------------------------------------
  var NETWORK_TYPES = ['wifi', '2g', '3g', '4g', '5g', 'ethernet', 'unknown', 'none'];
  function networkType(value) { return NETWORK_TYPES.indexOf(value) >= 0 ? value : 'unknown'; }
  K.hostApi('getNetworkType', 'network.type', {}, {
    optionalArgs: true,
    args: function () { return {}; },
    result: function (value) {
      var v = K.isObject(value) ? value : {};
      var out = { networkType: networkType(v.networkType) };
      if (typeof v.signalStrength === 'number') out.signalStrength = v.signalStrength;
      if (typeof v.hasSystemProxy === 'boolean') out.hasSystemProxy = v.hasSystemProxy;
      return out;
    },
  });

  // one network.watch stream while anyone listens; it is cancelled when the last listener goes
  var netListeners = [];
  var watchId = null;
  function startWatch() {
    if (watchId !== null) return;
    var id = K.hostCall('network.watch', {}, {
      stream: true,
      result: function (ok, value, error) {
        if (ok) return;
        if (watchId === id) watchId = null;
        K.console.warn('onNetworkStatusChange: the head unit cannot report network changes (' + K.reason(error) + ')');
      },
      event: function (data, end) {
        if (end && watchId === id) watchId = null;
        if (!K.isObject(data) || typeof data.isConnected !== 'boolean') return;
        var status = { isConnected: data.isConnected, networkType: networkType(data.networkType) };
        netListeners.slice().forEach(function (fn) { K.guard(fn, undefined, [K.clone(status)]); });
      },
    }, { stream: true });
    watchId = id;
  }
  function stopWatch() {
    if (watchId === null || netListeners.length > 0) return;
    K.cancelCall(watchId);
    watchId = null;
  }
  K.define('onNetworkStatusChange', function (fn) {
    if (!K.isFn(fn)) throw new TypeError('onNetworkStatusChange expects a function, got ' + K.typeName(fn));
    if (netListeners.indexOf(fn) < 0) netListeners.push(fn);
    startWatch();
  });
  K.define('offNetworkStatusChange', function (fn) {
    if (fn === undefined) netListeners.length = 0;
    else if (netListeners.indexOf(fn) >= 0) netListeners.splice(netListeners.indexOf(fn), 1);
    stopWatch();
  });
})(globalThis, globalThis.__vhk);
