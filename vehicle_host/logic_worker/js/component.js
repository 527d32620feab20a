// vehicle-host logic worker, part 4: Component(), Behavior() and component instances, created and
// driven by the renderer's reserved page events $attach, $props and $detach.
(function (g, K) {
  'use strict';
  var defs = Object.create(null); // component path -> normalised definition
  var LIFETIMES = ['created', 'attached', 'ready', 'moved', 'detached', 'error'];
  var PAGE_LIFETIMES = ['show', 'hide', 'resize'];
  var TYPES = [String, Number, Boolean, Object, Array];

  function list(map, name, fn) {
    if (typeof fn === 'function') (map[name] = map[name] || []).push(fn);
  }

  function normalise(def, into, depth) {
    if (depth > 8) throw new Error('behaviors nest deeper than 8 levels');
    (Array.isArray(def.behaviors) ? def.behaviors : []).forEach(function (b) {
      if (b && b.__vhBehavior) normalise(b.def, into, depth + 1);
    });
    var props = K.isObject(def.properties) ? def.properties : {};
    Object.keys(props).forEach(function (name) {
      var spec = props[name];
      var p = K.isObject(spec) ? { type: spec.type, value: spec.value, observer: spec.observer, has: 'value' in spec }
        : { type: spec, value: undefined, observer: undefined, has: false };
      if (TYPES.indexOf(p.type) < 0) p.type = null;
      into.properties[name] = p;
    });
    if (K.isObject(def.data)) Object.assign(into.data, K.clone(def.data));
    if (K.isObject(def.methods)) {
      Object.keys(def.methods).forEach(function (m) {
        if (typeof def.methods[m] === 'function') into.methods[m] = def.methods[m];
      });
    }
    if (K.isObject(def.observers)) {
      Object.keys(def.observers).forEach(function (expr) { list(into.observers, expr, def.observers[expr]); });
    }
    var lifetimes = K.isObject(def.lifetimes) ? def.lifetimes : {};
    LIFETIMES.forEach(function (name) { list(into.lifetimes, name, lifetimes[name] || def[name]); });
    var pageLifetimes = K.isObject(def.pageLifetimes) ? def.pageLifetimes : {};
    PAGE_LIFETIMES.forEach(function (name) { list(into.pageLifetimes, name, pageLifetimes[name]); });
    return into;
  }

  g.Behavior = function (def) {
    if (!K.isObject(def)) throw new TypeError('Behavior() expects an object, got ' + K.typeName(def));
    return Object.freeze({ __vhBehavior: true, def: def });
  };
  g.Component = function (def) {
    if (K.loading === null || (K.loading.kind !== 'component' && K.loading.kind !== 'module')) {
      throw new Error('Component() must be called in a component module (listed in usingComponents), not in ' +
        (K.loading === null ? 'a callback' : K.loading.path + '.js'));
    }
    if (def !== undefined && !K.isObject(def)) throw new TypeError('Component() expects an object, got ' + K.typeName(def));
    var empty = { properties: {}, data: {}, methods: {}, observers: {}, lifetimes: {}, pageLifetimes: {} };
    defs[K.loading.path] = normalise(def || {}, empty, 0);
  };

  function typeDefault(type) {
    if (type === String) return '';
    if (type === Number) return 0;
    if (type === Boolean) return false;
    if (type === Array) return [];
    return null;
  }
  K.coerce = function (type, value) {
    if (type === String) return value === null || value === undefined ? '' : typeof value === 'object' ? JSON.stringify(value) : String(value);
    if (type === Number) { var n = Number(value); return isNaN(n) ? 0 : n; }
    if (type === Boolean) return !!value;
    if (type === Array) return Array.isArray(value) ? value : [];
    if (type === Object) return value !== null && typeof value === 'object' ? value : null;
    return value === undefined ? null : value;
  };

  function resolvePath(path, route) {
    var p = String(path || '').replace(/\.js$/, '');
    if (p.charAt(0) === '/') return p.slice(1);
    if (defs[p] !== undefined || p.charAt(0) !== '.') return p;
    var parts = route.split('/').slice(0, -1);
    p.split('/').forEach(function (seg) {
      if (seg === '..') parts.pop();
      else if (seg !== '.' && seg !== '') parts.push(seg);
    });
    return parts.join('/');
  }

  function fire(rec, names, args) {
    (names || []).forEach(function (fn) { K.guard(fn, rec.inst, args || []); });
  }

  // does setting `key` trigger an observer on `field`? ancestors and the field itself always do;
  // descendants only with a trailing '.**'
  function observes(field, key) {
    if (field === '**') return true;
    var deep = /\.\*\*$/.test(field);
    var base = deep ? field.slice(0, -3) : field;
    base = K.pathKey(K.parsePath(base));
    function under(a, b) { return a.length > b.length && a.lastIndexOf(b, 0) === 0 && (a.charAt(b.length) === '.' || a.charAt(b.length) === '['); }
    return key === base || under(base, key) || (deep && under(key, base));
  }

  K.runObservers = function (rec, keys) {
    if (keys.length === 0) return;
    if (rec.observing > 8) { K.console.warn('component ' + rec.path + ': observers nest too deep; stopped'); return; }
    rec.observing++;
    try {
      Object.keys(rec.def.observers).forEach(function (expr) {
        var fields = expr.split(',').map(function (f) { return f.trim(); }).filter(Boolean);
        var hit = fields.some(function (f) { return keys.some(function (k) { return observes(f, k); }); });
        if (!hit) return;
        var values = fields.map(function (f) {
          if (f === '**') return rec.inst.data;
          return K.getPath(rec.inst.data, K.parsePath(f.replace(/\.\*\*$/, '')));
        });
        fire(rec, rec.def.observers[expr], values);
      });
    } finally { rec.observing--; }
  };

  // set properties (from $attach or $props), coerced to their declared types
  function setProps(rec, props, initial) {
    var changed = [];
    var olds = [];
    Object.keys(K.isObject(props) ? props : {}).forEach(function (name) {
      var p = rec.def.properties[name];
      if (p === undefined) return; // WeChat ignores attributes the component does not declare
      var value = K.clone(K.coerce(p.type, props[name]));
      var old = rec.inst.data[name];
      if (JSON.stringify(old) === JSON.stringify(value)) return;
      rec.inst.data[name] = value;
      K.queueDiff(rec.page.id, rec.id, name, value, rec.alive);
      changed.push(name);
      olds.push(old);
    });
    changed.forEach(function (name, i) {
      var obs = rec.def.properties[name].observer;
      if (typeof obs === 'function') K.guard(obs, rec.inst, [rec.inst.data[name], olds[i], [name]]);
      else if (typeof obs === 'string' && typeof rec.inst[obs] === 'function') K.guard(rec.inst[obs], rec.inst, [rec.inst.data[name], olds[i]]);
    });
    K.runObservers(rec, changed);
    return initial ? changed : changed;
  }

  function attach(page, id, ev) {
    if (page.comps[id] !== undefined) detach(page, id);
    var path = resolvePath(ev.path, page.route);
    var def = defs[path];
    if (def === undefined && K.loadComponent(path)) def = defs[path];
    if (def === undefined) {
      K.reportError(new Error('component ' + path + ' is not defined: its module is missing or did not call Component()'));
      return;
    }
    var rec = { id: id, path: path, page: page, def: def, parent: typeof ev.parent === 'string' ? ev.parent : '',
      events: K.isObject(ev.events) ? ev.events : {}, dataset: K.isObject(ev.dataset) ? ev.dataset : {},
      attached: false, ready: false, observing: 0 };
    rec.alive = function () { return page.alive && page.comps[id] === rec; };
    var inst = {};
    Object.keys(def.methods).forEach(function (m) { inst[m] = def.methods[m]; });
    var data = K.clone(def.data);
    Object.keys(def.properties).forEach(function (name) {
      var p = def.properties[name];
      data[name] = p.has ? K.clone(K.coerce(p.type, p.value)) : typeDefault(p.type);
    });
    inst.data = data;
    inst.properties = data;
    inst.is = path;
    inst.id = id;
    inst.dataset = rec.dataset;
    var label = 'component ' + path + ' (' + id + ') of page ' + page.route;
    inst.setData = function (changes, callback) {
      var keys = K.setData(inst, page.id, id, changes, callback, label, rec.alive);
      K.runObservers(rec, keys);
    };
    inst.triggerEvent = function (name, detail) { triggerEvent(rec, name, detail); };
    inst.selectComponent = function () { return null; };
    inst.selectAllComponents = function () { return []; };
    inst.selectOwnerComponent = function () {
      return rec.parent && page.comps[rec.parent] ? page.comps[rec.parent].inst : page.inst;
    };
    rec.inst = inst;
    page.comps[id] = rec;
    fire(rec, def.lifetimes.created);
    // the renderer learns the instance's initial data as its first diff
    Object.keys(inst.data).forEach(function (k) { K.queueDiff(page.id, id, k, inst.data[k], rec.alive); });
    setProps(rec, ev.props, true);
    rec.attached = true;
    fire(rec, def.lifetimes.attached);
    if (page.ready) markReady(rec);
  }

  function markReady(rec) {
    if (rec.ready || !rec.attached) return;
    rec.ready = true;
    fire(rec, rec.def.lifetimes.ready);
  }

  function detach(page, id) {
    var rec = page.comps[id];
    if (rec === undefined) return;
    fire(rec, rec.def.lifetimes.detached);
    delete page.comps[id];
  }

  function triggerEvent(rec, name, detail) {
    if (typeof name !== 'string' || name === '') throw new TypeError('triggerEvent expects an event name');
    var handler = rec.events[name];
    if (typeof handler !== 'string' || handler === '') return; // nobody listens
    var page = rec.page;
    var parent = rec.parent ? page.comps[rec.parent] : undefined;
    var target = parent ? parent.inst : page.inst;
    var fn = parent ? (K.hasOwn(parent.def.methods, handler) ? parent.inst[handler] : undefined)
      : (K.hasOwn(target, handler) ? target[handler] : undefined);
    if (typeof fn !== 'function') {
      K.console.warn((parent ? 'Component "' + parent.path : 'Page "' + page.route) + '" does not have a method "' +
        handler + '" to handle event "' + name + '".');
      return;
    }
    var event = {
      type: name, timeStamp: Date.now(), detail: detail === undefined ? {} : detail,
      target: { id: rec.id, dataset: rec.dataset }, currentTarget: { id: rec.id, dataset: rec.dataset },
    };
    K.guard(fn, target, [event]);
  }

  K.componentLifecycle = function (page, handler, id, ev) {
    if (!id) throw new Error(handler + ' needs a component id');
    if (handler === '$attach') attach(page, id, K.isObject(ev) ? ev : {});
    else if (handler === '$detach') detach(page, id);
    else {
      var rec = page.comps[id];
      if (rec === undefined) { K.console.warn('$props for component ' + id + ', which is not attached, ignored'); return; }
      setProps(rec, K.isObject(ev) ? ev.props : {}, false);
    }
  };

  K.componentMethod = function (page, id, handler, event) {
    var rec = page.comps[id];
    if (rec === undefined) { K.console.warn('event ' + handler + ' for component ' + id + ', which is not attached, ignored'); return; }
    if (!K.hasOwn(rec.def.methods, handler)) {
      K.console.warn('Component "' + rec.path + '" does not have a method "' + handler + '" to handle event "' +
        (event && event.type) + '".');
      return;
    }
    K.guard(rec.inst[handler], rec.inst, [event]);
  };

  K.componentsReady = function (page) {
    Object.keys(page.comps).forEach(function (id) { markReady(page.comps[id]); });
  };
  K.pageLifetime = function (page, name, arg) {
    Object.keys(page.comps).forEach(function (id) {
      var rec = page.comps[id];
      fire(rec, rec.def.pageLifetimes[name], arg === undefined ? [] : [arg]);
    });
  };
  K.detachAll = function (page) {
    Object.keys(page.comps).reverse().forEach(function (id) { detach(page, id); });
  };
})(globalThis, globalThis.__vhk);
