/*
 * vehicle-host page renderer.
 *
 * Runs inside a sandboxed iframe (sandbox="allow-scripts", opaque origin, strict CSP) and draws the
 * tree produced by vehicle_host/bundles/wxml.py with the data sent by the parent.  It never evaluates
 * code: expressions are the small AST of vehicle_host/bundles/expr.py, walked here by hand, and the DOM
 * is built with createElement / textContent / setAttribute only.
 *
 * Protocol (parent <-> frame, via postMessage; only messages from window.parent are accepted):
 *   parent -> frame {type: "render", tree, data, css}
 *   parent -> frame {type: "patch", diff}           keys are setData paths ("a.b", "list[2].name")
 *   parent -> frame {type: "inspect", id}           reply {type: "inspect.result", id, text, html, nodes}
 *   frame -> parent {type: "painted", seq}          after every render / patch (plus error on failure)
 *   frame -> parent {type: "event", handler, event: {type, timeStamp, target, currentTarget, detail}}
 */
(function () {
  "use strict";

  const MAX_NODES = 20000;
  const MAX_WORK = 200000; // loop iterations + nodes, so an empty wx:for over a huge array still stops
  const MAX_INDEX = 100000; // largest array index a setData path may create
  const parentWindow = window.parent;
  const doc = document;
  const createElement = doc.createElement.bind(doc);
  const createTextNode = doc.createTextNode.bind(doc);
  const hasOwn = Object.prototype.hasOwnProperty;
  const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);
  const BLOCKED_ATTRS = new Set([
    "href", "src", "srcset", "srcdoc", "action", "formaction", "xlink:href", "background", "poster",
    "data", "codebase", "ping", "lowsrc", "dynsrc", "name", "is", "form", "target", "manifest",
  ]);
  const DIV_TAGS = new Set(["view", "scroll-view", "swiper", "swiper-item", "navigator", "label", "form"]);
  const BUBBLING = new Set(["tap", "longpress", "touchstart", "touchmove", "touchend", "touchcancel"]);
  // WXML event name -> DOM event type.
  const DOM_EVENTS = {
    tap: "click", longpress: "contextmenu", touchstart: "touchstart", touchmove: "touchmove",
    touchend: "touchend", touchcancel: "touchcancel", input: "input", change: "change",
    confirm: "keydown", focus: "focus", blur: "blur", scroll: "scroll",
  };

  const bindings = new WeakMap(); // element -> {event: {handler, catch}}
  const datasets = new WeakMap(); // element -> {camelName: raw value}
  const wxTags = new WeakMap(); // element -> WXML tag
  const controlState = new WeakMap(); // form control -> {value, checked} last rendered from data

  let tree = null;
  let data = {};
  let seq = 0;
  let nodes = 0;
  let work = 0;
  let overflow = false;
  let pageStyle = null;

  // ------------------------------------------------------------------ setup

  function head() {
    return doc.head || doc.documentElement;
  }

  function body() {
    if (!doc.body) {
      doc.documentElement.appendChild(createElement("body"));
    }
    return doc.body;
  }

  function installStyles() {
    const base = createElement("style");
    base.id = "base-style";
    base.textContent = [
      ":root { --rpx: calc(100vw / 750); }",
      "html, body { margin: 0; padding: 0; }",
      'body { font-family: "DejaVu Sans", sans-serif; }',
      ".wx-view, .wx-scroll-view, .wx-swiper, .wx-swiper-item, .wx-navigator, .wx-form { display: block; }",
      ".wx-scroll-view { overflow: auto; }",
      ".wx-image { display: inline-block; max-width: 100%; }",
      ".wx-overflow { padding: 8px; color: #a00; }",
    ].join("\n");
    head().appendChild(base);
    pageStyle = createElement("style");
    pageStyle.id = "page-style";
    head().appendChild(pageStyle);
  }

  // ------------------------------------------------------------------ expressions

  function lookup(scope, name) {
    for (let s = scope; s; s = s.parent) {
      if (s.vars && hasOwn.call(s.vars, name)) {
        return s.vars[name];
      }
    }
    return undefined;
  }

  function member(obj, prop) {
    if (obj === null || obj === undefined) {
      return undefined;
    }
    const key = String(prop);
    if (Array.isArray(obj) || typeof obj === "string") {
      if (key === "length") {
        return obj.length;
      }
      if (/^(0|[1-9][0-9]*)$/.test(key)) {
        return obj[Number(key)];
      }
      return undefined;
    }
    if (typeof obj === "object" && hasOwn.call(obj, key)) {
      return obj[key];
    }
    return undefined;
  }

  function defineOwn(obj, key, value) {
    Object.defineProperty(obj, key, { value: value, writable: true, enumerable: true, configurable: true });
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
          case "+": return l + r;
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
          defineOwn(out, String(entry[0]), evaluate(entry[1], scope));
        }
        return out;
      }
      default:
        return undefined;
    }
  }

  function safeEval(ast, scope) {
    try {
      return evaluate(ast, scope);
    } catch (err) {
      return undefined;
    }
  }

  function display(value) {
    if (value === null || value === undefined) return "";
    try {
      return String(value);
    } catch (err) {
      return "";
    }
  }

  // A single {{ }} keeps its raw value; anything else is joined into a string.
  function partsValue(parts, scope) {
    if (!Array.isArray(parts)) return undefined;
    if (parts.length === 1 && parts[0] !== null && typeof parts[0] === "object") {
      return safeEval(parts[0].e, scope);
    }
    let out = "";
    for (const part of parts) {
      out += typeof part === "string" ? part : display(safeEval(part.e, scope));
    }
    return out;
  }

  // ------------------------------------------------------------------ rendering

  function count(n) {
    nodes += n;
    work += n;
    if (nodes > MAX_NODES || work > MAX_WORK) {
      overflow = true;
    }
    return !overflow;
  }

  function domTag(tag) {
    if (DIV_TAGS.has(tag)) return "div";
    switch (tag) {
      case "text": case "icon": return "span";
      case "button": return "button";
      case "image": return "img";
      case "input": case "switch": case "checkbox": case "slider": return "input";
      case "textarea": return "textarea";
      case "progress": return "progress";
      default: return "div";
    }
  }

  function camel(name) {
    return name.toLowerCase().replace(/-([a-z0-9])/g, function (_m, c) { return c.toUpperCase(); });
  }

  function setAttr(el, name, value) {
    try {
      el.setAttribute(name, value);
    } catch (err) {
      // invalid attribute name for the DOM: skip it
    }
  }

  function applyAttr(el, tag, name, value, dataset) {
    const lower = name.toLowerCase();
    if (lower.startsWith("on")) return;
    if (lower.startsWith("data-")) {
      defineOwn(dataset, camel(name.slice(5)), value);
      setAttr(el, name, display(value));
      return;
    }
    switch (lower) {
      case "class":
        setAttr(el, "class", "wx-" + tag + (display(value) ? " " + display(value) : ""));
        return;
      case "style":
        setAttr(el, "style", display(value));
        return;
      case "id":
        el.id = display(value);
        return;
      case "hidden":
        return; // handled after all attributes (it must win over style)
      case "type":
        if (tag === "input") {
          const t = display(value);
          el.type = t === "number" || t === "digit" ? "number" : "text";
        }
        return;
      case "password":
        if (tag === "input" && value && value !== "false") el.type = "password";
        return;
      case "src":
        if (tag === "image") {
          const src = display(value).trim();
          if (/^data:/i.test(src)) el.setAttribute("src", src);
        }
        return;
      case "value":
        if (tag === "input" || tag === "textarea" || tag === "slider") {
          el.value = display(value);
          remember(el, "value", el.value);
        }
        return;
      case "percent":
        if (tag === "progress") el.value = Number(value) || 0;
        return;
      case "checked":
        if (tag === "switch" || tag === "checkbox") {
          el.checked = !!value && value !== "false";
          remember(el, "checked", el.checked);
        }
        return;
      case "disabled":
        el.disabled = !!value && value !== "false";
        return;
      case "placeholder":
      case "maxlength":
      case "min":
      case "max":
      case "step":
        if (tag === "input" || tag === "textarea" || tag === "slider") setAttr(el, lower, display(value));
        return;
      default:
        if (BLOCKED_ATTRS.has(lower)) return;
        setAttr(el, name, display(value));
    }
  }

  function remember(el, prop, value) {
    const state = controlState.get(el) || {};
    state[prop] = value;
    controlState.set(el, state);
  }

  function createFor(node, scope) {
    const tag = typeof node.tag === "string" ? node.tag : "view";
    const el = createElement(domTag(tag));
    setAttr(el, "class", "wx-" + tag);
    if (tag === "button") el.type = "button";
    if (tag === "switch" || tag === "checkbox") el.type = "checkbox";
    if (tag === "slider") el.type = "range";
    if (tag === "progress") el.max = 100;
    if (tag === "input") el.type = "text";
    wxTags.set(el, tag);
    const dataset = {};
    const attrs = node.attrs || {};
    let hidden = false;
    for (const name of Object.keys(attrs)) {
      const value = partsValue(attrs[name], scope);
      if (name === "hidden") {
        hidden = !!value;
      } else {
        applyAttr(el, tag, name, value, dataset);
      }
    }
    if (hidden) el.style.display = "none";
    datasets.set(el, dataset);
    const events = node.events || {};
    if (Object.keys(events).length) bindings.set(el, events);
    return el;
  }

  function renderElement(node, scope, parent) {
    if (node.tag === "block") {
      renderChildren(node.children, scope, parent);
      return;
    }
    if (!count(1)) return;
    const el = createFor(node, scope);
    renderChildren(node.children, scope, el);
    parent.appendChild(el);
  }

  function renderRepeated(node, scope, parent) {
    const items = safeEval(node["for"], scope);
    const itemName = typeof node.forItem === "string" ? node.forItem : "item";
    const indexName = typeof node.forIndex === "string" ? node.forIndex : "index";
    let keys;
    if (Array.isArray(items) || typeof items === "string") {
      keys = null;
    } else if (items !== null && typeof items === "object") {
      keys = Object.keys(items);
    } else {
      return;
    }
    const length = keys ? keys.length : items.length;
    for (let i = 0; i < length && !overflow; i++) {
      work += 1;
      if (work > MAX_WORK) {
        overflow = true;
        return;
      }
      const index = keys ? keys[i] : i;
      const vars = {};
      defineOwn(vars, itemName, keys ? items[index] : items[i]);
      defineOwn(vars, indexName, index);
      const inner = { vars: vars, parent: scope };
      if (node["if"] && !safeEval(node["if"], inner)) continue;
      renderElement(node, inner, parent);
    }
  }

  function renderChildren(children, scope, parent) {
    if (!Array.isArray(children)) return;
    let chainDone = false;
    for (const node of children) {
      if (overflow) return;
      if (!node || typeof node !== "object") continue;
      if (node.k === "text") {
        if (!count(1)) return;
        parent.appendChild(createTextNode(textOf(node.v, scope)));
        chainDone = false;
        continue;
      }
      if (node.k !== "el") continue;
      if (node["for"]) {
        chainDone = false;
        renderRepeated(node, scope, parent);
        continue;
      }
      let show;
      if (node["if"]) {
        show = !!safeEval(node["if"], scope);
        chainDone = show;
      } else if (node["elif"]) {
        show = !chainDone && !!safeEval(node["elif"], scope);
        chainDone = chainDone || show;
      } else if (node["else"]) {
        show = !chainDone;
        chainDone = true;
      } else {
        show = true;
        chainDone = false;
      }
      if (show) renderElement(node, scope, parent);
    }
  }

  function textOf(parts, scope) {
    if (!Array.isArray(parts)) return "";
    let out = "";
    for (const part of parts) {
      out += typeof part === "string" ? part : display(safeEval(part.e, scope));
    }
    return out;
  }

  function renderTree() {
    const fresh = createElement("body");
    nodes = 0;
    work = 0;
    overflow = false;
    const root = tree && typeof tree === "object" ? tree : { children: [] };
    renderChildren(root.children, { vars: data, parent: null }, fresh);
    if (overflow) {
      const notice = createElement("div");
      notice.className = "wx-overflow";
      notice.textContent = "This page is too large to show (more than " + MAX_NODES + " elements).";
      fresh.appendChild(notice);
    }
    const target = body();
    target.classList.add("wx-page");
    morphChildren(target, fresh);
  }

  // ------------------------------------------------------------------ in-place update (keeps focus/scroll)

  function sameKind(a, b) {
    if (a.nodeType !== b.nodeType) return false;
    if (a.nodeType !== 1) return true;
    return a.tagName === b.tagName && (a.tagName !== "INPUT" || a.type === b.type);
  }

  function morphChildren(oldParent, newParent) {
    const oldKids = Array.from(oldParent.childNodes);
    const newKids = Array.from(newParent.childNodes);
    for (let i = 0; i < newKids.length; i++) {
      const n = newKids[i];
      const o = oldKids[i];
      if (!o) {
        oldParent.appendChild(n);
      } else if (!sameKind(o, n)) {
        oldParent.replaceChild(n, o);
      } else if (o.nodeType === 1) {
        morphElement(o, n);
      } else if (o.nodeValue !== n.nodeValue) {
        o.nodeValue = n.nodeValue;
      }
    }
    for (let i = newKids.length; i < oldKids.length; i++) {
      oldParent.removeChild(oldKids[i]);
    }
  }

  function morphElement(o, n) {
    for (const attr of Array.from(o.attributes)) {
      if (!n.hasAttribute(attr.name)) o.removeAttribute(attr.name);
    }
    for (const attr of Array.from(n.attributes)) {
      if (o.getAttribute(attr.name) !== attr.value) o.setAttribute(attr.name, attr.value);
    }
    if (o.tagName === "INPUT" || o.tagName === "TEXTAREA") {
      // Only push a value the page's data changed, so typing is not undone by unrelated patches.
      const fresh = controlState.get(n) || {};
      const old = controlState.get(o) || {};
      for (const prop of ["value", "checked"]) {
        if (hasOwn.call(fresh, prop) && fresh[prop] !== old[prop] && o[prop] !== fresh[prop]) {
          o[prop] = fresh[prop];
        }
      }
      controlState.set(o, fresh);
      if (o.disabled !== n.disabled) o.disabled = n.disabled;
    }
    if (o.tagName === "PROGRESS" && o.value !== n.value) o.value = n.value;
    copyMap(bindings, o, n);
    copyMap(datasets, o, n);
    copyMap(wxTags, o, n);
    morphChildren(o, n);
  }

  function copyMap(map, o, n) {
    if (map.has(n)) map.set(o, map.get(n));
    else map.delete(o);
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

  function setPath(path, value) {
    const segments = parsePath(String(path));
    if (!segments) return;
    let cur = data;
    for (let i = 0; i < segments.length - 1; i++) {
      const seg = segments[i];
      let next = hasOwn.call(cur, seg) ? cur[seg] : undefined;
      if (next === null || typeof next !== "object") {
        next = typeof segments[i + 1] === "number" ? [] : {};
        if (!assign(cur, seg, next)) return;
      }
      cur = next;
    }
    assign(cur, segments[segments.length - 1], value);
  }

  function assign(obj, seg, value) {
    if (Array.isArray(obj) && typeof seg !== "number") return false;
    if (Array.isArray(obj) && seg > MAX_INDEX) return false;
    defineOwn(obj, seg, value);
    return true;
  }

  // ------------------------------------------------------------------ events

  function describe(el) {
    const dataset = datasets.get(el) || {};
    return { id: el.id || "", dataset: Object.assign({}, dataset) };
  }

  function wxElement(node) {
    let el = node && node.nodeType === 1 ? node : (node && node.parentElement) || null;
    while (el && !wxTags.has(el)) el = el.parentElement;
    return el;
  }

  function detailFor(wxEvent, domEvent, el) {
    if (wxEvent === "tap" || wxEvent === "longpress") {
      return { x: domEvent.clientX || 0, y: domEvent.clientY || 0 };
    }
    if (wxEvent === "input" || wxEvent === "change" || wxEvent === "confirm" || wxEvent === "blur" || wxEvent === "focus") {
      const tag = wxTags.get(el);
      if (tag === "switch" || tag === "checkbox") return { value: !!el.checked };
      if (tag === "slider") return { value: Number(el.value) };
      return { value: typeof el.value === "string" ? el.value : "" };
    }
    if (wxEvent === "scroll") {
      return { scrollTop: el.scrollTop || 0, scrollLeft: el.scrollLeft || 0 };
    }
    return {};
  }

  function post(message) {
    try {
      parentWindow.postMessage(message, "*");
    } catch (err) {
      // data that cannot be cloned: drop the message rather than break the page
    }
  }

  function dispatch(wxEvent, domEvent) {
    const target = wxElement(domEvent.target);
    if (!target) return;
    if (wxEvent === "confirm" && domEvent.key !== "Enter") return;
    if (wxEvent === "longpress") domEvent.preventDefault();
    const targetInfo = describe(target);
    let el = target;
    while (el) {
      const events = bindings.get(el);
      const binding = events && hasOwn.call(events, wxEvent) ? events[wxEvent] : null;
      if (binding && typeof binding.handler === "string") {
        post({
          type: "event",
          handler: binding.handler,
          event: {
            type: wxEvent,
            timeStamp: Math.round(domEvent.timeStamp || 0),
            target: targetInfo,
            currentTarget: describe(el),
            detail: detailFor(wxEvent, domEvent, target),
          },
        });
        if (binding["catch"]) return;
      }
      if (!BUBBLING.has(wxEvent)) return;
      el = wxElement(el.parentElement);
    }
  }

  function installEvents() {
    for (const wxEvent of Object.keys(DOM_EVENTS)) {
      doc.addEventListener(DOM_EVENTS[wxEvent], function (domEvent) {
        try {
          dispatch(wxEvent, domEvent);
        } catch (err) {
          // never let an event handler break the page
        }
      }, true);
    }
  }

  // ------------------------------------------------------------------ inspect

  function inspect(id) {
    const list = [];
    const all = body().querySelectorAll("*");
    for (const el of Array.from(all)) {
      const events = bindings.get(el);
      if (!events && !el.id) continue;
      const rect = el.getBoundingClientRect();
      let handler = null;
      if (events) {
        const first = hasOwn.call(events, "tap") ? events.tap : events[Object.keys(events)[0]];
        handler = first ? first.handler : null;
      }
      list.push({
        tag: wxTags.get(el) || el.tagName.toLowerCase(),
        id: el.id || "",
        cls: typeof el.className === "string" ? el.className : "",
        text: (el.innerText || "").trim().slice(0, 200),
        x: rect.left, y: rect.top, w: rect.width, h: rect.height,
        handler: handler,
      });
    }
    post({ type: "inspect.result", id: id, text: body().innerText, html: body().innerHTML, nodes: list });
  }

  // ------------------------------------------------------------------ messages

  function painted(error) {
    seq += 1;
    const msg = { type: "painted", seq: seq };
    if (error) msg.error = error;
    post(msg);
  }

  // apply a change to the page state, re-render, and tell the parent how it went
  function updateAndPaint(change) {
    try {
      change();
      renderTree();
      painted(null);
    } catch (err) {
      painted(String(err && err.message ? err.message : err));
    }
  }

  function onMessage(event) {
    if (event.source !== parentWindow) return;
    const msg = event.data;
    if (!msg || typeof msg !== "object" || typeof msg.type !== "string") return;
    if (msg.type === "render") {
      updateAndPaint(function () {
        if (pageStyle) pageStyle.textContent = typeof msg.css === "string" ? msg.css : "";
        tree = msg.tree && typeof msg.tree === "object" ? msg.tree : null;
        data = msg.data && typeof msg.data === "object" && !Array.isArray(msg.data) ? msg.data : {};
      });
    } else if (msg.type === "patch") {
      updateAndPaint(function () {
        const diff = msg.diff && typeof msg.diff === "object" ? msg.diff : {};
        for (const key of Object.keys(diff)) setPath(key, diff[key]);
      });
    } else if (msg.type === "inspect") {
      try {
        inspect(msg.id);
      } catch (err) {
        post({ type: "inspect.result", id: msg.id, text: "", html: "", nodes: [], error: String(err) });
      }
    }
  }

  installStyles();
  installEvents();
  window.addEventListener("message", onMessage);
})();
