/*
 * Renderer part 5: events.  DOM events are caught once on the document and turned into WeChat events:
 * tap/longpress/touch* bubble from the target through ancestors with handlers (currentTarget is the
 * element with the handler, target the origin, retargeted to the host element when the event leaves a
 * component); catch* stops there; other events (input, change, scroll, submit, ...) fire on their
 * element only.  Each post names the component instance whose template bound the handler.
 */

const BUBBLING = new Set(["tap", "longpress", "longtap", "touchstart", "touchmove", "touchend", "touchcancel"]);

function vnodeOf(node) {
  let e = node && node.nodeType === 1 ? node : node && node.parentElement;
  while (e && !meta.has(e)) e = e.parentElement;
  return e ? meta.get(e) : null;
}

function describe(v) {
  return { id: v.id || "", dataset: Object.assign({}, v.dataset) };
}

function fire(v, type, detail, domEvent) {
  let target = describe(v);
  let node = v;
  const stamp = Math.round((domEvent && domEvent.timeStamp) || performance.now());
  while (node) {
    const binding = hasOwn.call(node.events, type) ? node.events[type] : null;
    if (isObject(binding) && typeof binding.handler === "string") {
      const event = { type: type, timeStamp: stamp, target: target, currentTarget: describe(node), detail: detail };
      if (domEvent && domEvent.touches) event.touches = touchList(domEvent.touches);
      postEvent(binding.handler, node.owner, event);
      if (binding["catch"]) return;
    }
    if (!BUBBLING.has(type)) return;
    const up = vnodeOf(node.dom.parentNode);
    // leaving a component's template: outer handlers see the host element as the target
    if (up && up.t === "comp" && up.inst && up.inst.id === node.owner) target = describe(up);
    node = up;
  }
}

function touchList(list) {
  return Array.from(list).slice(0, 10).map(function (t) {
    return { identifier: t.identifier, pageX: t.pageX, pageY: t.pageY, clientX: t.clientX, clientY: t.clientY };
  });
}

function closest(v, tag) {
  for (let n = v; n; n = vnodeOf(n.dom.parentNode)) if (n.t === "el" && n.tag === tag) return n;
  return null;
}

function descendants(v, tags) {
  const out = [];
  for (const e of v.dom.querySelectorAll("*")) {
    const d = meta.get(e);
    if (d && d.dom === e && d.t === "el" && tags.has(d.tag)) out.push(d);
  }
  return out;
}

// ------------------------------------------------------------------ taps and what they do

function onClick(domEvent) {
  const v = vnodeOf(domEvent.target);
  if (!v) return;
  fire(v, "tap", { x: Math.round(domEvent.pageX || 0), y: Math.round(domEvent.pageY || 0) }, domEvent);
  if (sheetOpen()) return;
  for (let n = v; n; n = vnodeOf(n.dom.parentNode)) {
    if (n.t !== "el") continue;
    if (TOGGLES.has(n.tag)) return toggle(n);
    if (n.tag === "label") return labelTap(n, v);
    if (n.tag === "navigator") return navigate(n);
    if (n.tag === "picker") return openPicker(n);
    if (n.tag === "button") return buttonTap(n);
  }
}

function toggle(n) {
  if (n.state.disabled) return;
  if (n.tag === "radio") {
    if (n.state.checked) return;
    const group = closest(n, "radio-group");
    if (group) for (const r of descendants(group, new Set(["radio"]))) if (r !== n && r.state.checked) { r.state.checked = false; setClass(r); }
    n.state.checked = true;
    setClass(n);
    if (group) fire(group, "change", { value: display(n.attrs.value) });
    return;
  }
  n.state.checked = !n.state.checked;
  setClass(n);
  if (n.tag === "switch") return fire(n, "change", { value: n.state.checked });
  const group = closest(n, "checkbox-group");
  if (group) fire(group, "change", { value: groupValue(group) });
}

function groupValue(group) {
  return descendants(group, new Set(["checkbox"])).filter(function (c) { return c.state.checked; })
    .map(function (c) { return display(c.attrs.value); });
}

function labelTap(label, origin) {
  let target = null;
  const forId = display(label.attrs["for"]);
  if (forId) {
    for (const e of rootBox().querySelectorAll("[id]")) {
      const d = meta.get(e);
      if (e.id === forId && d && d.dom === e) target = d;
    }
  } else {
    target = descendants(label, new Set(["switch", "checkbox", "radio"]))[0] || null;
  }
  if (target && TOGGLES.has(target.tag) && !target.dom.contains(origin.dom)) toggle(target);
  else if (target && (target.tag === "input" || target.tag === "textarea")) target.dom.focus();
}

function navigate(n) {
  const openType = display(n.attrs["open-type"]) || "navigate";
  const message = { type: "navigate", openType: openType, url: safePageUrl(n.attrs.url) };
  if (openType === "navigateBack") message.delta = Math.max(1, Math.floor(num(n.attrs.delta, 1)));
  else if (!message.url) return;
  post(message);
}

function buttonTap(n) {
  if (n.dom.disabled) return;
  const formType = display(n.attrs["form-type"]);
  const form = formType ? closest(n, "form") : null;
  if (!form) return;
  if (formType === "submit") fire(form, "submit", { value: formValues(form), target: describe(n) });
  else if (formType === "reset") {
    resetForm(form);
    fire(form, "reset", {});
  }
}

const FORM_FIELDS = new Set(["input", "textarea", "switch", "slider", "checkbox-group", "radio-group", "picker"]);

function fieldValue(f) {
  if (f.tag === "input" || f.tag === "textarea") return f.dom.value;
  if (f.tag === "switch") return !!f.state.checked;
  if (f.tag === "slider") return Number(f.dom.value);
  if (f.tag === "checkbox-group") return groupValue(f);
  if (f.tag === "radio-group") {
    const on = descendants(f, new Set(["radio"])).filter(function (r) { return r.state.checked; })[0];
    return on ? display(on.attrs.value) : "";
  }
  return pickerValue(f);
}

function formValues(form) {
  const out = {};
  for (const f of descendants(form, FORM_FIELDS)) {
    const name = display(f.attrs.name);
    if (name && !FORBIDDEN_KEYS.has(name)) defineOwn(out, name, fieldValue(f));
  }
  return out;
}

function resetForm(form) {
  const all = new Set(["input", "textarea", "slider", "switch", "checkbox", "radio", "picker"]);
  for (const f of descendants(form, all)) {
    if (f.tag === "input" || f.tag === "textarea") f.dom.value = display(f.attrs.value);
    else if (f.tag === "slider") f.dom.value = String(num(f.attrs.value, 0));
    else if (f.tag === "picker") f.state.value = f.attrs.value;
    else {
      f.state.checked = flag(f.attrs.checked);
      setClass(f);
    }
  }
}

// ------------------------------------------------------------------ inputs, scrolling

function onInput(domEvent) {
  const v = vnodeOf(domEvent.target);
  if (!v || v.dom !== domEvent.target) return;
  if (v.tag === "slider") return fire(v, "changing", { value: Number(v.dom.value) });
  if (v.tag === "input" || v.tag === "textarea") {
    fire(v, "input", { value: v.dom.value, cursor: v.dom.selectionStart || v.dom.value.length, keyCode: 0 });
  }
}

function onChange(domEvent) {
  const v = vnodeOf(domEvent.target);
  if (v && v.dom === domEvent.target && v.tag === "slider") fire(v, "change", { value: Number(v.dom.value) });
}

function onFocus(domEvent, type) {
  const v = vnodeOf(domEvent.target);
  if (v && v.dom === domEvent.target && (v.tag === "input" || v.tag === "textarea")) {
    fire(v, type, type === "focus" ? { value: v.dom.value, height: 0 } : { value: v.dom.value });
  }
}

function onKey(domEvent) {
  const v = vnodeOf(domEvent.target);
  if (v && v.dom === domEvent.target && v.tag === "input" && domEvent.key === "Enter") {
    fire(v, "confirm", { value: v.dom.value });
  }
}

function onScroll(domEvent) {
  if (domEvent.target === doc || domEvent.target === doc.documentElement) return pageScrolled();
  const v = vnodeOf(domEvent.target);
  if (!v || v.dom !== domEvent.target || v.tag !== "scroll-view") return;
  const e = v.dom;
  const last = v.state.last || { top: 0, left: 0 };
  fire(v, "scroll", {
    scrollTop: e.scrollTop, scrollLeft: e.scrollLeft, scrollHeight: e.scrollHeight, scrollWidth: e.scrollWidth,
    deltaX: e.scrollLeft - last.left, deltaY: e.scrollTop - last.top,
  });
  v.state.last = { top: e.scrollTop, left: e.scrollLeft };
  const lower = num(v.attrs["lower-threshold"], 50);
  const upper = num(v.attrs["upper-threshold"], 50);
  const atBottom = e.scrollTop + e.clientHeight >= e.scrollHeight - lower && e.scrollHeight > e.clientHeight;
  const atRight = e.scrollLeft + e.clientWidth >= e.scrollWidth - lower && e.scrollWidth > e.clientWidth;
  if ((atBottom || atRight) && !v.state.lower) fire(v, "scrolltolower", { direction: atBottom ? "bottom" : "right" });
  v.state.lower = atBottom || atRight;
  const atTop = e.scrollTop <= upper && e.scrollLeft <= upper;
  if (atTop && !v.state.upper && v.state.last) fire(v, "scrolltoupper", { direction: e.scrollTop <= upper ? "top" : "left" });
  v.state.upper = atTop;
}

let pageAtBottom = false;
function pageScrolled() {
  const distance = num(R.window.onReachBottomDistance, 50);
  const e = doc.scrollingElement || doc.documentElement;
  const at = e.scrollTop + window.innerHeight >= e.scrollHeight - distance && e.scrollHeight > window.innerHeight;
  if (at && !pageAtBottom) postEvent("$reachBottom", "", { type: "reachBottom", detail: {} });
  pageAtBottom = at;
}

// ------------------------------------------------------------------ swiper swipes, hover-class

let press = null;
function onPointerDown(domEvent) {
  const v = vnodeOf(domEvent.target);
  press = { x: domEvent.clientX, y: domEvent.clientY, swiper: v ? closest(v, "swiper") : null, hover: [] };
  for (let n = v; n; n = vnodeOf(n.dom.parentNode)) {
    if (n.t === "el" && display(n.attrs["hover-class"]) && display(n.attrs["hover-class"]) !== "none") {
      n.state.hover = true;
      setClass(n);
      press.hover.push(n);
      if (flag(n.attrs["hover-stop-propagation"])) break;
    }
  }
}

function onPointerUp(domEvent) {
  if (!press) return;
  const p = press;
  press = null;
  setTimeout(function () {
    for (const n of p.hover) {
      n.state.hover = false;
      setClass(n);
    }
  }, 70);
  const dx = domEvent.clientX - p.x;
  if (p.swiper && Math.abs(dx) > 40 && Math.abs(dx) > Math.abs(domEvent.clientY - p.y)) {
    const current = meta.get(p.swiper.dom) || p.swiper;
    moveSwiper(current, current.state.current + (dx < 0 ? 1 : -1), "touch");
  }
}

function onMedia(domEvent, type) {
  const v = vnodeOf(domEvent.target);
  if (!v || v.dom !== domEvent.target || v.tag !== "image") return;
  if (type === "load") fire(v, "load", { width: v.dom.naturalWidth, height: v.dom.naturalHeight });
  else fire(v, "error", { errMsg: "image could not be shown" });
}

function guard(fn, arg) {
  return function (domEvent) {
    try {
      fn(domEvent, arg);
    } catch (err) {
      // never let an event break the page
    }
  };
}

function installEvents() {
  doc.addEventListener("click", guard(onClick), true);
  doc.addEventListener("contextmenu", guard(function (e) {
    const v = vnodeOf(e.target);
    if (!v) return;
    e.preventDefault();
    fire(v, "longpress", { x: Math.round(e.pageX || 0), y: Math.round(e.pageY || 0) }, e);
  }), true);
  for (const t of ["touchstart", "touchmove", "touchend", "touchcancel"]) {
    doc.addEventListener(t, guard(function (e) {
      const v = vnodeOf(e.target);
      if (v) fire(v, t, {}, e);
    }), { capture: true, passive: true });
  }
  doc.addEventListener("input", guard(onInput), true);
  doc.addEventListener("change", guard(onChange), true);
  doc.addEventListener("focus", guard(onFocus, "focus"), true);
  doc.addEventListener("blur", guard(onFocus, "blur"), true);
  doc.addEventListener("keydown", guard(onKey), true);
  doc.addEventListener("scroll", guard(onScroll), true);
  doc.addEventListener("pointerdown", guard(onPointerDown), true);
  doc.addEventListener("pointerup", guard(onPointerUp), true);
  doc.addEventListener("pointercancel", guard(onPointerUp), true);
  doc.addEventListener("load", guard(onMedia, "load"), true);
  doc.addEventListener("error", guard(onMedia, "error"), true);
  doc.addEventListener("securitypolicyviolation", function (e) {
    post({ type: "csp", directive: String(e.violatedDirective || ""), blocked: String(e.blockedURI || "").slice(0, 200) });
  });
}
