// vehicle-host shell page, part 5: what apps ask the shell to draw (ui.request -> ui.response).
//
// Toasts, loading, modals, action sheets and consent dialogs belong to the app that asked. Only the
// app on screen shows them (as WeChat never shows another mini-program's modal):
// - a modal, action sheet or consent for an app in the background waits in that app's queue and
//   appears when the driver opens the app again (answered only when the driver taps);
// - a dialog open when the driver leaves the app goes back to the front of that queue;
// - a toast for an app in the background is answered {} and not shown; loading is remembered and
//   shown while the app is on screen until hideLoading;
// - closing or losing the app answers its waiting dialogs as cancelled ({cancel: true} /
//   {granted: false}); more than MAX_QUEUE waiting dialogs per app are answered the same way.
(function () {
  'use strict';
  var S = window.__vhShell;
  var state = S.state;
  var $ = S.$;
  var MAX_QUEUE = 8;
  var ICONS = { success: '\u2713', error: '\u2715', loading: '', none: '' };

  var dialog = null;  // the dialog on screen: {p, appId, requestId, kind, title, buttons}
  var queues = {};    // app id -> waiting ui.request payloads
  var toast = null;   // the toast on screen: {appId, title, icon, loading, mask, timer}

  function respond(requestId, result) { S.send('ui.response', 'hub', { request_id: requestId, result: result }); }

  // the driver's answers to a consent question: {granted, remember} (remember false: allow once)
  var PLAIN = {
    'vehicle.diagnostics.read': 'read fault codes and vehicle data',
    'vehicle.diagnostics.clear': 'clear stored fault codes',
    'vehicle.signals': 'read speed, gear and ignition',
    'display.brightness': 'change the screen brightness',
    'display.keepScreenOn': 'keep the screen on',
    'clipboard.read': 'read the clipboard',
    'clipboard.write': 'copy to the clipboard',
    'network.request': 'use the internet',
    'location': 'use the vehicle\u2019s location',
  };
  S.plainPermission = function (permission) {
    return typeof permission === 'string' && Object.prototype.hasOwnProperty.call(PLAIN, permission)
      ? PLAIN[permission] : null;
  };

  function cancelled(kind, why) {
    var result = kind === 'consent' ? { granted: false, remember: false } : kind === 'modal' ? { confirm: false, cancel: true } : { cancel: true };
    if (why) result.error = why;
    return result;
  }

  S.uiRequest = function (p) {
    var appId = p.app_id;
    var rid = p.request_id;
    var params = p.params && typeof p.params === 'object' ? p.params : {};
    var here = state.appId === appId && S.view() === 'app-view' && !S.locked(appId);
    var st = state.stacks[appId];
    if (typeof rid !== 'number' || typeof appId !== 'string') return;
    if (p.kind === 'toast') {
      if (st) st.loading = null;
      if (here) showToast(appId, params, false);
      respond(rid, {});
    } else if (p.kind === 'hideToast') {
      if (toast && toast.appId === appId && !toast.loading) hideToast();
      respond(rid, {});
    } else if (p.kind === 'loading') {
      if (st) st.loading = { title: params.title, mask: params.mask === true };
      if (here) showToast(appId, params, true);
      respond(rid, {});
    } else if (p.kind === 'hideLoading') {
      if (st) st.loading = null;
      if (toast && toast.appId === appId && toast.loading) hideToast();
      respond(rid, {});
    } else if (p.kind === 'modal' || p.kind === 'actionSheet' || p.kind === 'consent') {
      var queue = queues[appId] = queues[appId] || [];
      if (queue.length >= MAX_QUEUE) { respond(rid, cancelled(p.kind, 'too many dialogs are waiting')); return; }
      queue.push(p);
      pump();
    } else if (p.kind === 'navigationBar') {
      respond(rid, S.navBarOp(appId, params));
    } else if (p.kind === 'tabBar') {
      respond(rid, S.tabBarOp(appId, params));
    } else if (p.kind === 'app') {
      respond(rid, S.appOp(appId, params));
    } else {
      respond(rid, { error: 'the shell cannot draw ' + S.text(String(p.kind), 32) });
    }
  };

  // -- toast and loading ------------------------------------------------------------------------
  function showToast(appId, params, loading) {
    var icon = loading ? 'loading' : (Object.prototype.hasOwnProperty.call(ICONS, params.icon) ? params.icon : 'success');
    var title = S.text(params.title, 80, '');
    if (loading && !title) title = 'Loading\u2026';
    hideToast();
    if (!title && icon === 'none') return;  // nothing to say
    var box = $('toast');
    box.textContent = '';
    if (icon !== 'none') box.appendChild(S.el('div', 'mark ' + icon, ICONS[icon]));
    if (title) box.appendChild(S.el('div', 'text', title));
    box.classList.add('shown');
    $('toast-mask').classList.toggle('shown', params.mask === true);
    var current = toast = { appId: appId, title: title, icon: icon, loading: loading, mask: params.mask === true, timer: 0 };
    if (!loading) {
      var ms = Number(params.duration);
      ms = isFinite(ms) && ms > 0 ? Math.min(ms, 60000) : 1500;
      current.timer = setTimeout(function () { if (toast === current) hideToast(); }, ms);
    }
  }

  function hideToast() {
    if (toast) clearTimeout(toast.timer);
    toast = null;
    $('toast').classList.remove('shown');
    $('toast-mask').classList.remove('shown');
  }

  // -- dialogs ----------------------------------------------------------------------------------
  function pump() {
    if (dialog || state.appId === null || S.view() !== 'app-view' || S.locked(state.appId)) return;
    var queue = queues[state.appId];
    if (queue && queue.length) openDialog(queue.shift());
  }

  function button(text, cls, colour, onTap) {
    var node = S.el('button', cls, text);
    if (colour) node.style.color = colour;
    node.addEventListener('click', onTap);
    return node;
  }

  function openDialog(p) {
    var params = p.params && typeof p.params === 'object' ? p.params : {};
    var layer = $('dialog-layer');
    var box = S.el('div', 'dialog');
    var current = { p: p, appId: p.app_id, requestId: p.request_id, kind: p.kind, title: '', buttons: [] };
    function answer(result) {
      if (dialog !== current) return;
      dialog = null;
      layer.classList.remove('shown', 'sheet');
      layer.textContent = '';
      layer.onclick = null;
      respond(current.requestId, result);
      pump();
    }
    var buttons = S.el('div', 'buttons');
    if (p.kind === 'modal') {
      var title = S.text(params.title, 100, '');
      var content = S.text(params.content, 2000, '');
      if (!title && !content) title = S.appName(p.app_id);
      current.title = title || content;
      if (title) box.appendChild(S.el('h1', '', title));
      if (content) box.appendChild(S.el('p', '', content));
      if (params.showCancel !== false) {
        buttons.appendChild(button(S.text(params.cancelText, 12, '') || 'Cancel', '', S.colour(params.cancelColor),
          function () { answer({ confirm: false, cancel: true }); }));
      }
      buttons.appendChild(button(S.text(params.confirmText, 12, '') || 'OK', 'primary', S.colour(params.confirmColor),
        function () { answer({ confirm: true, cancel: false }); }));
      box.appendChild(buttons);
    } else if (p.kind === 'consent') {
      var name = S.text(params.app_name, 60, '') || S.appName(p.app_id);
      var what = (S.plainPermission(params.permission) || S.text(params.text, 200, '') ||
                  'use ' + S.text(params.permission, 80, 'a protected function')).replace(/[\s.?!]+$/, '');
      box.className = 'dialog consent';
      current.title = 'Allow ' + name + ' to ' + what + '?';
      box.appendChild(S.el('h1', '', current.title));
      if (typeof params.permission === 'string' && params.permission) {
        box.appendChild(S.el('p', 'note', 'Permission: ' + S.text(params.permission, 80) +
                             '. You can change this later in the app\u2019s info page.'));
      }
      buttons.className = 'buttons three';
      buttons.appendChild(button('Don\u2019t allow', '', null, function () { answer({ granted: false, remember: true }); }));
      buttons.appendChild(button('Allow once', '', null, function () { answer({ granted: true, remember: false }); }));
      buttons.appendChild(button('Always allow', 'primary', null, function () { answer({ granted: true, remember: true }); }));
      box.appendChild(buttons);
    } else {  // actionSheet
      var items = Array.isArray(params.itemList) ? params.itemList : [];
      if (items.length < 1 || items.length > 6) {
        respond(p.request_id, cancelled('actionSheet', 'itemList must have 1 to 6 entries'));
        pump();
        return;
      }
      box.className = 'dialog sheet';
      layer.classList.add('sheet');
      if (typeof params.alertText === 'string' && params.alertText) {
        box.appendChild(S.el('div', 'alert', S.text(params.alertText, 120)));
      }
      current.title = S.text(params.alertText, 120, '');
      var itemColour = S.colour(params.itemColor);
      var grid = S.el('div', items.length > 3 ? 'items two' : 'items');  // six rows would not fit 480 px
      items.forEach(function (item, i) {
        grid.appendChild(button(S.text(item, 40, '') || '\u2014', 'item', itemColour, function () { answer({ tapIndex: i }); }));
      });
      box.appendChild(grid);
      box.appendChild(button('Cancel', 'cancel', null, function () { answer({ cancel: true }); }));
      layer.onclick = function (event) { if (event.target === layer) answer({ cancel: true }); };
    }
    Array.prototype.forEach.call(box.querySelectorAll('button'), function (b) { current.buttons.push(b.textContent); });
    dialog = current;
    layer.textContent = '';
    layer.appendChild(box);
    layer.classList.add('shown');
  }

  function closeDialogLayer() {
    var layer = $('dialog-layer');
    layer.classList.remove('shown', 'sheet');
    layer.textContent = '';
    layer.onclick = null;
    dialog = null;
  }

  // the driver opened an app: its loading indicator and waiting dialogs come back
  S.onAppShown = function (appId) {
    if (S.locked(appId)) return;
    var st = state.stacks[appId];
    if (st && st.loading) showToast(appId, st.loading, true);
    pump();
  };

  // the driver left an app: its dialog waits for the next visit, its toast goes away
  S.onAppHidden = function (appId) {
    if (dialog && dialog.appId === appId) {
      (queues[appId] = queues[appId] || []).unshift(dialog.p);
      closeDialogLayer();
    }
    if (toast && toast.appId === appId) hideToast();
  };

  // the app is closed or gone: nobody will ever see its dialogs
  S.cancelDialogs = function (appId, quiet) {
    var waiting = queues[appId] || [];
    delete queues[appId];
    if (dialog && dialog.appId === appId) {
      waiting.unshift(dialog.p);
      closeDialogLayer();
    }
    if (!quiet) waiting.forEach(function (p) { respond(p.request_id, cancelled(p.kind, 'the app was closed')); });
    if (toast && toast.appId === appId) hideToast();
    pump();
  };

  S.dialogSnapshot = function () {
    if (!dialog) return null;
    return { kind: dialog.kind, title: dialog.title, buttons: dialog.buttons.slice(), app_id: dialog.appId,
             request_id: dialog.requestId };
  };
  S.queuedDialogs = function () {
    var n = 0;
    Object.keys(queues).forEach(function (id) { n += queues[id].length; });
    return n;
  };
  S.toastSnapshot = function () {
    return toast ? { title: toast.title, icon: toast.icon, loading: toast.loading, mask: toast.mask } : null;
  };
})();
