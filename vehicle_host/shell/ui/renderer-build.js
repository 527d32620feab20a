/*
 * Renderer part 2: compiled tree + data -> virtual nodes (pure, no DOM).
 *
 * vnode kinds:
 *   {t: "text", key, v}
 *   {t: "el", key, tag, attrs, events, dataset, id, owner, css, children}
 *   {t: "comp", key, tag, path, props, attrs, events, dataset, id, owner, css, slots: {name: [vnode]}}
 * Keys are unique among the vnodes that share a DOM parent: the position in the compiled children,
 * plus ":k<key>" (wx:key) or ":i<index>" for list items; <block>, <template is> and <slot> flatten
 * their children into the parent with the key as prefix.  `owner` is the component instance id
 * whose template wrote the node ("" for the page); `css` is that template's style scope.
 */

// ctx: {owner, css, slots, depth}
function buildChildren(children, scope, ctx, out, prefix) {
  if (!Array.isArray(children)) return out;
  let chainDone = false;
  for (let i = 0; i < children.length; i++) {
    if (R.overflow) return out;
    const node = children[i];
    if (!isObject(node)) continue;
    const key = prefix + i;
    if (node.k === "text") {
      if (!count(1)) return out;
      out.push({ t: "text", key: key, v: textOf(node.v, scope) });
      chainDone = false;
      continue;
    }
    if (node.k !== "el" && node.k !== "comp" && node.k !== "tpl" && node.k !== "slot") continue;
    if (node["for"]) {
      chainDone = false;
      buildRepeated(node, scope, ctx, out, key);
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
    if (show) buildNode(node, scope, ctx, out, key);
  }
  return out;
}

function count(n) {
  R.nodes += n;
  R.work += n;
  if (R.nodes > MAX_NODES || R.work > MAX_WORK) R.overflow = true;
  return !R.overflow;
}

function textOf(parts, scope) {
  return spendText(Array.isArray(parts) ? partsValue(parts.length === 1 ? parts.concat("") : parts, scope) : "");
}

// Text drawn on one page is bounded too: many {{ }} repeating one bound value cannot fill memory.
function spendText(value) {
  if (typeof value !== "string") return value;
  R.text += value.length;
  if (R.text <= MAX_PAGE_TEXT) return value;
  R.overflow = true;
  return "";
}

function itemKey(node, item, index) {
  if (typeof node.key !== "string") return "i" + index;
  const value = node.key === "*this" ? item : member(item, node.key);
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return "k" + String(value);
  return "i" + index;
}

function buildRepeated(node, scope, ctx, out, key) {
  let items = safeEval(node["for"], scope);
  if (typeof items === "number" && items >= 0 && items === Math.floor(items)) {
    const n = Math.min(items, MAX_WORK);
    items = [];
    for (let i = 0; i < n; i++) items.push(i);
  }
  let names = null;
  if (!Array.isArray(items) && typeof items !== "string") {
    if (!isObject(items)) return;
    names = Object.keys(items);
  }
  const itemName = typeof node.forItem === "string" ? node.forItem : "item";
  const indexName = typeof node.forIndex === "string" ? node.forIndex : "index";
  const length = names ? names.length : items.length;
  const seen = new Set();
  for (let i = 0; i < length && !R.overflow; i++) {
    R.work += 1;
    if (R.work > MAX_WORK) {
      R.overflow = true;
      return;
    }
    const index = names ? names[i] : i;
    const item = names ? items[index] : items[i];
    const vars = {};
    defineOwn(vars, itemName, item);
    defineOwn(vars, indexName, index);
    const inner = { vars: vars, parent: scope };
    if (node["if"] && !safeEval(node["if"], inner)) continue;
    let k = key + ":" + itemKey(node, item, index);
    if (seen.has(k)) k += "#" + i; // duplicate keys in the data: keep them apart
    seen.add(k);
    buildNode(node, inner, ctx, out, k);
  }
}

function buildNode(node, scope, ctx, out, key) {
  if (node.k === "tpl") return buildTemplate(node, scope, ctx, out, key);
  if (node.k === "slot") {
    const name = typeof node.name === "string" ? node.name : "";
    const slot = ctx.slots && hasOwn.call(ctx.slots, name) ? ctx.slots[name] : null;
    if (slot && ctx.used && !ctx.used.has(name)) { // slot content is placed once
      ctx.used.add(name);
      for (const v of slot) out.push(v);
    }
    return;
  }
  if (node.tag === "block") {
    buildChildren(node.children, scope, ctx, out, key + "/");
    return;
  }
  if (!count(1)) return;
  const attrs = {};
  const dataset = {};
  const names = isObject(node.attrs) ? Object.keys(node.attrs) : [];
  for (const name of names) {
    const value = spendText(partsValue(node.attrs[name], scope));
    if (name.slice(0, 5).toLowerCase() === "data-") defineOwn(dataset, camel(name.slice(5)), value);
    else defineOwn(attrs, name, value);
  }
  const vnode = {
    t: node.k === "comp" ? "comp" : "el", key: key, tag: typeof node.tag === "string" ? node.tag : "view",
    attrs: attrs, events: isObject(node.events) ? node.events : {}, dataset: dataset,
    id: display(attrs.id), owner: ctx.owner, css: ctx.css, children: [],
  };
  if (node.k === "comp") {
    vnode.path = String(node.c);
    vnode.props = {};
    vnode.slots = {};
    for (const name of Object.keys(attrs)) {
      if (name !== "class" && name !== "style" && name !== "id" && name !== "hidden" && name !== "slot") {
        defineOwn(vnode.props, propName(name), attrs[name]);
      }
    }
    // children render in the parent's scope, grouped by their slot="name"
    const kids = buildChildren(node.children, scope, ctx, [], key + "/s");
    for (const kid of kids) {
      const slotName = kid.t !== "text" && typeof kid.attrs.slot === "string" ? kid.attrs.slot : "";
      if (!hasOwn.call(vnode.slots, slotName)) defineOwn(vnode.slots, slotName, []);
      vnode.slots[slotName].push(kid);
    }
  } else {
    buildChildren(node.children, scope, ctx, vnode.children, "");
  }
  out.push(vnode);
}

function buildTemplate(node, scope, ctx, out, key) {
  let ref = typeof node.ref === "string" ? node.ref : null;
  if (!ref && isObject(node.refs)) {
    const name = display(partsValue(node.is, scope));
    ref = hasOwn.call(node.refs, name) ? node.refs[name] : null;
  }
  if (!ref || !hasOwn.call(R.templates, ref) || (ctx.depth || 0) >= MAX_TEMPLATE_DEPTH) return;
  const data = node.data ? safeEval(node.data, scope) : {};
  const inner = { vars: isObject(data) ? data : {}, parent: null }; // templates see only their data
  const sub = { owner: ctx.owner, css: ctx.css, slots: ctx.slots, used: ctx.used, depth: (ctx.depth || 0) + 1 };
  buildChildren(R.templates[ref].children, inner, sub, out, key + "/t" + ref.length + ":");
}

// The page's vnodes from the tree and its data.
function buildPage() {
  R.nodes = 0;
  R.work = 0;
  R.text = 0;
  R.overflow = false;
  const root = isObject(R.tree) ? R.tree : { children: [] };
  return buildChildren(root.children, { vars: R.data, parent: null }, { owner: "", css: "", slots: null, depth: 0 }, [], "");
}

// A component instance's vnodes from its template, its data and the slot content of its element.
function buildComponent(inst) {
  const def = hasOwn.call(R.components, inst.path) ? R.components[inst.path] : null;
  if (!isObject(def) || !isObject(def.tree)) return [];
  const css = typeof def.scope === "string" ? def.scope : "";
  const ctx = { owner: inst.id, css: css, slots: inst.vnode.slots, used: new Set(), depth: 0 };
  return buildChildren(def.tree.children, { vars: inst.data, parent: null }, ctx, [], "");
}
