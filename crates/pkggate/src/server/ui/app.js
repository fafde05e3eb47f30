// pkggate admin page. Everything shown comes from pkggate's JSON and is attacker-influenced
// (package names, versions, reasons, user agents): it is only ever set with textContent,
// never parsed as HTML.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function age(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    if (seconds < 120) return seconds + "s";
    if (seconds < 7200) return Math.floor(seconds / 60) + "m";
    if (seconds < 172800) return Math.floor(seconds / 3600) + "h";
    return Math.floor(seconds / 86400) + "d";
  }

  async function getJson(url) {
    const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    let body = null;
    try {
      body = await r.json();
    } catch (_) {
      body = null;
    }
    return { status: r.status, body: body };
  }

  // --- readiness: intelligence, policy, audit -------------------------------------------
  async function loadReady() {
    const { status, body } = await getJson("/-/pkggate/ready");
    const pill = $("ready-status");
    if (!body) {
      pill.textContent = "unreachable (" + status + ")";
      pill.className = "pill bad";
      return;
    }
    pill.textContent = body.status;
    pill.className = "pill " + (body.status === "ready" ? "ok" : "bad");
    const p = body.policy || {};
    $("policy-revision").textContent = p.revision || "–";
    $("policy-file").textContent = (p.file || "–") + (p.defaults ? " (not found: defaults)" : "");
    $("policy-error").textContent = p.last_reload_error || "none";
    $("policy-error").className = p.last_reload_error ? "error" : "";
    const a = body.audit || {};
    $("audit-target").textContent = a.target || "–";
    $("audit-healthy").textContent = a.healthy ? "yes" : "no";
    $("audit-error").textContent = a.last_error || "none";
    const tbody = $("intel").tBodies[0];
    clear(tbody);
    const intel = body.intel || {};
    Object.keys(intel).forEach((eco) => {
      const s = intel[eco] || {};
      const tr = el("tr");
      tr.dataset.ecosystem = eco;
      tr.appendChild(el("td", eco));
      tr.appendChild(el("td", s.enabled ? "yes" : "no"));
      tr.appendChild(el("td", s.loaded ? "yes" : "no"));
      tr.appendChild(el("td", s.records));
      tr.appendChild(el("td", age(s.age_seconds)));
      tr.appendChild(el("td", s.last_error || "", s.last_error ? "error" : ""));
      tbody.appendChild(tr);
    });
  }

  // --- blocked per hour ------------------------------------------------------------------
  async function loadStats() {
    const { status, body } = await getJson("/-/pkggate/api/stats?hours=24");
    const chart = $("chart");
    clear(chart);
    if (status !== 200 || !body) {
      chart.appendChild(el("p", (body && body.error) || "stats unavailable (" + status + ")", "error"));
      return;
    }
    $("chart-hours").textContent = body.hours;
    $("blocked-total").textContent = body.total ? body.total.blocked : 0;
    const series = body.series || [];
    const max = Math.max(1, ...series.map((s) => s.blocked));
    const w = 24, gap = 4, h = 130, top = 10;
    const svg = document.createElementNS(SVG, "svg");
    svg.setAttribute("viewBox", "0 0 " + series.length * (w + gap) + " " + (h + top + 20));
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "blocked decisions per hour");
    series.forEach((s, i) => {
      const bh = s.blocked > 0 ? Math.max(2, Math.round((s.blocked / max) * h)) : 1;
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", String(i * (w + gap)));
      r.setAttribute("y", String(top + h - bh));
      r.setAttribute("width", String(w));
      r.setAttribute("height", String(bh));
      r.setAttribute("class", s.blocked > 0 ? "bar" : "bar-empty");
      r.dataset.blocked = String(s.blocked);
      const t = document.createElementNS(SVG, "title");
      t.textContent = s.hour + ": " + s.blocked + " blocked, " + s.warned + " warned, " + s.allowed + " allowed";
      r.appendChild(t);
      svg.appendChild(r);
      if (i % 3 === 0) {
        const label = document.createElementNS(SVG, "text");
        label.setAttribute("x", String(i * (w + gap)));
        label.setAttribute("y", String(top + h + 14));
        label.textContent = String(s.hour).slice(11, 16);
        svg.appendChild(label);
      }
    });
    chart.appendChild(svg);
  }

  // --- decisions -------------------------------------------------------------------------
  let generation = 0;

  function localToIso(v) {
    if (!v) return "";
    const d = new Date(v);
    return isNaN(d.getTime()) ? "" : d.toISOString();
  }

  async function loadDecisions() {
    const q = new URLSearchParams();
    const add = (k, v) => { if (v) q.set(k, v); };
    add("ecosystem", $("f-ecosystem").value);
    add("package", $("f-package").value.trim());
    add("action", $("f-action").value);
    add("rule", $("f-rule").value.trim());
    add("since", localToIso($("f-since").value));
    add("until", localToIso($("f-until").value));
    add("limit", $("f-limit").value);
    const meta = $("decisions-meta");
    const err = $("decisions-error");
    meta.dataset.state = "loading";
    const { status, body } = await getJson("/-/pkggate/api/decisions?" + q.toString());
    const tbody = $("decisions").tBodies[0];
    clear(tbody);
    generation += 1;
    if (status !== 200 || !body) {
      err.hidden = false;
      err.textContent = (body && body.error) || "cannot load decisions (" + status + ")";
      meta.textContent = "";
    } else {
      err.hidden = true;
      (body.decisions || []).forEach((d) => {
        const tr = el("tr");
        tr.className = "decision";
        tr.appendChild(el("td", d.ts));
        tr.appendChild(el("td", d.action, "action-" + String(d.action).replace(/[^a-z]/g, "")));
        tr.appendChild(el("td", d.ecosystem));
        tr.appendChild(el("td", d.package, "package"));
        tr.appendChild(el("td", d.version));
        tr.appendChild(el("td", d.rule, "rule"));
        tr.appendChild(el("td", d.reason));
        tr.appendChild(el("td", d.request_kind));
        tr.appendChild(el("td", d.client_ip));
        tbody.appendChild(tr);
      });
      const scan = body.scan || {};
      meta.textContent = (body.decisions || []).length + " shown (newest first; " +
        (scan.source === "memory" ? "recent events in memory" : "read " + scan.bytes_read + " bytes of the log") +
        (scan.complete === false ? "; scan stopped early, narrow the time range" : "") + ")";
    }
    meta.dataset.state = "done";
    meta.dataset.generation = String(generation);
  }

  // --- why -------------------------------------------------------------------------------
  async function explain(ev) {
    ev.preventDefault();
    const eco = $("why-ecosystem").value;
    const name = $("why-name").value.trim();
    const version = $("why-version").value.trim();
    const out = $("why-result");
    const err = $("why-error");
    out.hidden = true;
    err.hidden = true;
    if (!name || !version) return;
    const path = name.split("/").map(encodeURIComponent).join("/");
    const url = "/-/pkggate/why/" + encodeURIComponent(eco) + "/" + path + "/" + encodeURIComponent(version);
    const { status, body } = await getJson(url);
    if (status !== 200 || !body) {
      err.hidden = false;
      err.textContent = (body && body.error) || "explanation failed (" + status + ")";
      return;
    }
    $("why-action").textContent = body.action;
    $("why-action").className = "action-" + String(body.action).replace(/[^a-z]/g, "");
    $("why-rule").textContent = body.rule;
    $("why-reason").textContent = body.reason;
    $("why-source").textContent = body.source || "–";
    $("why-revision").textContent = body.policy_revision || "–";
    const trace = $("why-trace");
    clear(trace);
    (body.trace || []).forEach((step) => {
      const li = el("li");
      li.appendChild(el("code", step.rule));
      li.appendChild(document.createTextNode(" → " + (typeof step.outcome === "string" ? step.outcome : JSON.stringify(step.outcome)) + ": "));
      li.appendChild(el("span", step.detail));
      trace.appendChild(li);
    });
    out.hidden = false;
    out.dataset.generation = String(Number(out.dataset.generation || "0") + 1);
  }

  function refresh() {
    loadReady().catch(() => {});
    loadStats().catch(() => {});
    loadDecisions().catch(() => {});
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("filters").addEventListener("submit", (ev) => {
      ev.preventDefault();
      loadDecisions().catch(() => {});
    });
    $("why-form").addEventListener("submit", (ev) => {
      explain(ev).catch(() => {});
    });
    $("refresh").addEventListener("click", refresh);
    $("sign-out").addEventListener("click", () => {
      fetch("/-/pkggate/logout", { method: "POST", credentials: "same-origin" })
        .finally(() => window.location.reload());
    });
    refresh();
  });
})();
