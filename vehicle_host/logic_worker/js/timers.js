// vehicle-host logic worker, part 5: setTimeout / setInterval. The realm keeps the callbacks; the
// worker keeps the clock (a heap in Python) and calls __vh.fire(id) when a timer is due.
(function (g, K) {
  'use strict';
  var timers = Object.create(null);
  var count = 0;
  var nextId = 1;
  var MAX_DELAY = 2147483647;

  function add(name, fn, ms, args, repeat) {
    if (typeof fn !== 'function') {
      throw new TypeError(name + ' expects a function as its first argument, got ' + K.typeName(fn) +
        ' (strings are not evaluated)');
    }
    if (count >= K.limits.maxTimers) {
      throw new RangeError(name + ': too many timers (' + K.limits.maxTimers +
        ' pending); clear the ones you no longer need with clearTimeout/clearInterval');
    }
    var delay = Number(ms);
    if (!(delay >= 0)) delay = 0;
    if (delay > MAX_DELAY) delay = MAX_DELAY;
    if (repeat && delay < K.limits.minIntervalMs) delay = K.limits.minIntervalMs;
    var id = nextId++;
    timers[id] = { fn: fn, args: args, repeat: repeat };
    count++;
    K.emit({ t: 'timer', id: id, ms: delay, repeat: repeat });
    return id;
  }

  function clear(id) {
    if (typeof id !== 'number' || timers[id] === undefined) return;
    delete timers[id];
    count--;
    K.emit({ t: 'clear', id: id });
  }

  g.setTimeout = function (fn, ms) { return add('setTimeout', fn, ms, Array.prototype.slice.call(arguments, 2), false); };
  g.setInterval = function (fn, ms) { return add('setInterval', fn, ms, Array.prototype.slice.call(arguments, 2), true); };
  g.clearTimeout = clear;
  g.clearInterval = clear;

  K.fire = function (id) {
    var timer = timers[id];
    if (timer === undefined) return;
    if (!timer.repeat) { delete timers[id]; count--; }
    K.guard(timer.fn, undefined, timer.args);
  };
  K.timerCount = function () { return count; };
})(globalThis, globalThis.__vhk);
