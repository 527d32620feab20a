// vehicle-host shell page, part 6: the app-info page (from a tile's info button or a long press, and
// from the running app's chrome): name, version, publisher, storage use, and each permission with
// the driver's answer and buttons to allow, deny or forget it (grant.set; null = ask again).
(function () {
  'use strict';
  var S = window.__vhShell;
  var state = S.state;
  var $ = S.$;
  var shown = null;  // {appId, info, status, from}

  function size(bytes) {
    var n = Number(bytes);
    if (!isFinite(n) || n < 0) return '?';
    if (n < 1024) return n + ' B';
    if (n < 1024 * 1024) return (n / 1024).toFixed(n < 10240 ? 1 : 0) + ' KB';
    return (n / 1024 / 1024).toFixed(1) + ' MB';
  }

  function answerText(granted) {
    return granted === true ? 'Allowed' : granted === false ? 'Not allowed' : 'Asks each time';
  }

  S.openInfo = function (appId) {
    if (typeof appId !== 'string') return;
    var from = S.view() === 'app-view' ? 'app' : 'launcher';
    if (from === 'app' && state.appId !== null) S.onAppHidden(state.appId);
    shown = { appId: appId, info: null, status: 'loading', from: from };
    $('info-title').textContent = 'About ' + S.appName(appId);
    S.show('info-view');
    render();
    load();
  };

  S.closeInfo = function () {
    var from = shown ? shown.from : 'launcher';
    shown = null;
    if (from === 'app' && state.appId !== null) {
      S.show('app-view');
      S.refresh();
      S.onAppShown(state.appId);
    } else {
      S.goHome();
    }
  };

  function load() {
    var current = shown;
    S.request('app.info', 'hub', { app_id: current.appId }, function (reply) {
      if (shown !== current) return;
      var info = reply && reply.info && typeof reply.info === 'object' ? reply.info : null;
      if (!info) current.status = 'The hub did not answer. Try again in a moment.';
      else if (typeof info.error === 'string') current.status = S.text(info.error, 300);
      else { current.info = info; current.status = 'ok'; state.info[current.appId] = info; }
      render();
    });
  }

  function setGrant(permission, granted) {
    var current = shown;
    current.busy = permission;
    render();
    S.request('grant.set', 'hub', { app_id: current.appId, permission: permission, granted: granted }, function (reply) {
      if (shown !== current) return;
      current.busy = null;
      if (!reply || reply.ok !== true) S.notice((reply && S.text(reply.error, 200)) || 'The change was not saved; try again.');
      else S.notice(S.plainPermission(permission) ? 'Saved: ' + answerText(granted).toLowerCase() + ' to ' +
                    S.plainPermission(permission) : 'Saved');
      load();
    });
  }

  function row(label, value) {
    var line = S.el('div', 'info-row');
    line.appendChild(S.el('span', 'info-label', label));
    line.appendChild(S.el('span', 'info-value', value));
    return line;
  }

  function render() {
    var body = $('info-body');
    body.textContent = '';
    if (!shown) return;
    if (shown.status !== 'ok') {
      body.appendChild(S.el('p', 'info-status', shown.status === 'loading' ? 'Loading\u2026' : shown.status));
      return;
    }
    var info = shown.info;
    body.appendChild(S.el('h1', '', S.text(info.name, 60, shown.appId)));
    body.appendChild(row('Version', S.text(info.version, 40, '?')));
    body.appendChild(row('Publisher', S.text(info.publisher, 80, 'unknown')));
    body.appendChild(row('Safe while driving', info.drivingSafe === true ? 'Yes' : 'No (paused while driving)'));
    var st = info.storage && typeof info.storage === 'object' ? info.storage : null;
    body.appendChild(row('Storage', st ? size(st.currentSize) + ' of ' + size(st.limitSize) +
                         (Array.isArray(st.keys) ? ' (' + st.keys.length + ' keys)' : '') : 'unknown'));
    var perms = Array.isArray(info.permissions) ? info.permissions.slice(0, 32) : [];
    body.appendChild(S.el('h2', '', 'Permissions'));
    if (!perms.length) body.appendChild(S.el('p', 'info-status', 'This app asks for no permissions.'));
    perms.forEach(function (perm) {
      if (!perm || typeof perm.name !== 'string') return;
      var name = S.text(perm.name, 80);
      var words = S.plainPermission(perm.name) || name;
      var granted = perm.granted === true ? true : perm.granted === false ? false : null;
      var line = S.el('div', 'perm');
      line.dataset.permission = perm.name;
      var text = S.el('div', 'perm-text');
      text.appendChild(S.el('div', 'perm-words', words.charAt(0).toUpperCase() + words.slice(1)));
      text.appendChild(S.el('div', 'perm-state', answerText(granted) + (words !== name ? ' \u00b7 ' + name : '')));
      line.appendChild(text);
      var choices = S.el('div', 'perm-choices');
      [[true, 'Allow'], [false, 'Deny'], [null, 'Ask again']].forEach(function (choice) {
        var b = S.button(choice[1], choice[0] === granted ? 'selected' : '', choice[1] + ': ' + words, function () {
          if (choice[0] !== granted && !shown.busy) setGrant(perm.name, choice[0]);
        });
        b.setAttribute('aria-pressed', choice[0] === granted ? 'true' : 'false');
        b.dataset.grant = String(choice[0]);
        if (shown.busy) b.disabled = true;
        choices.appendChild(b);
      });
      line.appendChild(choices);
      body.appendChild(line);
    });
  }

  S.infoSnapshot = function () {
    if (!shown) return null;
    var info = shown.info;
    return { app_id: shown.appId, status: shown.status, name: info ? info.name : null,
             permissions: info && Array.isArray(info.permissions) ? info.permissions : [] };
  };

  $('info-back').addEventListener('click', S.closeInfo);
  $('app-info').addEventListener('click', function () { S.openInfo(state.appId); });
})();
