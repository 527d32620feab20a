/*
 * vehicle-host page renderer, part 1 of 6: shared state and pure helpers (no DOM).
 *
 * The renderer runs inside a sandboxed iframe (sandbox="allow-scripts", opaque origin, strict CSP that
 * lets only this script run) and draws the trees compiled by vehicle_host/bundles/wxml.py with the data
 * sent by the parent.  It never evaluates code: expressions are the AST of vehicle_host/bundles/expr.py,
 * walked here by hand, and the DOM is built with createElement / textContent / setAttribute only.
 * The parts renderer-*.js are concatenated, in order, inside one function by vehicle_host/shell/page.py.
 *
 * Protocol (parent <-> frame via postMessage; only messages from window.parent are accepted):
 *   in  {type: "render", tree, data, css, templates?, components?, window?}
 *   in  {type: "patch", diff, component?}        diff keys are setData paths ("a.b", "list[2].name")
 *   in  {type: "inspect", id}                    -> {type: "inspect.result", id, text, html, nodes, components}
 *   out {type: "painted", seq, error?}           after every render / patch
 *   out {type: "event", handler, component?, event: {type, timeStamp, target, currentTarget, detail}}
 *       handler "$attach" | "$props" | "$detach" for component lifecycles, "$reachBottom" for the page
 *   out {type: "navigate", url, openType, delta?}  a <navigator> was tapped
 *   out {type: "csp", directive, blocked}        the frame's CSP refused something (never expected)
 */

const MAX_NODES = 20000;
const MAX_WORK = 200000; // loop iterations + nodes, so an empty wx:for over a huge array still stops
const MAX_INDEX = 100000; // largest array index a setData path may create
const MAX_TEMPLATE_DEPTH = 16;
const hasOwn = Object.prototype.hasOwnProperty;
const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

// Everything the renderer knows about the page; one object so the parts share it.
const R = {
  tree: null, data: {}, templates: {}, components: {}, window: {},
  instances: new Map(), // component id -> instance
  compSeq: 0, seq: 0, nodes: 0, work: 0, text: 0, overflow: false,
  kids: [], // the page's rendered vnodes
};

function defineOwn(obj, key, value) {
  Object.defineProperty(obj, key, { value: value, writable: true, enumerable: true, configurable: true });
}

function isObject(v) {
  return v !== null && typeof v === "object";
}

// ------------------------------------------------------------------ expressions

function lookup(scope, name) {
  for (let s = scope; s; s = s.parent) {
    if (s.vars && hasOwn.call(s.vars, name)) return s.vars[name];
  }
  return undefined;
}

function member(obj, prop) {
  if (obj === null || obj === undefined) return undefined;
  const key = String(prop);
  if (Array.isArray(obj) || typeof obj === "string") {
    if (key === "length") return obj.length;
    if (/^(0|[1-9][0-9]*)$/.test(key)) return obj[Number(key)];
    return undefined;
  }
  if (typeof obj === "object" && hasOwn.call(obj, key)) return obj[key];
  return undefined;
}

function evaluate(ast, scope) {
  switch (ast.op) {
    case "lit":
      return ast.u ? undefined : ast.v;
    case "id":
      return lookup(scope, ast.n);
    case "mem":
      return member(evaluate(ast.o, scope), evaluate(ast.p, scope));
    case "un": {
      const v = evaluate(ast.a, scope);
      if (ast.o === "!") return !v;
      if (ast.o === "-") return -v;
      return +v;
    }
    case "bin": {
      const l = evaluate(ast.l, scope);
      if (ast.o === "&&") return l ? evaluate(ast.r, scope) : l;
      if (ast.o === "||") return l ? l : evaluate(ast.r, scope);
      const r = evaluate(ast.r, scope);
      switch (ast.o) {
        case "+": return capped(primitive(l) + primitive(r));
        case "-": return l - r;
        case "*": return l * r;
        case "/": return l / r;
        case "%": return l % r;
        case "<": return l < r;
        case "<=": return l <= r;
        case ">": return l > r;
        case ">=": return l >= r;
        case "==": return l == r; // eslint-disable-line eqeqeq
        case "!=": return l != r; // eslint-disable-line eqeqeq
        case "===": return l === r;
        case "!==": return l !== r;
        default: return undefined;
      }
    }
    case "cond":
      return evaluate(ast.t, scope) ? evaluate(ast.a, scope) : evaluate(ast.b, scope);
    case "arr":
      return ast.v.map(function (item) { return evaluate(item, scope); });
    case "obj": {
      const out = {};
      for (const entry of ast.v) {
        if (Array.isArray(entry)) {
          if (!FORBIDDEN_KEYS.has(String(entry[0]))) defineOwn(out, String(entry[0]), evaluate(entry[1], scope));
        } else if (entry && entry.op === "spread") {
          const src = evaluate(entry.a, scope);
          if (isObject(src) || typeof src === "string") {
            for (const k of Object.keys(src)) if (!FORBIDDEN_KEYS.has(k)) defineOwn(out, k, src[k]);
          }
        }
      }
      return out;
    }
    default:
      return undefined;
  }
}

// The longest text one expression may make: a template repeating a bound value cannot multiply
// data into memory (longer results become "").
const MAX_TEXT = 1 << 20;
const MAX_PAGE_TEXT = 4 * MAX_TEXT; // all text and attribute values of one page build

function capped(v) {
  return typeof v === "string" && v.length > MAX_TEXT ? "" : v;
}

// Objects from data have no toString of their own to call: make "+" safe and predictable.
function primitive(v) {
  if (Array.isArray(v)) {
    let out = "";
    for (let i = 0; i < v.length; i++) {
      if (i) out += ",";
      if (v[i] !== null && v[i] !== undefined) out += String(primitive(v[i]));
      if (out.length > MAX_TEXT) return "";
    }
    return out;
  }
  if (isObject(v)) return "[object Object]";
  return v;
}

function safeEval(ast, scope) {
  try {
    return isObject(ast) ? evaluate(ast, scope) : undefined;
  } catch (err) {
    return undefined;
  }
}

function display(value) {
  if (value === null || value === undefined) return "";
  try {
    return String(primitive(value));
  } catch (err) {
    return "";
  }
}

// A single {{ }} keeps its raw value; anything else is joined into a string.
function partsValue(parts, scope) {
  if (!Array.isArray(parts)) return undefined;
  if (parts.length === 1 && isObject(parts[0])) return safeEval(parts[0].e, scope);
  let out = "";
  for (const part of parts) {
    out += typeof part === "string" ? part : display(safeEval(part && part.e, scope));
    if (out.length > MAX_TEXT) return "";
  }
  return out;
}

// ------------------------------------------------------------------ names, classes, URLs

// WeChat dataset names: data-element-type -> elementType, data-elementType -> elementtype.
function camel(name) {
  return name.toLowerCase().replace(/-([a-z0-9])/g, function (_m, c) { return c.toUpperCase(); });
}

// Component property names: my-prop -> myProp (case kept otherwise).
function propName(name) {
  return name.replace(/-([a-zA-Z0-9])/g, function (_m, c) { return c.toUpperCase(); });
}

// Classes written in a component's template carry its scope, as its compiled styles do.
function scopeClasses(value, cssScope) {
  const names = display(value).split(/\s+/).filter(Boolean);
  if (!cssScope) return names.join(" ");
  return names.map(function (n) { return cssScope + "--" + n; }).join(" ");
}

function urlScheme(text) {
  const m = /^([a-z][a-z0-9+.-]*):/.exec(String(text).replace(/[\u0000-\u0020\u007f]+/g, "").toLowerCase());
  return m ? m[1] : "";
}

// Images only from data:image/ URLs (bundle files were inlined by the host at compile time).
function safeImageSrc(value) {
  const src = display(value).trim();
  return /^data:image\/[a-z0-9.+-]+[;,]/i.test(src) ? src : "";
}

// Navigator targets are pages of this app: no scheme at all.
function safePageUrl(value) {
  const url = display(value).trim();
  if (!url || url.length > 1024 || urlScheme(url) || url.indexOf("//") === 0 || /[\u0000-\u001f\\]/.test(url)) return "";
  return url;
}

const IMAGE_FUNCTION = /(?:^|[^a-z0-9_-])(?:-webkit-)?(?:image-set|cross-fade|image|element)\s*\(/i;

// Inline styles may not load or run anything.
function safeStyle(value) {
  const style = display(value);
  if (/expression\s*\(|javascript:|vbscript:|@import|behavior\s*:|-moz-binding/i.test(style)) return "";
  if (/url\s*\(\s*(?!['"]?\s*data:image\/)/i.test(style) || /\\/.test(style)) return "";
  // image-set("https://...") and friends load strings as URLs: only data:image/ ones, never var()/attr()
  if (IMAGE_FUNCTION.test(style)) {
    if (/(?:var|attr|env)\s*\(/i.test(style)) return "";
    const strings = style.match(/"[^"]*"|'[^']*'/g) || [];
    for (const s of strings) if (!/^['"]\s*data:image\//i.test(s)) return "";
  }
  return style;
}

function sameValue(a, b) {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return a !== a && b !== b; // NaN
  if (!isObject(a) || !isObject(b)) return false;
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch (err) {
    return false;
  }
}

// ------------------------------------------------------------------ setData paths

function parsePath(path) {
  const segments = [];
  const re = /([^.[\]]+)|\[(\d+)\]|(\.)/g;
  let expectName = true;
  let last = 0;
  let m;
  while ((m = re.exec(path)) !== null) {
    if (m.index !== last) return null;
    last = re.lastIndex;
    if (m[1] !== undefined) {
      if (!expectName) return null;
      segments.push(m[1]);
      expectName = false;
    } else if (m[2] !== undefined) {
      if (expectName || Number(m[2]) > MAX_INDEX) return null;
      segments.push(Number(m[2]));
    } else {
      if (expectName) return null;
      expectName = true;
    }
  }
  if (last !== path.length || expectName || segments.length === 0) return null;
  for (const s of segments) {
    if (typeof s === "string" && FORBIDDEN_KEYS.has(s)) return null;
  }
  return segments;
}

function assignKey(obj, seg, value) {
  if (Array.isArray(obj) && typeof seg !== "number") return false;
  if (Array.isArray(obj) && seg > MAX_INDEX) return false;
  defineOwn(obj, seg, value);
  return true;
}

// Apply one setData entry to a data object; returns false when the path is refused.
function setPath(target, path, value) {
  const segments = parsePath(String(path));
  if (!segments) return false;
  let cur = target;
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i];
    let next = hasOwn.call(cur, seg) ? cur[seg] : undefined;
    if (!isObject(next)) {
      next = typeof segments[i + 1] === "number" ? [] : {};
      if (!assignKey(cur, seg, next)) return false;
    }
    cur = next;
  }
  return assignKey(cur, segments[segments.length - 1], value);
}

function applyDiff(target, diff) {
  if (!isObject(diff)) return;
  for (const key of Object.keys(diff)) setPath(target, key, diff[key]);
}
