// The registry console: review queue, releases with live health, audit log.
// The admin token lives in this closure only (never in storage); every server string is set as text.
"use strict";

(function () {
  const POLL_MS = 2000;
  let token = "";
  let timer = null;
  let busy = false;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (value !== false && value !== undefined && value !== null) node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) if (child) node.append(child);
    return node;
  }

  function status(text, isError) {
    const node = $("status");
    node.textContent = text;
    node.className = isError ? "error" : "";
  }

  async function api(method, path, body) {
    const options = { method, headers: { Authorization: "Bearer " + token } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    const response = await fetch(path, options);
    let doc = null;
    try {
      doc = await response.json();
    } catch (err) {
      throw new Error("the registry answered " + response.status + " without JSON");
    }
    if (!response.ok) {
      const error = (doc && doc.error) || {};
      throw new Error(error.message || "request failed with " + response.status);
    }
    return doc;
  }

  async function act(label, method, path, body) {
    if (busy) {
      status("another action is still running; try again in a moment", true);
      return;
    }
    busy = true;
    try {
      await api(method, path, body);
      status(label + ": done");
    } catch (err) {
      status(label + ": " + err.message, true);
      return;
    } finally {
      busy = false;
    }
    try {
      await refresh();
    } catch (err) {
      status("refresh failed: " + err.message, true);
    }
  }

  function pct(rate) {
    return (rate * 100).toFixed(1) + " %";
  }

  function figures(label, f) {
    if (!f) return null;
    return el("div", { class: "figures" },
      el("span", { text: label + ": " + f.launches + " launches, " + f.crashes + " crashes, " + f.errors + " errors, " }),
      el("span", { class: f.failure_rate > 0.02 ? "bad" : "good", text: pct(f.failure_rate) }),
      el("span", { text: " on " + f.vehicles + " vehicle(s)" }));
  }

  function renderQueue(submissions) {
    const box = $("queue");
    box.replaceChildren();
    if (!submissions.length) {
      box.append(el("p", { class: "empty", text: "No submission waits for review." }));
      return;
    }
    for (const s of submissions) {
      const checks = el("ul", { class: "checks" });
      for (const c of s.checks) {
        checks.append(el("li", { class: c.ok ? "ok" : "fail", text: c.name + ": " + c.message }));
      }
      const reason = el("input", { class: "reason", placeholder: "reason for rejecting (the partner sees it)",
        "data-testid": "reason-" + s.id });
      const approve = el("button", { class: "primary", "data-testid": "approve-" + s.id, disabled: !s.checks_passed,
        title: s.checks_passed ? "publish this version" : "automated checks failed",
        onclick: () => act("approve #" + s.id, "POST", "/api/submissions/" + s.id + "/approve", {}) }, "Approve");
      const reject = el("button", { class: "danger", "data-testid": "reject-" + s.id,
        onclick: () => act("reject #" + s.id, "POST", "/api/submissions/" + s.id + "/reject", { reason: reason.value }) },
        "Reject");
      box.append(el("div", { class: "card", "data-testid": "submission-" + s.id },
        el("h3", { text: "#" + s.id + " " + s.app_id + " " + s.version + " from " + s.partner }),
        el("div", { class: "figures", text: s.size + " bytes, sha256 " + s.sha256.slice(0, 16) + "…" }),
        checks, el("div", { class: "row" }, approve, reason, reject)));
    }
  }

  function renderApp(app) {
    const base = "/api/apps/" + encodeURIComponent(app.app_id) + "/";
    const release = app.release;
    const health = app.health || {};
    const card = el("div", { class: "card", "data-testid": "app-" + app.app_id });
    card.append(el("h3", { text: app.app_id + " (" + app.partner + ")" }));
    if (release) {
      card.append(el("div", { "data-testid": "stable-" + app.app_id,
        text: "Stable: " + release.stable.version + (release.stable.urgent ? " (urgent)" : "") }));
      card.append(figures("stable health", health.stable));
      if (release.rollout) {
        card.append(el("div", { "data-testid": "rollout-" + app.app_id,
          text: "Rollout: " + release.rollout.version + " at " + release.rollout.percent + " %" }));
        if (health.rollout) {
          card.append(figures("this step", health.rollout.step));
          card.append(figures("rollout total", health.rollout.total));
          card.append(el("div", { class: "figures", text: "automatic decision now: " + health.rollout.decision }));
        }
      } else {
        card.append(el("div", { "data-testid": "rollout-" + app.app_id, text: "Rollout: none" }));
      }
      if (release.experiment) {
        const e = release.experiment;
        card.append(el("div", { text: "Experiment " + e.name + ": A " + e.variants.A.version + " (" + e.split +
          " %), B " + e.variants.B.version }));
        for (const name of ["A", "B"]) {
          if (health.experiment) card.append(figures("variant " + name, health.experiment[name]));
        }
      }
      if (health.fleet) {
        const f = health.fleet;
        card.append(el("div", { class: "figures", text: "fleet: " + f.known_vehicles + " reporting vehicle(s)" +
          (f.in_rollout !== undefined ? ", " + f.in_rollout + " in the rollout cohort" : "") }));
      }
      card.append(el("div", { class: "row" },
        el("button", { class: "primary", "data-testid": "widen-" + app.app_id, disabled: !release.rollout,
          onclick: () => act("widen " + app.app_id, "POST", base + "widen", {}) }, "Widen"),
        el("button", { "data-testid": "stop-" + app.app_id, disabled: !release.rollout,
          onclick: () => act("stop rollout " + app.app_id, "POST", base + "rollout", { stop: true }) }, "Stop rollout"),
        el("button", { class: "danger", "data-testid": "rollback-" + app.app_id,
          onclick: () => act("roll back " + app.app_id, "POST", base + "rollback", {}) }, "Roll back stable")));
    } else {
      card.append(el("div", { "data-testid": "stable-" + app.app_id, text: "Not released yet" }));
    }
    const versions = el("table", {}, el("thead", {}, el("tr", {},
      el("th", { text: "Version" }), el("th", { text: "Status" }), el("th", { text: "Released" }), el("th", { text: "" }))));
    const body = el("tbody");
    for (const v of app.versions) {
      const actions = el("td");
      const current = release && (release.stable.version === v.version ||
        (release.rollout && release.rollout.version === v.version));
      if (v.status === "approved" && !current) {
        if (release) {
          actions.append(el("button", { "data-testid": "rollout-" + app.app_id + "-" + v.version,
            onclick: () => act("roll out " + v.version, "POST", base + "rollout", { version: v.version }) }, "Roll out 5 %"));
        }
        actions.append(el("button", { "data-testid": "release-" + app.app_id + "-" + v.version,
          onclick: () => act("release " + v.version, "POST", base + "release", { version: v.version }) }, "Release to all"));
      }
      body.append(el("tr", {}, el("td", { text: v.version }), el("td", { text: v.status }),
        el("td", { text: v.released ? new Date(v.released * 1000).toLocaleString() : "" }), actions));
    }
    versions.append(body);
    card.append(versions);
    return card;
  }

  function renderAudit(entries) {
    const body = $("audit").querySelector("tbody");
    body.replaceChildren();
    for (const e of entries) {
      body.append(el("tr", {}, el("td", { text: new Date(e.at * 1000).toLocaleString() }), el("td", { text: e.actor }),
        el("td", { text: e.action }), el("td", { text: e.app_id }), el("td", { text: JSON.stringify(e.detail) })));
    }
  }

  async function refresh() {
    const [queue, apps, audit] = await Promise.all([
      api("GET", "/api/submissions?status=pending"),
      api("GET", "/api/apps"),
      api("GET", "/api/audit?limit=30"),
    ]);
    renderQueue(queue.submissions);
    const box = $("apps");
    box.replaceChildren();
    if (!apps.apps.length) box.append(el("p", { class: "empty", text: "No app has been submitted yet." }));
    for (const app of apps.apps) box.append(renderApp(app));
    renderAudit(audit.audit);
  }

  async function poll() {
    if (!busy) {
      try {
        await refresh();
      } catch (err) {
        status("refresh failed: " + err.message, true);
      }
    }
    timer = setTimeout(poll, POLL_MS);
  }

  $("login").addEventListener("submit", async (event) => {
    event.preventDefault();
    token = $("token").value.trim();
    $("token").value = "";
    clearTimeout(timer);
    try {
      await refresh();
      $("main").hidden = false;
      status("Connected; figures refresh every " + POLL_MS / 1000 + " s.");
      timer = setTimeout(poll, POLL_MS);
    } catch (err) {
      $("main").hidden = true;
      status("Cannot connect: " + err.message, true);
    }
  });
})();
