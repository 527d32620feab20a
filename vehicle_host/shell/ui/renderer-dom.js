/*
 * Renderer part 3: virtual nodes -> DOM, patched in place.
 *
 * Children are matched by key: a node whose key and kind survive keeps its DOM element (and focus,
 * scroll position, typed text); others are created or removed; survivors are moved into the new order
 * with insertBefore.  wx:for lists with wx:key therefore reuse elements by key, lists without it by
 * index, and a text or attribute change touches only that text node or attribute.
 * Custom component instances live on their host element's vnode (`inst`); see mountComp.
 */

const doc = document;
const parentWindow = window.parent;
const meta = new WeakMap(); // DOM element -> its current vnode
const uids = new WeakMap(); // DOM element -> creation number (inspect shows it)
let uidSeq = 0;

function post(message) {
  try {
    parentWindow.postMessage(message, "*");
  } catch (err) {
    // data that cannot be cloned: drop the message rather than break the page
  }
}

function postEvent(handler, component, event) {
  const message = { type: "event", handler: handler, event: event };
  if (component) message.component = component;
  post(message);
}

function compatible(o, n) {
  return o.t === n.t && (o.t === "text" || (o.tag === n.tag && o.path === n.path));
}

function createNode(v) {
  if (v.t === "text") {
    v.dom = doc.createTextNode(v.v);
    return;
  }
  createWidget(v); // sets v.dom (the element) and v.box (where children go)
  uids.set(v.dom, ++uidSeq);
  meta.set(v.dom, v);
  applyAttrs(v, null);
  if (v.t === "comp") mountComp(v);
  else patchChildren(v.box, [], v.children);
  afterChildren(v, null);
}

function patchNode(o, n) {
  n.dom = o.dom;
  if (n.t === "text") {
    if (o.v !== n.v) n.dom.nodeValue = n.v;
    return;
  }
  n.box = o.box;
  n.state = o.state;
  meta.set(n.dom, n);
  applyAttrs(n, o);
  if (n.t === "comp") updateComp(o, n);
  else patchChildren(n.box, o.children, n.children);
  afterChildren(n, o);
}

function patchChildren(parent, oldKids, newKids) {
  const byKey = new Map();
  for (const o of oldKids) byKey.set(o.key, o);
  for (const n of newKids) {
    const o = byKey.get(n.key);
    if (o && compatible(o, n)) {
      byKey.delete(n.key);
      patchNode(o, n);
    } else {
      createNode(n);
    }
  }
  for (const o of byKey.values()) destroy(o, false);
  let next = null;
  for (let i = newKids.length - 1; i >= 0; i--) {
    const node = newKids[i].dom;
    if (node.parentNode !== parent || node.nextSibling !== next) parent.insertBefore(node, next);
    next = node;
  }
}

function destroy(v, nested) {
  if (v.t === "comp") {
    unmountComp(v);
  } else if (v.t === "el") {
    cleanupWidget(v);
    for (const c of v.children) destroy(c, true);
  }
  if (!nested && v.dom && v.dom.parentNode) v.dom.parentNode.removeChild(v.dom);
}

// ------------------------------------------------------------------ custom components

function mountComp(v) {
  const id = "c" + (++R.compSeq);
  const data = {};
  for (const k of Object.keys(v.props)) defineOwn(data, k, v.props[k]);
  const inst = { id: id, path: v.path, parent: v.owner, props: v.props, data: data, vnode: v, kids: [] };
  v.inst = inst;
  R.instances.set(id, inst);
  const events = {};
  for (const name of Object.keys(v.events)) {
    if (isObject(v.events[name]) && typeof v.events[name].handler === "string") events[name] = v.events[name].handler;
  }
  postEvent("$attach", id, { path: v.path, props: v.props, parent: v.owner, events: events });
  renderComp(inst);
}

function updateComp(o, n) {
  const inst = o.inst;
  n.inst = inst;
  inst.vnode = n;
  const changed = [];
  for (const k of Object.keys(n.props)) {
    if (!hasOwn.call(o.props, k) || !sameValue(o.props[k], n.props[k])) {
      changed.push(k);
      defineOwn(inst.data, k, n.props[k]);
    }
  }
  inst.props = n.props;
  if (changed.length) postEvent("$props", inst.id, { props: n.props, changed: changed });
  renderComp(inst);
}

function renderComp(inst) {
  const kids = buildComponent(inst);
  patchChildren(inst.vnode.box, inst.kids, kids);
  inst.kids = kids;
}

function unmountComp(v) {
  const inst = v.inst;
  if (!inst) return;
  for (const c of inst.kids) destroy(c, true);
  inst.kids = [];
  R.instances.delete(inst.id);
  postEvent("$detach", inst.id, {});
}

// ------------------------------------------------------------------ whole page

function rootBox() {
  let root = doc.getElementById("wx-root");
  if (!root) {
    if (!doc.body) doc.documentElement.appendChild(doc.createElement("body"));
    root = doc.createElement("div");
    root.id = "wx-root";
    root.className = "wx-page";
    doc.body.appendChild(root);
  }
  return root;
}

function renderAll() {
  const kids = buildPage();
  const root = rootBox();
  patchChildren(root, R.kids, kids);
  R.kids = kids;
  let notice = doc.getElementById("wx-overflow");
  if (R.overflow && !notice) {
    notice = doc.createElement("div");
    notice.id = "wx-overflow";
    notice.className = "wx-overflow";
    notice.textContent = "This page is too large to show (more than " + MAX_NODES + " elements).";
    doc.body.appendChild(notice);
  } else if (!R.overflow && notice) {
    notice.remove();
  }
}

function resetPage() {
  for (const v of R.kids) destroy(v, false);
  R.kids = [];
}
