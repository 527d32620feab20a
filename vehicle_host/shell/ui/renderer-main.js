/*
 * Renderer part 7: messages from the parent, inspect, start-up.
 * COMPONENT_CSS is defined by vehicle_host/shell/page.py from ui/components.css.
 */

let pageStyle = null;

function installStyles() {
  const head = doc.head || doc.documentElement;
  const base = doc.createElement("style");
  base.id = "base-style";
  base.textContent = typeof COMPONENT_CSS === "string" ? COMPONENT_CSS : "";
  head.appendChild(base);
  pageStyle = doc.createElement("style");
  pageStyle.id = "page-style";
  head.appendChild(pageStyle);
}

function pageCss(msg) {
  let css = typeof msg.css === "string" ? msg.css : "";
  if (isObject(msg.components)) {
    for (const path of Object.keys(msg.components)) {
      const def = msg.components[path];
      if (isObject(def) && typeof def.css === "string") css += "\n" + def.css;
    }
  }
  return css;
}

function painted(error) {
  R.seq += 1;
  const msg = { type: "painted", seq: R.seq };
  if (error) msg.error = error;
  post(msg);
}

// apply a change to the page state, re-render, and tell the parent how it went
function updateAndPaint(change) {
  try {
    change();
    renderAll();
    painted(null);
  } catch (err) {
    painted(String(err && err.message ? err.message : err));
  }
}

function inspect(id) {
  const list = [];
  for (const e of Array.from(rootBox().querySelectorAll("*"))) {
    const v = meta.get(e);
    if (!v || v.dom !== e) continue;
    const names = Object.keys(v.events);
    if (!names.length && !e.id && v.t !== "comp") continue;
    const rect = e.getBoundingClientRect();
    const first = hasOwn.call(v.events, "tap") ? v.events.tap : v.events[names[0]];
    list.push({
      tag: v.tag, id: e.id || "", cls: e.getAttribute("class") || "", uid: uids.get(e) || 0,
      owner: v.owner, component: v.inst ? v.inst.id : "",
      text: (e.innerText || "").trim().slice(0, 200),
      x: rect.left, y: rect.top, w: rect.width, h: rect.height,
      handler: first ? first.handler : null,
    });
  }
  const components = [];
  R.instances.forEach(function (inst) {
    components.push({ id: inst.id, path: inst.path, parent: inst.parent });
  });
  const root = rootBox();
  post({ type: "inspect.result", id: id, text: root.innerText, html: root.innerHTML, nodes: list, components: components });
}

function onMessage(event) {
  if (event.source !== parentWindow) return;
  const msg = event.data;
  if (!isObject(msg) || typeof msg.type !== "string") return;
  if (msg.type === "render") {
    updateAndPaint(function () {
      resetPage();
      if (pageStyle) pageStyle.textContent = pageCss(msg);
      R.tree = isObject(msg.tree) ? msg.tree : null;
      R.data = isObject(msg.data) && !Array.isArray(msg.data) ? msg.data : {};
      R.templates = isObject(msg.templates) ? msg.templates : {};
      R.components = isObject(msg.components) ? msg.components : {};
      R.window = isObject(msg.window) ? msg.window : {};
    });
  } else if (msg.type === "patch") {
    updateAndPaint(function () {
      if (typeof msg.component === "string" && msg.component) {
        const inst = R.instances.get(msg.component);
        if (inst) applyDiff(inst.data, msg.diff);
      } else {
        applyDiff(R.data, msg.diff);
      }
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
