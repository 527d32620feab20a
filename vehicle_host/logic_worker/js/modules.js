// vehicle-host logic worker, part 2: CommonJS modules. runtime.py wraps every bundle .js file as
// __vh.define(path, kind, function (require, module, exports) { ...source... }) and evaluates it;
// app.js, pages and components run at once ("eager" kinds), any other module on its first require.
// require resolves like WeChat: './x', '../x', '/x' (bundle root), bare 'x' relative to the file,
// then miniprogram_npm/x up the folders; '.js' and '/index.js' are tried. Cycles get the partial
// exports, as in Node.
(function (g, K) {
  'use strict';
  var modules = Object.create(null); // 'utils/util.js' -> {id, kind, factory, module, state}
  var loadingStack = [];
  var MAX_DEPTH = 64;
  K.loading = null; // {kind: 'app' | 'page' | 'component' | 'module', path (without .js)}

  function stripJs(id) { return id.replace(/\.js$/, ''); }
  function dirOf(id) { var at = id.lastIndexOf('/'); return at < 0 ? '' : id.slice(0, at); }

  // join a folder and a relative path; null when it climbs out of the bundle
  function join(dir, rel) {
    var parts = dir === '' ? [] : dir.split('/');
    var segs = rel.split('/');
    for (var i = 0; i < segs.length; i++) {
      var seg = segs[i];
      if (seg === '' || seg === '.') continue;
      if (seg === '..') {
        if (parts.length === 0) return null;
        parts.pop();
      } else parts.push(seg);
    }
    return parts.join('/');
  }

  function candidates(base) {
    if (base === null || base === '') return [];
    if (/\.js$/.test(base)) return [base, base + '.js', base + '/index.js'];
    return [base + '.js', base + '/index.js'];
  }

  function find(list) {
    for (var i = 0; i < list.length; i++) if (modules[list[i]] !== undefined) return list[i];
    return null;
  }

  // the module id ('utils/util.js') that `request` names from the file `from`, or null
  K.resolveModule = function (from, request) {
    var dir = dirOf(from);
    if (request.charAt(0) === '/') return find(candidates(join('', request)));
    if (request.slice(0, 2) === './' || request.slice(0, 3) === '../' || request === '.' || request === '..') {
      return find(candidates(join(dir, request)));
    }
    var hit = find(candidates(join(dir, request)));
    if (hit !== null) return hit;
    // npm packages built by the developer tools: miniprogram_npm/<name> in this folder or above
    var folder = dir;
    for (;;) {
      hit = find(candidates(join(folder, 'miniprogram_npm/' + request)));
      if (hit !== null || folder === '') return hit;
      folder = dirOf(folder);
    }
  };

  function requireFrom(from) {
    var fn = function require(request) {
      if (typeof request !== 'string' || request === '') {
        throw new TypeError('require expects a module path string, got ' + K.typeName(request) + ' (in ' + from + ')');
      }
      var id = K.resolveModule(from, request);
      if (id === null) {
        var bare = request.charAt(0) !== '.' && request.charAt(0) !== '/';
        throw new Error("module '" + request + "' is not defined, required from " + from + (bare
          ? ": only the bundle's own .js files can be required (there are no Node or host modules; " +
            'npm packages must be built into miniprogram_npm)'
          : ': there is no such .js file in the bundle'));
      }
      return run(modules[id]);
    };
    return fn;
  }

  function run(rec) {
    if (rec.state !== 'new') return rec.module.exports; // done, or loading: a cycle sees the partial exports
    if (loadingStack.length >= MAX_DEPTH) throw new Error('modules require each other deeper than ' + MAX_DEPTH + ' levels');
    rec.state = 'loading';
    loadingStack.push(K.loading);
    K.loading = { kind: rec.kind, path: stripJs(rec.id) };
    var ok = false;
    try {
      rec.factory.call(rec.module.exports, requireFrom(rec.id), rec.module, rec.module.exports);
      ok = true;
    } finally {
      K.loading = loadingStack.pop();
      if (ok) { rec.state = 'done'; rec.module.loaded = true; } else {
        // as in Node: a module that threw is not cached, the next require runs it again
        rec.state = 'new';
        rec.module = { id: rec.id, exports: {}, loaded: false };
      }
    }
    return rec.module.exports;
  }

  var KINDS = { app: true, page: true, component: true, module: true };
  // register a bundle module; app/page/component modules run now (Page()/Component() bind to them)
  K.defineModule = function (path, kind, factory) {
    if (typeof path !== 'string' || !KINDS[kind] || typeof factory !== 'function') {
      throw new TypeError('define(path, kind, factory): bad arguments');
    }
    var id = /\.js$/.test(path) ? path : path + '.js';
    if (modules[id] !== undefined) throw new Error('module ' + id + ' is defined twice');
    var rec = { id: id, kind: kind, factory: factory, module: { id: id, exports: {}, loaded: false }, state: 'new' };
    modules[id] = rec;
    if (kind !== 'module') run(rec);
  };

  // a component module that has not run yet runs now (components used by no page at start)
  K.loadComponent = function (path) {
    var rec = modules[path + '.js'];
    if (rec === undefined || rec.state !== 'new') return false;
    rec.kind = 'component';
    run(rec);
    return true;
  };
  K.moduleCount = function () { return Object.keys(modules).length; };
})(globalThis, globalThis.__vhk);
