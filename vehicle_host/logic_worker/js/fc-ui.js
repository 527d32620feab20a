// vehicle-host logic worker, part 7: fc APIs drawn by the shell (ui.* api.calls), navigation
// (nav.request) and fc.request (network.request).
(function (g, K) {
  'use strict';
  var fc = K.fc;

  // ui APIs: fc.<name>(args) -> api.call{method: 'ui.<name>', args}
  var UI = {
    showToast: { title: 'string!', icon: 'string', image: 'string', duration: 'number', mask: 'boolean' },
    hideToast: {},
    showModal: { title: 'string', content: 'string', showCancel: 'boolean', cancelText: 'string', cancelColor: 'string',
      confirmText: 'string', confirmColor: 'string', editable: 'boolean', placeholderText: 'string' },
    showLoading: { title: 'string!', mask: 'boolean' },
    hideLoading: {},
    showActionSheet: { itemList: 'array!', itemColor: 'string', alertText: 'string' },
    setNavigationBarTitle: { title: 'string!' },
    setNavigationBarColor: { frontColor: 'string!', backgroundColor: 'string!', animation: 'object' },
    showNavigationBarLoading: {},
    hideNavigationBarLoading: {},
    setTabBarBadge: { index: 'number!', text: 'string!' },
    removeTabBarBadge: { index: 'number!' },
    showTabBarRedDot: { index: 'number!' },
    hideTabBarRedDot: { index: 'number!' },
    setTabBarItem: { index: 'number!', text: 'string', iconPath: 'string', selectedIconPath: 'string' },
    setTabBarStyle: { color: 'string', selectedColor: 'string', backgroundColor: 'string', borderStyle: 'string' },
    showTabBar: { animation: 'boolean' },
    hideTabBar: { animation: 'boolean' },
    startPullDownRefresh: {},
    stopPullDownRefresh: {},
    pageScrollTo: { scrollTop: 'number', duration: 'number', selector: 'string', offsetTop: 'number' },
    setBackgroundColor: { backgroundColor: 'string', backgroundColorTop: 'string', backgroundColorBottom: 'string' },
    setBackgroundTextStyle: { textStyle: 'string!' },
  };
  var MAX_ACTIONS = 6;
  // a modal or action sheet waits for the driver (and for the app to be on screen again), not
  // for the usual call time limit; consent questions on plugin calls are covered by their own limit
  var DRIVER_ANSWER_MS = 600 * 1000; // the longest a worker lets a call wait

  Object.keys(UI).forEach(function (name) {
    K.hostApi(name, 'ui.' + name, UI[name], {
      optionalArgs: true,
      timeoutMs: name === 'showModal' || name === 'showActionSheet' ? DRIVER_ANSWER_MS : undefined,
      args: function (args) {
        var out = K.plainArgs(args);
        if (name === 'showActionSheet') {
          if (out.itemList.length === 0 || out.itemList.length > MAX_ACTIONS) {
            throw new Error('parameter error: itemList needs 1 to ' + MAX_ACTIONS + ' items;');
          }
          out.itemList = out.itemList.map(String);
        }
        if (name === 'showModal' && out.showCancel === undefined) out.showCancel = true;
        return out;
      },
      result: function (value) {
        var out = K.isObject(value) ? Object.assign({}, value) : {};
        if (name === 'showModal') {
          out.confirm = out.confirm === true;
          out.cancel = out.cancel === true || !out.confirm;
        }
        if (name === 'showActionSheet' && out.cancel === true) return null; // handled by fail below
        return out;
      },
    });
  });
  // an action sheet dismissed without a choice fails with "cancel", as WeChat does
  var actionSheet = fc.showActionSheet;
  fc.showActionSheet = function (args) {
    if (!K.isObject(args)) return actionSheet(args);
    var cbs = K.isFn(args.success) || K.isFn(args.fail) || K.isFn(args.complete);
    var wrapped = Object.assign({}, args);
    var p = new Promise(function (resolve, reject) {
      wrapped.success = function (res) {
        if (typeof res.tapIndex !== 'number') { res = { errMsg: 'showActionSheet:fail cancel' }; reject(res); return; }
        resolve(res);
      };
      wrapped.fail = reject;
    });
    delete wrapped.complete;
    actionSheet(wrapped);
    if (!cbs) return p;
    p.then(function (res) {
      if (K.isFn(args.success)) K.guard(args.success, undefined, [res]);
      if (K.isFn(args.complete)) K.guard(args.complete, undefined, [res]);
    }, function (res) {
      if (K.isFn(args.fail)) K.guard(args.fail, undefined, [res]);
      if (K.isFn(args.complete)) K.guard(args.complete, undefined, [res]);
    });
    return undefined;
  };

  // -- navigation: nav.request; the hub answers nav.result, applied by lifecycle.js ----------------
  function navApi(action, spec, fields) {
    K.asyncApi(action, spec, function (args, ctl) {
      K.navRequest(action, fields(args), { ok: ctl.ok, fail: ctl.fail, action: action });
    }, { optionalArgs: true });
  }
  function url(args) {
    if (args.url.length === 0 || args.url.length > 1024) throw new Error('parameter error: url must hold 1 to 1024 characters;');
    return { url: args.url };
  }
  navApi('navigateTo', { url: 'string!' }, url);
  navApi('redirectTo', { url: 'string!' }, url);
  navApi('switchTab', { url: 'string!' }, url);
  navApi('reLaunch', { url: 'string!' }, url);
  navApi('navigateBack', { delta: 'number' }, function (args) {
    var delta = args.delta === undefined ? 1 : Math.floor(args.delta);
    return { delta: delta < 1 ? 1 : Math.min(delta, 64) };
  });

  // -- fc.request: network.request; returns a RequestTask (abort() -> api.cancel) -----------------
  var METHODS = ['OPTIONS', 'GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'TRACE', 'CONNECT', 'PATCH'];
  var MAX_REQUEST_TIMEOUT_MS = 60000;
  K.asyncApi('request', {
    url: 'string!', data: 'string|object|array|arraybuffer|number|boolean', header: 'object', method: 'string',
    timeout: 'number', dataType: 'string', responseType: 'string',
  }, function (args, ctl) {
    var method = (args.method || 'GET').toUpperCase();
    if (METHODS.indexOf(method) < 0) throw new Error('parameter error: method must be one of ' + METHODS.join(', '));
    if (!/^https?:\/\//i.test(args.url)) throw new Error('invalid url "' + args.url.slice(0, 200) + '"');
    var responseType = args.responseType || 'text';
    if (responseType !== 'text' && responseType !== 'arraybuffer') throw new Error('parameter error: responseType must be text or arraybuffer');
    var dataType = args.dataType || 'json';
    var timeout = args.timeout === undefined ? K.limits.callTimeoutMs : Math.max(1, Math.min(args.timeout, MAX_REQUEST_TIMEOUT_MS));
    var payload = { url: args.url, method: method, header: args.header || {}, timeout: timeout, dataType: dataType,
      responseType: responseType };
    if (args.data !== undefined) payload.data = args.data;
    var id = K.hostCall('network.request', payload, {
      result: function (ok, value, error) {
        if (!ok) { ctl.fail(K.reason(error), { code: error.code }); return; }
        var res = K.isObject(value) ? Object.assign({}, value) : { data: value };
        if (dataType === 'json' && responseType === 'text' && typeof res.data === 'string') {
          try { res.data = JSON.parse(res.data); } catch (e) { /* WeChat keeps the text */ }
        }
        if (res.header === undefined) res.header = {};
        if (typeof res.statusCode !== 'number') res.statusCode = 0;
        ctl.ok(res);
      },
    }, { timeoutMs: timeout + 1000 });
    return {
      abort: function () { if (K.cancelCall(id) && !ctl.done) ctl.fail('abort', { code: 'cancelled' }); },
      onHeadersReceived: function () {},
      offHeadersReceived: function () {},
    };
  }, { noPromise: true });
  // the task of a request that failed its argument checks (nothing was sent)
  function idleTask() { return { abort: function () {}, onHeadersReceived: function () {}, offHeadersReceived: function () {} }; }
  // route the request's outcome into the awaitable task (asyncApi has no Promise with noPromise)
  var request = fc.request;
  fc.request = function (args) {
    if (!K.isObject(args)) {
      return Promise.reject({ errMsg: 'request:fail parameter error: parameter should be Object instead of ' + K.typeName(args) + ';' });
    }
    if (K.isFn(args.success) || K.isFn(args.fail) || K.isFn(args.complete)) return request(args) || idleTask();
    var settle = {};
    var p = new Promise(function (resolve, reject) { settle.resolve = resolve; settle.reject = reject; });
    var task = request(Object.assign({}, args, { success: settle.resolve, fail: settle.reject })) || idleTask();
    task.then = function (a, b) { return p.then(a, b); };
    task.catch = function (b) { return p.catch(b); };
    return task;
  };
})(globalThis, globalThis.__vhk);
