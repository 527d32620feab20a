// vehicle-host logic worker, part 12: createAnimation. Pure JS, as in WeChat: the Animation object collects
// transform and style changes, step() closes a group, export() hands the groups over as
// {actions: [{animates: [{type, args}], option: {transformOrigin, transition}}]} for an element's
// `animation` attribute (set through setData); the renderer plays them.
(function (g, K) {
  'use strict';
  var TIMING = ['linear', 'ease', 'ease-in', 'ease-in-out', 'ease-out', 'step-start', 'step-end'];
  var MAX_ACTIONS = 1000;

  function num(name, v, fallback) {
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !isFinite(v)) throw new TypeError('Animation.' + name + ' expects numbers, got ' + K.typeName(v));
    return v;
  }
  function length(name, v) {
    if (typeof v === 'number' && isFinite(v)) return v + 'px';
    if (typeof v === 'string' && v.length > 0 && v.length <= 64) return v;
    throw new TypeError('Animation.' + name + ' expects a number (px) or a CSS length string, got ' + K.typeName(v));
  }
  function options(o, base, where) {
    var opts = K.isObject(o) ? o : {};
    var duration = num(where + ' duration', opts.duration, base.duration);
    var delay = num(where + ' delay', opts.delay, base.delay);
    var timing = opts.timingFunction === undefined ? base.timingFunction : opts.timingFunction;
    if (TIMING.indexOf(timing) < 0) throw new TypeError(where + ': timingFunction must be one of ' + TIMING.join(', '));
    var origin = opts.transformOrigin === undefined ? base.transformOrigin : opts.transformOrigin;
    if (typeof origin !== 'string' || origin.length > 64) throw new TypeError(where + ': transformOrigin must be a short string');
    return { duration: Math.max(0, duration), delay: Math.max(0, delay), timingFunction: timing, transformOrigin: origin };
  }

  function Animation(opts) {
    var defaults = options(opts, { duration: 400, delay: 0, timingFunction: 'linear', transformOrigin: '50% 50% 0' }, 'createAnimation');
    var actions = [];
    var current = Object.create(null); // every transform / style so far, by type (styles by property)
    var pending = [];
    var self = this;
    function push(type, args) { pending.push({ type: type, args: args }); return self; }
    function transform(name, defaults2) {
      self[name] = function () {
        var args = [];
        for (var i = 0; i < defaults2.length; i++) args.push(num(name, arguments[i], defaults2[i]));
        return push(name, args);
      };
    }
    function style(name, prop, convert) {
      self[name] = function (value) { return push('style', [prop, convert(name, value)]); };
    }

    this.step = function (o) {
      var opt = options(o, defaults, 'Animation.step');
      if (actions.length >= MAX_ACTIONS) throw new RangeError('Animation: more than ' + MAX_ACTIONS + ' steps before export()');
      pending.forEach(function (a) { current[a.type === 'style' ? 'style.' + a.args[0] : a.type] = a; });
      pending = [];
      actions.push({
        animates: Object.keys(current).map(function (k) { return { type: current[k].type, args: current[k].args.slice() }; }),
        option: {
          transformOrigin: opt.transformOrigin,
          transition: { duration: opt.duration, timingFunction: opt.timingFunction, delay: opt.delay },
        },
      });
      return self;
    };
    this['export'] = function () {
      var out = actions;
      actions = [];
      return { actions: out };
    };

    this.scale = function (sx, sy) {
      var x = num('scale', sx, 1);
      return push('scale', [x, num('scale', sy, x)]);
    };
    transform('matrix', [1, 0, 0, 1, 0, 0]);
    transform('matrix3d', [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]);
    transform('rotate', [0]);
    transform('rotate3d', [0, 0, 0, 0]);
    transform('rotateX', [0]);
    transform('rotateY', [0]);
    transform('rotateZ', [0]);
    transform('scale3d', [1, 1, 1]);
    transform('scaleX', [1]);
    transform('scaleY', [1]);
    transform('scaleZ', [1]);
    transform('skew', [0, 0]);
    transform('skewX', [0]);
    transform('skewY', [0]);
    transform('translate', [0, 0]);
    transform('translate3d', [0, 0, 0]);
    transform('translateX', [0]);
    transform('translateY', [0]);
    transform('translateZ', [0]);
    style('opacity', 'opacity', function (name, v) {
      var n = num(name, v, 1);
      return Math.min(1, Math.max(0, n));
    });
    style('backgroundColor', 'background-color', function (name, v) {
      if (typeof v !== 'string' || v.length === 0 || v.length > 64) throw new TypeError('Animation.backgroundColor expects a CSS color string');
      return v;
    });
    ['width', 'height', 'left', 'right', 'top', 'bottom'].forEach(function (p) { style(p, p, length); });
  }

  K.define('createAnimation', function (opts) {
    if (opts !== undefined && opts !== null && !K.isObject(opts)) {
      throw new TypeError('createAnimation expects an object, got ' + K.typeName(opts));
    }
    return new Animation(opts);
  });
})(globalThis, globalThis.__vhk);
