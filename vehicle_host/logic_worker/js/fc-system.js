// vehicle-host logic worker, part 9: system information, launch options, app-level listeners,
// base64, the update manager, the log manager, random values and nextTick.
(function (g, K) {
  'use strict';
  var system = {
    brand: 'vehicle-host', model: 'head unit', pixelRatio: 1, screenWidth: 800, screenHeight: 480,
    windowWidth: 800, windowHeight: 480, statusBarHeight: 0, language: 'en', version: '1.0.0',
    system: 'Linux', platform: 'linux', fontSizeSetting: 16, SDKVersion: '3.0.0', benchmarkLevel: 1,
    theme: 'light', deviceOrientation: 'landscape', host: { env: 'vehicle-host' },
    bluetoothEnabled: false, locationEnabled: false, wifiEnabled: false,
  };
  K.system = system;
  K.setSystem = function (info) {
    if (!K.isObject(info)) return;
    if (typeof info.enableDebug === 'boolean') K.debugEnabled = info.enableDebug;
    Object.keys(info).forEach(function (k) {
      var v = info[k];
      if (v === null || ['string', 'number', 'boolean'].indexOf(typeof v) >= 0 || K.isObject(v)) system[k] = K.clone(v);
    });
  };
  function full() {
    var out = K.clone(system);
    out.safeArea = out.safeArea || { left: 0, right: out.windowWidth, top: 0, bottom: out.windowHeight,
      width: out.windowWidth, height: out.windowHeight };
    return out;
  }
  function pick(keys) {
    var all = full();
    var out = {};
    keys.forEach(function (k) { if (all[k] !== undefined) out[k] = all[k]; });
    return out;
  }

  K.syncApi('getSystemInfoSync', full);
  K.asyncApi('getSystemInfo', {}, function (args, ctl) { K.later(function () { ctl.ok(full()); }); }, { optionalArgs: true });
  K.asyncApi('getSystemInfoAsync', {}, function (args, ctl) { K.later(function () { ctl.ok(full()); }); }, { optionalArgs: true });
  K.syncApi('getWindowInfo', function () {
    return pick(['pixelRatio', 'screenWidth', 'screenHeight', 'windowWidth', 'windowHeight', 'statusBarHeight', 'safeArea', 'screenTop']);
  });
  K.syncApi('getDeviceInfo', function () {
    return pick(['brand', 'model', 'system', 'platform', 'benchmarkLevel', 'abi', 'cpuType', 'memorySize']);
  });
  K.syncApi('getAppBaseInfo', function () {
    return pick(['SDKVersion', 'enableDebug', 'host', 'language', 'version', 'theme', 'fontSizeSetting']);
  });
  K.syncApi('getSystemSetting', function () {
    return pick(['bluetoothEnabled', 'locationEnabled', 'wifiEnabled', 'deviceOrientation']);
  });
  K.syncApi('getAppAuthorizeSetting', function () {
    var s = {};
    ['albumAuthorized', 'bluetoothAuthorized', 'cameraAuthorized', 'locationAuthorized', 'microphoneAuthorized',
      'notificationAuthorized', 'phoneCalendarAuthorized'].forEach(function (k) { s[k] = 'not determined'; });
    return Object.assign(s, K.isObject(system.authorize) ? system.authorize : {});
  });
  K.syncApi('getLaunchOptionsSync', function () { return K.clone(K.launchOptions); });
  K.syncApi('getEnterOptionsSync', function () { return K.clone(K.launchOptions); });

  K.fc.env = Object.freeze({ USER_DATA_PATH: 'vhfile://usr' });
  K.names.push('env');

  K.syncApi('arrayBufferToBase64', function (buffer) {
    if (!(buffer instanceof ArrayBuffer) && !ArrayBuffer.isView(buffer)) {
      throw new Error('parameter error: arrayBuffer should be ArrayBuffer instead of ' + K.typeName(buffer) + ';');
    }
    return K.wireEncode(buffer).__vh_bytes__;
  });
  K.syncApi('base64ToArrayBuffer', function (text) {
    if (typeof text !== 'string') throw new Error('parameter error: base64 should be String instead of ' + K.typeName(text) + ';');
    return K.base64ToBytes(text);
  });

  // -- app-level listeners ------------------------------------------------------------------------
  K.listenerPair('onAppShow', 'offAppShow', K.appListeners.show);
  K.listenerPair('onAppHide', 'offAppHide', K.appListeners.hide);
  K.listenerPair('onError', 'offError', K.errorListeners);
  K.rejectionListeners = [];
  K.listenerPair('onUnhandledRejection', 'offUnhandledRejection', K.rejectionListeners);
  K.pageNotFoundListeners = [];
  K.listenerPair('onPageNotFound', 'offPageNotFound', K.pageNotFoundListeners);
  [['onAppRoute', 'offAppRoute', 'appRoute'], ['onAppRouteDone', 'offAppRouteDone', 'appRouteDone'],
    ['onBeforeAppRoute', 'offBeforeAppRoute', 'beforeAppRoute'], ['onBeforePageLoad', 'offBeforePageLoad', 'beforePageLoad'],
    ['onAfterPageLoad', 'offAfterPageLoad', 'afterPageLoad'], ['onBeforePageUnload', 'offBeforePageUnload', 'beforePageUnload'],
    ['onAfterPageUnload', 'offAfterPageUnload', 'afterPageUnload']].forEach(function (p) {
    K.listenerPair(p[0], p[1], K.routeListeners[p[2]]);
  });
  K.themeListeners = [];
  K.listenerPair('onThemeChange', 'offThemeChange', K.themeListeners);

  // -- update manager: asks the hub (update.check); an unknown method means "no update" -----------
  var updateManager = null;
  K.define('getUpdateManager', function () {
    if (updateManager !== null) return updateManager;
    var state = { checked: false, hasUpdate: false, ready: false, failed: false };
    var listeners = { check: [], ready: [], failed: [] };
    function emitTo(list, arg) { list.slice().forEach(function (fn) { K.guard(fn, undefined, [arg]); }); }
    K.hostCall('update.check', {}, {
      result: function (ok, value) {
        state.checked = true;
        state.hasUpdate = ok && K.isObject(value) && value.hasUpdate === true;
        emitTo(listeners.check, { hasUpdate: state.hasUpdate });
        if (state.hasUpdate && value.ready === true) { state.ready = true; emitTo(listeners.ready, {}); }
        if (state.hasUpdate && value.failed === true) { state.failed = true; emitTo(listeners.failed, {}); }
      },
    });
    function register(list, flag, arg) {
      return function (fn) {
        if (!K.isFn(fn)) throw new TypeError('expects a function, got ' + K.typeName(fn));
        list.push(fn);
        if (flag()) K.later(function () { K.guard(fn, undefined, [arg()]); });
      };
    }
    updateManager = {
      onCheckForUpdate: register(listeners.check, function () { return state.checked; }, function () { return { hasUpdate: state.hasUpdate }; }),
      onUpdateReady: register(listeners.ready, function () { return state.ready; }, function () { return {}; }),
      onUpdateFailed: register(listeners.failed, function () { return state.failed; }, function () { return {}; }),
      applyUpdate: function () {
        if (!state.ready) { K.console.warn('applyUpdate: no update is ready'); return; }
        K.hostCall('update.apply', {}, { result: function () {} });
      },
    };
    return updateManager;
  });

  // -- log manager: console routing ----------------------------------------------------------------
  K.define('getLogManager', function (options) {
    var level = K.isObject(options) && options.level === 1 ? 1 : 0;
    var c = K.console;
    return {
      log: c.info, info: c.info, warn: c.warn,
      debug: level === 0 ? c.debug : function () {},
    };
  });

  // -- random values: the worker answers from the kernel's random source (os.urandom) -------------
  var MAX_RANDOM = 1024;
  K.asyncApi('getRandomValues', { length: 'number!' }, function (args, ctl) {
    var n = Math.floor(args.length);
    if (!(n >= 1 && n <= MAX_RANDOM)) throw new Error('parameter error: length must be 1 to ' + MAX_RANDOM + ';');
    K.hostCall('$random', { length: n }, {
      result: function (ok, value, error) {
        if (ok && K.isObject(value) && value.randomValues instanceof ArrayBuffer) ctl.ok({ randomValues: value.randomValues });
        else ctl.fail(K.reason(error));
      },
    });
  });

  K.define('nextTick', function (fn) {
    if (!K.isFn(fn)) throw new TypeError('nextTick expects a function, got ' + K.typeName(fn));
    Promise.resolve().then(function () { K.guard(fn, undefined, []); });
  });
})(globalThis, globalThis.__vhk);
