// Plugin methods as Promises. A method this head unit does not offer (its plugin is not installed)
// rejects like a failed call, with an errMsg, instead of throwing a TypeError.
function call(name, args) {
  var dot = name.indexOf('.');
  var space = fc[name.slice(0, dot)];
  var fn = space ? space[name.slice(dot + 1)] : undefined;
  if (typeof fn !== 'function' || !fc.canIUse(name)) {
    return Promise.reject({ errMsg: name + ':fail not available on this head unit' });
  }
  return fn(args || {});
}

// The readable part of an errMsg: "parts.order:fail unreachable: ..." -> "unreachable: ...".
function reason(err) {
  var text = String((err && err.errMsg) || err || 'failed');
  var at = text.indexOf(':fail ');
  return at >= 0 ? text.slice(at + 6) : text;
}

function money(cents, currency) {
  var amount = (Number(cents) / 100).toFixed(2);
  return currency === 'EUR' || !currency ? '€' + amount : amount + ' ' + currency;
}

module.exports = { call: call, reason: reason, money: money };
