/*
 * Renderer part 6: <picker> — a bottom sheet with one column per value part (selector, multiSelector,
 * time, date).  Confirm fires change with WeChat's detail.value (index, [indices], "HH:MM",
 * "YYYY-MM-DD" / "YYYY-MM" / "YYYY"); the shade or Cancel fires cancel.
 */

let sheet = null;

function sheetOpen() {
  return sheet !== null;
}

function pad(n) {
  return (n < 10 ? "0" : "") + n;
}

function range(from, to) {
  const out = [];
  for (let i = from; i <= to && out.length < 1000; i++) out.push(i);
  return out;
}

function labelOf(item, key) {
  return display(key && isObject(item) ? member(item, key) : item);
}

function parseDate(text, dflt) {
  const m = /^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?$/.exec(display(text));
  return m ? [Number(m[1]), Number(m[2] || 1), Number(m[3] || 1)] : dflt;
}

// {columns: [[label...]], selected: [index...], result: function(selected) -> detail.value}
function pickerModel(n) {
  const mode = display(n.attrs.mode) || "selector";
  const value = n.state.value === undefined ? n.attrs.value : n.state.value;
  const key = display(n.attrs["range-key"]);
  if (mode === "multiSelector") {
    const cols = Array.isArray(n.attrs.range) ? n.attrs.range.slice(0, 5) : [];
    const columns = cols.map(function (c) { return (Array.isArray(c) ? c : []).slice(0, 1000).map(function (i) { return labelOf(i, key); }); });
    const selected = columns.map(function (c, i) { return Math.min(Math.max(0, Math.floor(num(Array.isArray(value) ? value[i] : 0, 0))), Math.max(0, c.length - 1)); });
    return { mode: mode, columns: columns, selected: selected, result: function (s) { return s.slice(); } };
  }
  if (mode === "time") {
    const m = /^(\d{1,2}):(\d{1,2})$/.exec(display(value));
    const columns = [range(0, 23).map(pad), range(0, 59).map(pad)];
    return { mode: mode, columns: columns, selected: m ? [Number(m[1]) % 24, Number(m[2]) % 60] : [0, 0],
      result: function (s) { return columns[0][s[0]] + ":" + columns[1][s[1]]; } };
  }
  if (mode === "date") {
    const start = parseDate(n.attrs.start, [1970, 1, 1]);
    const end = parseDate(n.attrs.end, [2099, 12, 31]);
    const years = range(start[0], Math.max(start[0], end[0]));
    const now = parseDate(value, [years[0], 1, 1]);
    const fields = display(n.attrs.fields) || "day";
    const columns = [years.map(String)];
    if (fields !== "year") columns.push(range(1, 12).map(pad));
    if (fields === "day") columns.push(range(1, 31).map(pad));
    const selected = [Math.max(0, years.indexOf(now[0])), now[1] - 1, now[2] - 1].slice(0, columns.length);
    return { mode: mode, columns: columns, selected: selected, result: function (s) {
      return s.map(function (idx, col) { return columns[col][idx]; }).join("-");
    } };
  }
  const items = Array.isArray(n.attrs.range) ? n.attrs.range.slice(0, 1000) : [];
  const labels = items.map(function (i) { return labelOf(i, key); });
  const index = Math.min(Math.max(0, Math.floor(num(value, 0))), Math.max(0, labels.length - 1));
  return { mode: "selector", columns: [labels], selected: [index], result: function (s) { return s[0]; } };
}

function pickerValue(n) {
  const model = pickerModel(n);
  return model.result(model.selected);
}

function openPicker(n) {
  if (flag(n.attrs.disabled) || sheet) return;
  const model = pickerModel(n);
  const shade = el("div", "wx-picker-shade");
  const panel = shade.appendChild(el("div", "wx-picker-panel"));
  const bar = panel.appendChild(el("div", "wx-picker-bar"));
  const cancel = bar.appendChild(el("button", "wx-picker-cancel"));
  cancel.type = "button";
  cancel.textContent = "Cancel";
  const ok = bar.appendChild(el("button", "wx-picker-confirm"));
  ok.type = "button";
  ok.textContent = "OK";
  const cols = panel.appendChild(el("div", "wx-picker-columns"));
  const selected = model.selected.slice();
  model.columns.forEach(function (labels, col) {
    const column = cols.appendChild(el("div", "wx-picker-column"));
    labels.forEach(function (label, row) {
      const item = column.appendChild(el("div", "wx-picker-item"));
      item.textContent = label;
      if (row === selected[col]) item.classList.add("wx-picker-selected");
      item.addEventListener("click", function () {
        selected[col] = row;
        Array.from(column.children).forEach(function (c, i) { c.classList.toggle("wx-picker-selected", i === row); });
        if (model.mode === "multiSelector") fire(n, "columnchange", { column: col, value: row });
      });
    });
    setTimeout(function () {
      const chosen = column.children[selected[col]];
      if (chosen) column.scrollTop = chosen.offsetTop - column.clientHeight / 2;
    }, 0);
  });
  function close() {
    shade.remove();
    sheet = null;
  }
  shade.addEventListener("click", function (e) {
    if (e.target !== shade) return;
    close();
    fire(n, "cancel", {});
  });
  cancel.addEventListener("click", function () {
    close();
    fire(n, "cancel", {});
  });
  ok.addEventListener("click", function () {
    close();
    const current = meta.get(n.dom) || n;
    current.state.value = model.mode === "selector" ? selected[0] : model.result(selected);
    fire(current, "change", { value: model.result(selected) });
  });
  sheet = shade;
  doc.body.appendChild(shade);
}
