/*
 * Renderer part 4: built-in components — their DOM, attributes and state.
 *
 * Every element gets the class "wx-<tag>" (WXSS type selectors compile to it).  Attributes are applied
 * through one switch; anything not known is dropped unless it is a harmless presentational attribute,
 * so no on* handler, href/src/srcdoc or URL produced by an expression ever reaches the DOM.
 */

const DOM_TAGS = {
  text: "span", icon: "span", button: "button", image: "img", input: "input", textarea: "textarea",
  slider: "input", label: "div", checkbox: "span", radio: "span", switch: "span",
};
const ICONS = {
  success: ["\u2713", "#09bb07"], success_no_circle: ["\u2713", "#09bb07"], info: ["i", "#10aeff"],
  warn: ["!", "#f76260"], waiting: ["\u231b", "#10aeff"], cancel: ["\u2715", "#f43530"],
  download: ["\u2193", "#09bb07"], search: ["\u2315", "#b2b2b2"], clear: ["\u2715", "#b2b2b2"],
};
const IMAGE_MODES = {
  scaleToFill: "fill", aspectFit: "contain", aspectFill: "cover", widthFix: "cover", heightFix: "cover",
  top: "none", bottom: "none", center: "none", left: "none", right: "none",
};
const TOGGLES = new Set(["switch", "checkbox", "radio"]);
const PASSIVE_ATTRS = new Set(["title", "lang", "dir", "role", "aria-label", "aria-hidden", "tabindex"]);

function el(tag, cls) {
  const e = doc.createElement(tag);
  if (cls) e.className = cls;
  return e;
}

function flag(value) {
  return value !== undefined && value !== null && value !== false && value !== "false" && value !== 0 && value !== "";
}

function num(value, dflt) {
  const n = Number(value);
  return value === undefined || value === null || value === "" || n !== n ? dflt : n;
}

function createWidget(v) {
  const tag = v.t === "comp" ? "comp" : v.tag;
  const e = el(DOM_TAGS[tag] || "div");
  v.dom = e;
  v.box = e;
  v.state = {};
  if (tag === "button") e.type = "button";
  if (tag === "input") e.type = "text";
  if (tag === "slider") {
    e.type = "range";
    v.box = el("span"); // a range input has no children
  }
  if (tag === "image" || tag === "input" || tag === "textarea") v.box = el("span");
  if (TOGGLES.has(tag)) {
    e.appendChild(el("span", "wx-" + tag + "-input"));
    v.box = e.appendChild(el("span", "wx-" + tag + "-label"));
  }
  if (tag === "swiper") {
    v.box = e.appendChild(el("div", "wx-swiper-track"));
    v.state.dots = e.appendChild(el("div", "wx-swiper-dots"));
    v.state.current = 0;
  }
  if (tag === "progress") {
    const bar = e.appendChild(el("div", "wx-progress-bar"));
    v.state.fill = bar.appendChild(el("div", "wx-progress-fill"));
    v.state.info = e.appendChild(el("span", "wx-progress-info"));
    v.box = el("span");
  }
  if (tag === "icon") v.box = el("span");
  if (tag === "rich-text") v.box = el("span");
}

function applyAttrs(n, o) {
  const names = new Set(Object.keys(n.attrs));
  if (o) for (const k of Object.keys(o.attrs)) names.add(k);
  names.add("class");
  for (const name of names) {
    const value = n.attrs[name];
    const prev = o ? o.attrs[name] : undefined;
    if (o && name !== "class" && sameValue(prev, value)) continue;
    applyAttr(n, name, value, o === null);
  }
  if (n.tag === "icon" && n.t === "el") drawIcon(n);
  if (n.tag === "progress" && n.t === "el") drawProgress(n);
}

function setClass(n) {
  const tag = n.t === "comp" ? "comp wxc-" + n.tag : n.tag;
  let cls = "wx-" + tag;
  const own = scopeClasses(n.attrs["class"], n.css);
  if (own) cls += " " + own;
  if (n.t === "comp") {
    const def = R.components[n.path];
    if (isObject(def) && typeof def.scope === "string") cls += " " + def.scope + "-host";
  }
  if (n.tag === "button") {
    const type = display(n.attrs.type);
    if (type === "primary" || type === "warn") cls += " wx-button-" + type;
    if (display(n.attrs.size) === "mini") cls += " wx-button-mini";
    if (flag(n.attrs.plain)) cls += " wx-button-plain";
  }
  if (n.state.checked) cls += " wx-checked";
  if (n.state.hover) cls += " " + scopeClasses(n.attrs["hover-class"], n.css);
  if (n.dom.getAttribute("class") !== cls) n.dom.setAttribute("class", cls);
}

function applyAttr(n, name, value, first) {
  const e = n.dom;
  const tag = n.t === "comp" ? "comp" : n.tag;
  const lower = name.toLowerCase();
  switch (lower) {
    case "class": case "hover-class":
      return setClass(n);
    case "style": {
      const style = safeStyle(value);
      if (style) e.setAttribute("style", style);
      else e.removeAttribute("style");
      if (n.state.hidden) e.style.display = "none";
      return;
    }
    case "hidden":
      n.state.hidden = flag(value);
      e.style.display = n.state.hidden ? "none" : "";
      if (!n.state.hidden) applyAttr(n, "style", n.attrs.style, false);
      return;
    case "id":
      if (display(value)) e.id = display(value).slice(0, 256);
      else e.removeAttribute("id");
      return;
  }
  if (tag === "comp" || lower.slice(0, 2) === "on") return;
  switch (tag) {
    case "image":
      if (lower === "src") {
        const src = safeImageSrc(value);
        if (src) e.setAttribute("src", src);
        else e.removeAttribute("src");
      } else if (lower === "mode") {
        const mode = display(value) || "scaleToFill";
        e.style.objectFit = IMAGE_MODES[mode] || "fill";
        e.style.height = mode === "widthFix" ? "auto" : "";
        e.style.width = mode === "heightFix" ? "auto" : "";
      }
      return;
    case "input": case "textarea":
      if (lower === "value") e.value = display(value);
      else if (lower === "placeholder") e.setAttribute("placeholder", display(value).slice(0, 500));
      else if (lower === "maxlength") setMaxLength(e, value);
      else if (lower === "disabled") e.disabled = flag(value);
      else if (lower === "type" && tag === "input") {
        const t = display(value);
        e.setAttribute("inputmode", t === "number" ? "numeric" : t === "digit" ? "decimal" : "text");
      } else if (lower === "password" && tag === "input") e.type = flag(value) ? "password" : "text";
      else if (lower === "focus" && flag(value)) setTimeout(function () { e.focus(); }, 0);
      if (first && !hasOwn.call(n.attrs, "maxlength")) setMaxLength(e, 140); // WeChat's default
      return;
    case "slider":
      if (lower === "min" || lower === "max" || lower === "step") e.setAttribute(lower, String(num(value, lower === "max" ? 100 : lower === "min" ? 0 : 1)));
      else if (lower === "value") e.value = String(num(value, 0));
      else if (lower === "disabled") e.disabled = flag(value);
      if (first && !hasOwn.call(n.attrs, "max")) e.max = "100";
      return;
    case "switch": case "checkbox": case "radio":
      if (lower === "checked") {
        n.state.checked = flag(value);
        setClass(n);
      } else if (lower === "disabled") n.state.disabled = flag(value);
      else if (lower === "color") n.state.color = display(value);
      return;
    case "button":
      if (lower === "disabled") e.disabled = flag(value);
      else if (lower === "loading") e.classList.toggle("wx-button-loading", flag(value));
      else if (lower === "type" || lower === "size" || lower === "plain") setClass(n);
      return;
    case "scroll-view":
      if (lower === "scroll-x") e.style.overflowX = flag(value) ? "auto" : "hidden";
      else if (lower === "scroll-y") e.style.overflowY = flag(value) ? "auto" : "hidden";
      else if (lower === "scroll-top") setTimeout(function () { e.scrollTop = num(value, 0); }, 0);
      else if (lower === "scroll-left") setTimeout(function () { e.scrollLeft = num(value, 0); }, 0);
      else if (lower === "scroll-into-view") setTimeout(function () { scrollIntoView(e, display(value)); }, 0);
      return;
    case "swiper":
      if (lower === "current") n.state.current = Math.max(0, Math.floor(num(value, 0)));
      else if (lower === "autoplay" || lower === "interval") n.state.restart = true;
      return;
    case "picker":
      if (lower === "value") n.state.value = value;
      return;
    case "rich-text":
      if (lower === "nodes") drawRichText(n, value);
      return;
    case "text":
      if (lower === "selectable" || lower === "user-select") e.style.userSelect = flag(value) ? "text" : "";
      return;
    default:
      if (PASSIVE_ATTRS.has(lower)) {
        const text = display(value);
        if (text) e.setAttribute(lower, text.slice(0, 500));
        else e.removeAttribute(lower);
      }
  }
}

function setMaxLength(e, value) {
  const n = Math.floor(num(value, 140));
  if (n < 0) e.removeAttribute("maxlength");
  else e.maxLength = n;
}

function scrollIntoView(box, id) {
  if (!id) return;
  for (const child of box.querySelectorAll("[id]")) {
    if (child.id === id) {
      box.scrollTop = child.offsetTop - box.offsetTop;
      return;
    }
  }
}

function drawIcon(n) {
  const spec = ICONS[display(n.attrs.type)] || ICONS.info;
  const size = num(n.attrs.size, 23);
  n.dom.textContent = spec[0];
  n.dom.style.fontSize = Math.round(size * 0.8) + "px";
  n.dom.style.width = size + "px";
  n.dom.style.height = size + "px";
  n.dom.style.color = display(n.attrs.color) || spec[1];
}

function drawProgress(n) {
  const percent = Math.max(0, Math.min(100, num(n.attrs.percent, 0)));
  n.state.fill.style.width = percent + "%";
  const color = display(n.attrs.activeColor || n.attrs.activecolor || n.attrs.color);
  n.state.fill.style.background = color && !/[;:]/.test(color) ? color : "";
  n.state.fill.parentNode.style.height = num(n.attrs["stroke-width"], 6) + "px";
  n.state.info.textContent = flag(n.attrs["show-info"]) ? Math.round(percent) + "%" : "";
}

// ------------------------------------------------------------------ rich-text (nodes array only)

const RICH_TAGS = new Set([
  "a", "abbr", "b", "blockquote", "br", "code", "col", "colgroup", "dd", "del", "div", "dl", "dt", "em",
  "fieldset", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "label", "legend", "li", "ol",
  "p", "q", "span", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
  "pre", "small", "section", "big", "cite", "s", "strike", "tt", "mark",
]);

function drawRichText(n, nodes) {
  const e = n.dom;
  while (e.firstChild) e.removeChild(e.firstChild);
  const budget = { n: 2000 };
  if (typeof nodes === "string") e.appendChild(doc.createTextNode(nodes.slice(0, 100000)));
  else if (Array.isArray(nodes)) richNodes(e, nodes, budget, 0);
}

function richNodes(parent, nodes, budget, depth) {
  if (!Array.isArray(nodes) || depth > 32) return;
  for (const node of nodes) {
    if (--budget.n < 0 || !isObject(node)) return;
    if (node.type === "text") {
      parent.appendChild(doc.createTextNode(display(node.text)));
      continue;
    }
    const name = display(node.name).toLowerCase();
    if (!RICH_TAGS.has(name)) continue; // unknown or unsafe tags are dropped with their content
    const e = doc.createElement(name === "a" ? "span" : name);
    const attrs = isObject(node.attrs) ? node.attrs : {};
    if (attrs["class"]) e.setAttribute("class", display(attrs["class"]));
    const style = safeStyle(attrs.style);
    if (style) e.setAttribute("style", style);
    if (name === "img") {
      const src = safeImageSrc(attrs.src);
      if (src) e.setAttribute("src", src);
      for (const a of ["width", "height", "alt"]) if (attrs[a] !== undefined) e.setAttribute(a, display(attrs[a]));
    }
    if (name === "td" || name === "th") {
      for (const a of ["colspan", "rowspan"]) if (attrs[a] !== undefined) e.setAttribute(a, String(num(attrs[a], 1)));
    }
    richNodes(e, node.children, budget, depth + 1);
    parent.appendChild(e);
  }
}

// ------------------------------------------------------------------ after children: swiper

function afterChildren(n, o) {
  if (n.t !== "el" || n.tag !== "swiper") return;
  const items = Array.from(n.box.children);
  const count = items.length;
  if (n.state.current >= count) n.state.current = Math.max(0, count - 1);
  drawSwiper(n);
  const dots = n.state.dots;
  dots.style.display = flag(n.attrs["indicator-dots"]) ? "" : "none";
  while (dots.children.length < count) dots.appendChild(el("span", "wx-swiper-dot"));
  while (dots.children.length > count) dots.removeChild(dots.lastChild);
  if (!o || n.state.restart) setupAutoplay(n);
  n.state.restart = false;
}

function drawSwiper(n) {
  const duration = Math.max(0, num(n.attrs.duration, 500));
  n.box.style.transition = "transform " + duration + "ms ease";
  n.box.style.transform = "translateX(" + (-100 * n.state.current) + "%)";
  Array.from(n.state.dots.children).forEach(function (d, i) {
    d.classList.toggle("wx-swiper-dot-active", i === n.state.current);
  });
}

function moveSwiper(n, to, source) {
  const count = n.box.children.length;
  if (!count) return;
  if (to < 0 || to >= count) {
    if (!flag(n.attrs.circular)) return;
    to = (to + count) % count;
  }
  if (to === n.state.current) return;
  n.state.current = to;
  drawSwiper(n);
  fire(n, "change", { current: to, currentItemId: "", source: source });
}

function setupAutoplay(n) {
  if (n.state.timer) clearInterval(n.state.timer);
  n.state.timer = 0;
  if (!flag(n.attrs.autoplay)) return;
  const element = n.dom;
  n.state.timer = setInterval(function () {
    const current = meta.get(element);
    if (!element.isConnected || !current) return;
    const count = current.box.children.length;
    if (count > 1) moveSwiper(current, (current.state.current + 1) % count, "autoplay");
  }, Math.max(500, num(n.attrs.interval, 5000)));
}

function cleanupWidget(v) {
  if (v.state && v.state.timer) clearInterval(v.state.timer);
}
