// The fleet dashboard: one snapshot on connect, then only what changed (server-sent events).
"use strict";
const S = { boards: {}, rollouts: {}, actions: [] };
const COLS = ["pending", "sending", "installed", "healthy", "failed", "refused", "crashed",
              "lost", "skipped", "rolledback", "rollback-failed"];
const SHOWN = { sending: "installing", installed: "installed, soaking", rolledback: "rolled back" };
const $ = (id) => document.getElementById(id);
const esc = (v) => String(v ?? "").replace(/[&<>"']/g,
  (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
let firstRender = null;
// Rewrite a part only when its content changed: buttons under the pointer stay put.
function put(el, html) { if (el.dataset.html !== html) { el.innerHTML = html; el.dataset.html = html; } }

function connect() {
  const es = new EventSource("/events");
  es.addEventListener("snap", (e) => { Object.assign(S, JSON.parse(e.data)); render(); });
  es.addEventListener("delta", (e) => {
    const d = JSON.parse(e.data);
    Object.entries(d.boards || {}).forEach(([id, b]) => {  // a board's changed fields only
      S.boards[id] = Object.assign(S.boards[id] || {}, b); });
    Object.assign(S.rollouts, d.rollouts || {});
    if (d.actions) S.actions = d.actions;
    render();
  });
  es.onopen = () => { $("live").textContent = "live"; $("live").className = "on"; };
  es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "off"; };
}

function render() {
  const t0 = performance.now();
  const boards = Object.values(S.boards).sort((a, b) => a.id.localeCompare(b.id));
  renderCounts(boards);
  renderRollouts();
  renderMatrix(boards);
  renderBoards(boards);
  renderLog();
  if (firstRender === null) {
    firstRender = performance.now();
    document.body.dataset.firstRender = firstRender.toFixed(1);
  }
  document.body.dataset.boards = boards.length;
  document.body.dataset.renderMs = (performance.now() - t0).toFixed(1);
  const shown = location.hash.match(/^#board\/(.+)$/);  // a board's page follows its board
  const seen = shown && JSON.stringify(S.boards[decodeURIComponent(shown[1])]);
  if (shown && seen !== lastShown) {
    lastShown = seen;
    showBoard(decodeURIComponent(shown[1]));
  }
}
let lastShown = null;

function renderCounts(boards) {
  const n = {};
  boards.forEach((b) => { n[b.presence] = (n[b.presence] || 0) + 1; });
  put($("counts"), `<span class="count"><b id="n-boards">${boards.length}</b> boards</span>` +
    ["online", "lost", "offline", "unknown"].filter((p) => n[p] || p === "online" || p === "lost")
      .map((p) => `<span class="count ${p}"><b id="n-${p}">${n[p] || 0}</b> ${p}</span>`).join(""));
}

function stepName(r, k) {
  return k === "0" ? `canary (${r.canary})` : k === "-" ? "not chosen" : `${r.steps[k - 1]} %`;
}

function renderRollouts() {
  const rs = Object.values(S.rollouts).sort((a, b) => b.id - a.id);
  if (!rs.length) return;
  put($("rollouts"), rs.map((r) => {
    const steps = Object.keys(r.per_step).sort();
    const total = {};
    steps.forEach((k) => Object.entries(r.per_step[k]).forEach(([s, c]) => {
      total[s] = (total[s] || 0) + c; }));
    const live = r.state === "running" || r.state === "soaking";
    return `<div class="rollout ${esc(r.state)}" id="rollout-${r.id}" data-state="${esc(r.state)}">
      <div>rollout ${r.id}: <b>${esc(r.package)}</b> (update ${r.seq}, ${esc(r.modules.join(", "))})
        <span class="state">${esc(r.state)}</span> at step ${r.step}
        ${r.busy ? `<i>(${esc(r.busy)} in progress)</i>` : ""}</div>
      <div>halt rule: <code>${esc(r.rule)}</code>; soak ${r.soak} s; steps: canary ${r.canary},
        ${r.steps.map((s) => s + " %").join(", ")}</div>
      ${r.reason ? `<div class="bad reason">why: ${esc(r.reason)}</div>` : ""}
      <table><thead><tr><th>step</th>${COLS.map((c) => `<th>${SHOWN[c] || c}</th>`).join("")}</tr></thead>
      <tbody>${steps.map((k) => `<tr class="${String(r.step) === k ? "current" : ""}">
        <td>${esc(stepName(r, k))}</td>${COLS.map((c) =>
          `<td>${(c === "pending" ? (r.per_step[k].pending || 0) + (k === "-" ? r.per_step[k].idle || 0 : 0)
                 : r.per_step[k][c]) || ""}</td>`).join("")}</tr>`).join("")}
      <tr><th>total</th>${COLS.map((c) => `<th class="total-${c}">${(c === "pending" ?
        (total.pending || 0) + (total.idle || 0) : total[c]) || 0}</th>`).join("")}</tr></tbody></table>
      <div><button data-act="halt" data-id="${r.id}" ${live ? "" : "disabled"}>halt</button>
        <button data-act="resume" data-id="${r.id}" ${r.state === "halted" && !r.busy ? "" : "disabled"}>resume</button>
        <button data-act="rollback" data-id="${r.id}" ${!live && r.state !== "rolled-back" && !r.busy ? "" : "disabled"}>roll back</button></div>
    </div>`;
  }).join(""));
}

function renderMatrix(boards) {
  const mods = [...new Set(boards.flatMap((b) => Object.keys(b.versions)))].sort();
  const cell = (m, v) => boards.filter((b) => (m ? b.versions[m] : String(b.seq)) === v).length;
  const rows = [["update", null]].concat(mods.map((m) => [m, m]));
  put($("matrix"), `<table><thead><tr><th>module</th><th>version: boards</th></tr></thead><tbody>` +
    rows.map(([name, m]) => {
      const vs = [...new Set(boards.map((b) => (m ? b.versions[m] : String(b.seq))))]
        .filter((v) => v !== undefined).sort();
      return `<tr><td>${esc(name)}</td><td>${vs.map((v) =>
        `<span class="cell" data-module="${esc(name)}" data-version="${esc(v)}">${esc(v)}: <b>${cell(m, v)}</b></span>`)
        .join(" · ")}</td></tr>`;
    }).join("") + "</tbody></table>");
}

function ago(t) { return t ? `${Math.max(0, Math.round(Date.now() / 1000 - t))} s ago` : "never"; }

function renderBoards(boards) {
  const text = $("f-text").value.trim().toLowerCase();
  const pres = $("f-presence").value, sick = $("f-sick").checked;
  const shown = boards.filter((b) => (!pres || b.presence === pres) &&
    (!sick || b.health !== "healthy") &&
    (!text || b.id.toLowerCase().includes(text) ||
     Object.values(b.versions).some((v) => v.toLowerCase().includes(text))));
  put($("boards").tBodies[0], shown.map((b) => `<tr data-board="${esc(b.id)}">
    <td><a href="#board/${esc(b.id)}">${esc(b.id)}</a></td>
    <td class="presence ${esc(b.presence)}">${esc(b.presence)}</td><td class="seq">${esc(b.seq)}</td>
    <td class="versions">${Object.entries(b.versions).map(([m, v]) => `${esc(m)}=${esc(v)}`).join(", ") || "as deployed"}</td>
    <td>${esc(b.restarts)}</td><td>${esc(b.crashes)}</td><td>${esc(b.free)}</td>
    <td>${ago(b.last)}</td><td class="${b.health === "healthy" ? "" : "bad"}">${esc(b.health)}</td></tr>`).join(""));
}

function renderLog() {
  put($("log").tBodies[0], S.actions.map((a) => `<tr><td>${new Date(a.at * 1000)
    .toISOString().slice(0, 19).replace("T", " ")}</td><td>${esc(a.who)}</td><td>${esc(a.action)}</td>
    <td>${a.rollout ?? ""}</td><td>${esc(a.said)}</td></tr>`).join(""));
}

async function act(what, id) {
  const who = $("who").value.trim();
  if (!who) { $("said").textContent = "type your name first: every action is logged with it"; return; }
  localStorage.setItem("who", who);
  const r = await fetch(`/api/rollout/${id}/${what}`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify({ who }) });
  const body = await r.json().catch(() => ({}));
  $("said").textContent = r.ok ? `rollout ${id}: ${what} accepted (${body.state})` : `${what}: ${body.error || r.status}`;
}

function chart(beats) {
  const W = 600, H = 140, P = 24;
  const pts = beats.filter((b) => typeof b.free === "number");
  if (pts.length < 2) return "<p class=quiet>not enough heartbeats yet</p>";
  const t0 = pts[0].t, t1 = pts[pts.length - 1].t;
  const lo = Math.min(...pts.map((p) => p.free)), hi = Math.max(...pts.map((p) => p.free));
  const x = (t) => P + (W - 2 * P) * (t - t0) / Math.max(1e-9, t1 - t0);
  const y = (v) => H - P - (H - 2 * P) * (v - lo) / Math.max(1, hi - lo);
  const line = pts.map((p) => `${x(p.t).toFixed(1)},${y(p.free).toFixed(1)}`).join(" ");
  const marks = pts.slice(1).filter((p, i) => ["crashes", "restarts", "boot"].some((k) =>
    typeof p[k] === "number" && typeof pts[i][k] === "number" && p[k] > pts[i][k]))
    .map((p) => `<circle cx="${x(p.t).toFixed(1)}" cy="${y(p.free).toFixed(1)}" r="4" fill="#c00"/>`);
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">
    <polyline fill="none" stroke="#36c" stroke-width="1.5" points="${line}"/>${marks.join("")}
    <text x="${P}" y="14" font-size="11">${hi} bytes</text>
    <text x="${P}" y="${H - 6}" font-size="11">${lo} bytes · ${Math.round(t1 - t0)} s</text></svg>`;
}

async function showBoard(id) {
  const r = await fetch(`/api/board/${encodeURIComponent(id)}`);
  if (!r.ok) { $("b-title").textContent = `board ${id}: ${r.status}`; return; }
  const d = await r.json(), b = d.board;
  $("b-title").textContent = `board ${b.id} (${b.presence})`;
  $("b-facts").innerHTML = `update ${esc(b.seq)}; ${Object.entries(b.versions).map(([m, v]) =>
    `${esc(m)}=${esc(v)}`).join(", ") || "modules as deployed"}<br>boot ${esc(b.boot)}, reset ${esc(b.reset)}, up ${esc(b.up)} s,
    restarts ${esc(b.restarts)}, crashes ${esc(b.crashes)}, free ${esc(b.free)} bytes;
    last result: ${esc(d.result.said || "none")}`;
  $("b-chart").innerHTML = chart(d.beats);
  const reports = d.reports.map((r) =>
    `<li class=report>${new Date(r.t * 1000).toISOString().slice(11, 19)}: <b>${esc(r.server)}</b>
    ${esc(r.error)} (boot ${esc(r.boot)}, up ${esc(Math.round((r.uptime_ms || 0) / 1000))} s,
    restarts ${esc(r.restarts)}, handling ${esc(r.msg)})${r.off ? " — " + esc(r.off) : ""}
    <details><summary>traceback</summary><pre>${esc(r.tb)}</pre></details></li>`);
  const marks = d.crashes.map((c) =>
    `<li>${new Date(c.t * 1000).toISOString().slice(11, 19)}: ${esc(c.what)} (reset ${esc(c.reset)})</li>`);
  $("b-crashes").innerHTML = (reports.length ? "<ul>" + reports.join("") + "</ul>" :
    "<p class=quiet>no crash report from this board while this dashboard watched</p>") +
    (marks.length ? "<p>counters that went up in its heartbeats:</p><ul>" + marks.join("") + "</ul>" : "");
  $("b-updates").innerHTML = d.updates.length ? "<ul>" + d.updates.map((u) =>
    `<li>rollout ${u.rollout} (${esc(u.package)}, update ${u.seq}), step ${u.step ?? "-"}: ${esc(u.state)}
    ${u.detail ? "— " + esc(u.detail) : ""}</li>`).join("") + "</ul>" : "<p class=quiet>none</p>";
}

function route() {
  const m = location.hash.match(/^#board\/(.+)$/);
  $("fleet-view").hidden = !!m;
  $("board-view").hidden = !m;
  if (m) showBoard(decodeURIComponent(m[1]));
}

document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-act]");
  if (b) act(b.dataset.act, b.dataset.id);
});
["f-text", "f-presence", "f-sick"].forEach((id) => $(id).addEventListener("input", render));
$("who").value = localStorage.getItem("who") || "";
window.addEventListener("hashchange", route);
route();
connect();
