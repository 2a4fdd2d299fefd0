// Bedtime Nexus technician console: plain JavaScript, no build step, nothing fetched from elsewhere.
// The floor comes from /ws/floor (snapshot, then changed beds, stages and alarms); actions go to the REST API.
"use strict";

const STAGES = ["W", "N1", "N2", "N3", "R"];
const LABEL = { "-2": "—", "-1": "art.", 0: "W", 1: "N1", 2: "N2", 3: "N3", 4: "R" };
const COLOURS = { W: "#f4a261", N1: "#8ecae6", N2: "#219ebc", N3: "#023e8a", R: "#c77dff" };
const $ = (id) => document.getElementById(id);
// "1 epoch", "2 epochs": a count with its noun in the right number
const plural = (n, noun, nouns) => `${n} ${n === 1 ? noun : (nouns || noun + "s")}`;

const state = {
  token: sessionStorage.getItem("nexus-token"),
  beds: new Map(),       // session -> bed
  tiles: new Map(),      // session -> element
  alarms: new Map(),     // id -> alarm
  dirty: new Set(),
  ws: null,
  view: null,            // {name: "floor"} | {name: "session", id}
  hyp: null,             // the open session's hypnogram {stages, probsByEpoch}
  status: null,          // the last facility status from the feed
};

// -- REST ------------------------------------------------------------------------------------------
async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { logout(); throw new Error("Please log in again."); }
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error((data && data.detail) || res.statusText);
  return data;
}

// -- login -----------------------------------------------------------------------------------------
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  $("login-error").textContent = "";
  try {
    const res = await fetch("/api/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: f.get("username"), password: f.get("password") }) });
    const data = await res.json();
    if (!res.ok) throw new Error(data.detail || "Login failed.");
    state.token = data.token;
    sessionStorage.setItem("nexus-token", data.token);
    ev.target.reset();
    start();
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

function logout() {
  state.token = null;
  sessionStorage.removeItem("nexus-token");
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  show("login");
}
$("logout").addEventListener("click", logout);

function show(name) {
  $("login").hidden = name !== "login";
  $("floor-view").hidden = name !== "floor";
  $("session-view").hidden = name !== "session";
  $("logout").hidden = name === "login";
}

// -- the feed --------------------------------------------------------------------------------------
function connect() {
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/ws/floor?token=${encodeURIComponent(state.token)}`);
  state.ws = ws;
  ws.onmessage = (ev) => handle(JSON.parse(ev.data));
  ws.onclose = (ev) => {
    state.ws = null;
    if (ev.code === 4003) { logout(); return; }
    setTimeout(() => { if (state.token && !state.ws) connect(); }, 1000);  // dropped or restarted: reconnect
  };
}

function handle(msg) {
  if (msg.type === "snapshot") {
    state.beds.clear();
    for (const b of msg.beds) state.beds.set(b.session, b);
    state.alarms.clear();
    for (const a of msg.alarms) state.alarms.set(a.id, a);
    buildFloor();
    showStatus(msg.status);
    renderAlarms();
    if (state.view && state.view.name === "session") loadSession(state.view.id);
  } else if (msg.type === "beds") {
    for (const b of msg.beds) { state.beds.set(b.session, b); state.dirty.add(b.session); }
    schedule();
  } else if (msg.type === "alarm") {
    const old = state.alarms.get(msg.alarm.id) || {};
    state.alarms.set(msg.alarm.id, Object.assign(old, msg.alarm));
    renderAlarms();
    if (state.view && state.view.name === "session") renderSessionAlarms(state.view.id);
  } else if (msg.type === "stages") {  // the epochs a step closed, every bed's in one message
    const open = state.view && state.view.name === "session" && state.hyp ? state.view.id : null;
    const mine = open === null ? [] : msg.stages.filter((m) => m.session === open);
    for (const m of mine) {
      const h = state.hyp;
      while (h.stages.length <= m.epoch) h.stages.push(-2);
      h.stages[m.epoch] = m.stage;
      h.probs[m.epoch] = m.probs;
    }
    if (mine.length) drawHypnogram();
  } else if (msg.type === "status") {
    showStatus(msg.status);
  }
}

let frame = 0;
const renderMs = window.nexusRenderMs = [];  // the last render passes' script time, ms
function schedule() {  // one DOM pass per animation frame, only for the beds that changed
  if (frame) return;
  frame = requestAnimationFrame(() => {
    const t0 = performance.now();
    frame = 0;
    for (const s of state.dirty) renderTile(s);
    state.dirty.clear();
    showStatus();
    if (state.view && state.view.name === "session") renderSessionMeta(state.view.id);
    renderMs.push(performance.now() - t0);  // read by bench/console_floor.py
    if (renderMs.length > 2000) renderMs.shift();
  });
}

function showStatus(s) {
  if (!s) s = state.status;
  if (!s) return;
  state.status = s;
  const running = state.beds.size ? [...state.beds.values()].filter((b) => b.state === "running").length : s.running;
  const h = Math.floor(s.clock_s / 3600), m = Math.floor((s.clock_s % 3600) / 60);
  $("facility").textContent = `night ${h}h${String(m).padStart(2, "0")} of ${s.hours}h · ${running}/${s.clients} beds running · ${s.speed}× · lag ${s.lag_s.toFixed(2)} s`;
}

// -- the floor -------------------------------------------------------------------------------------
function buildFloor() {
  const floor = $("floor");
  floor.textContent = "";
  state.tiles.clear();
  for (const b of state.beds.values()) {
    const el = document.createElement("article");
    el.className = "tile";
    el.dataset.session = b.session;
    el.innerHTML = `<div class="top"><span class="bed"></span><span class="client"></span></div>
      <div class="stage"></div><div class="density"></div><div class="meta prog"></div><div class="meta cmds"></div>
      <div class="alarm"><span class="msg"></span><button type="button" class="ack">Ack</button></div>`;
    el.addEventListener("click", (ev) => {
      if (ev.target.classList.contains("ack")) { ev.stopPropagation(); ackBed(b.session); return; }
      location.hash = `#/session/${encodeURIComponent(b.session)}`;
    });
    floor.appendChild(el);
    state.tiles.set(b.session, el);
    renderTile(b.session);
  }
  $("bed-count").textContent = `(${plural(state.beds.size, "bed")})`;
}

function densityHTML(probs) {
  if (!probs) return "";
  return probs.map((p, i) => `<span class="s-${STAGES[i]}" style="width:${(100 * p).toFixed(1)}%" title="${STAGES[i]} ${(100 * p).toFixed(0)}%"></span>`).join("");
}

function renderTile(session) {
  const b = state.beds.get(session), el = state.tiles.get(session);
  if (!b || !el) return;
  el.dataset.alarm = b.alarm;
  el.dataset.state = b.state;
  el.dataset.stage = LABEL[b.stage];
  el.querySelector(".bed").textContent = b.bed;
  el.querySelector(".client").textContent = b.client_code;
  el.querySelector(".stage").textContent = LABEL[b.stage] ?? "?";
  el.querySelector(".density").innerHTML = densityHTML(b.probs);
  el.querySelector(".prog").textContent = b.natural ? "natural night" : b.program;
  el.dataset.extraction = b.extraction ? b.extraction.mode : "none";
  el.dataset.joining = b.joining ? "yes" : "no";  // recording while its lane is built; staged once it is
  const c = b.commands || {};
  el.querySelector(".cmds").textContent = extractionText(b) || (b.joining && b.state === "running" ?
    "recording · analysis starts when its lane is ready" : b.natural ? `sound: ${b.lease}` :
    `clicks ${c.click || 0} · cues ${c.cue || 0} · sound ${b.lease}`);
  const top = b.alarms.slice().sort((x, y) => rank(y.priority) - rank(x.priority))[0];
  el.querySelector(".alarm .msg").textContent = top ? `${top.priority}: ${top.kind}` : "";
}

const rank = (p) => ({ low: 1, medium: 2, high: 3 }[p] || 0);

async function ackBed(session) {
  const b = state.beds.get(session);
  for (const a of (b ? b.alarms : [])) await ack(a.id);
}

async function ack(id) {
  try { await api("POST", `/api/glitches/${id}/acknowledge`); } catch (e) { alert(e.message); }
}

function renderAlarms() {
  const list = $("alarm-list");
  const open = [...state.alarms.values()].filter((a) => !a.acknowledged)
    .sort((x, y) => rank(y.priority) - rank(x.priority) || y.id - x.id);
  $("alarm-count").textContent = `(${open.length} open)`;
  list.textContent = "";
  for (const a of open.slice(0, 200)) list.appendChild(alarmItem(a));
}

function alarmItem(a) {
  const li = document.createElement("li");
  li.dataset.priority = a.priority;
  li.dataset.alarmId = a.id;
  if (a.acknowledged) li.className = "acked";
  const bed = state.beds.get(a.session);
  li.innerHTML = `<div class="row"><strong></strong><button type="button">Acknowledge</button></div><div class="text"></div>`;
  li.querySelector("strong").textContent = `${a.priority.toUpperCase()} · ${bed ? bed.bed : a.session} · ${a.kind}`;
  li.querySelector(".text").textContent = a.message;
  const btn = li.querySelector("button");
  if (a.acknowledged) btn.remove(); else btn.addEventListener("click", () => ack(a.id));
  return li;
}

// asks for confirmation and the mode; resolves to the query string of the order ("" = end now), or null
async function confirmExtract(text) {
  $("confirm-text").textContent = text;
  const dlg = $("confirm");
  dlg.showModal();
  return new Promise((resolve) => {
    dlg.onclose = () => {
      if (dlg.returnValue !== "ok") { resolve(null); return; }
      const mode = $("confirm-mode").value;
      resolve(mode === "end" ? "" : `?mode=${encodeURIComponent(mode)}`);
    };
  });
}

$("extract-all").addEventListener("click", async () => {
  const q = await confirmExtract("Extract every bed? Stimulation stops at once everywhere.");
  if (q === null) return;
  try { await api("POST", "/api/facility/extract-all" + q); } catch (e) { alert(e.message); }
});

function extractionText(b) {
  const x = b.extraction;
  if (!x || b.state !== "running") return "";
  return x.mode === "release" ? "released to sleep · silent" : `${x.mode} wake · sound ${b.lease}`;
}

// -- one session -----------------------------------------------------------------------------------
async function loadSession(id) {
  state.hyp = null;
  $("s-title").textContent = id;
  renderSessionMeta(id);
  renderSessionAlarms(id);
  try {
    const [h, ev, dec] = await Promise.all([
      api("GET", `/api/sessions/${encodeURIComponent(id)}/hypnogram`),
      api("GET", `/api/sessions/${encodeURIComponent(id)}/events`),
      api("GET", `/api/sessions/${encodeURIComponent(id)}/decisions`),
    ]);
    state.hyp = { stages: h.stages, probs: h.stages.map((_, i) => (h.hypnodensity || [])[i] || null) };
    drawHypnogram();
    fillList("s-events", ev.slice(-100).reverse().map((e) => `${fmtT(e.t_s)} ${e.kind}${e.channel ? " · " + e.channel : ""}`));
    fillList("s-decisions", dec.slice(-100).reverse().map((d) => `${fmtT(d.t_s)} ${d.kind} — ${d.reason}`));
  } catch (e) {
    $("s-meta").textContent = e.message;
  }
}

function fillList(id, rows) {
  const ol = $(id);
  ol.textContent = "";
  for (const r of rows) { const li = document.createElement("li"); li.textContent = r; ol.appendChild(li); }
}

const fmtT = (s) => `${Math.floor(s / 3600)}:${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}:${String(Math.floor(s % 60)).padStart(2, "0")}`;

function renderSessionMeta(id) {
  const b = state.beds.get(id);
  if (!b) return;
  $("s-title").textContent = `${b.bed} · ${b.client_code}`;
  $("s-meta").textContent = `session ${b.session} · ${b.state}${b.end_reason ? " (" + b.end_reason + ")" : ""} · ` +
    `${b.natural ? "natural night" : `program “${b.program}”`} · stage ${LABEL[b.stage]} · ${plural(b.epochs, "epoch")} · ` +
    `sound ${b.lease}` +
    (extractionText(b) ? ` · ${extractionText(b)}` : "");
  $("session-view").dataset.state = b.state;
  $("session-view").dataset.extraction = b.extraction ? b.extraction.mode : "none";
  // a running bed can still be extracted (again: a firmer mode takes over; a softer one changes nothing)
  $("s-extract").disabled = b.state !== "running";
}

function renderSessionAlarms(id) {
  const ol = $("s-alarms");
  ol.textContent = "";
  for (const a of [...state.alarms.values()].filter((x) => x.session === id).sort((x, y) => y.id - x.id)) {
    ol.appendChild(alarmItem(a));
  }
}

$("s-extract").addEventListener("click", async () => {
  const id = state.view && state.view.id;
  const q = id ? await confirmExtract(`Extract ${id}? Stimulation stops at once.`) : null;
  if (q === null) return;
  try {
    const b = await api("POST", `/api/sessions/${encodeURIComponent(id)}/extract` + q);
    state.beds.set(b.session, b);
    state.dirty.add(b.session);
    schedule();
  } catch (e) { alert(e.message); }
});

function drawHypnogram() {
  const h = state.hyp;
  const cv = $("hypnogram"), ctx = cv.getContext("2d");
  const W = cv.width, H = cv.height, padL = 34;
  ctx.clearRect(0, 0, W, H);
  // rows top to bottom: W, R, N1, N2, N3 (the usual hypnogram order)
  const rows = { 0: 0, 4: 1, 1: 2, 2: 3, 3: 4 }, names = ["W", "R", "N1", "N2", "N3"];
  const rowY = (r) => 12 + r * (H - 24) / 4;
  ctx.fillStyle = "#8b95a3"; ctx.font = "11px system-ui";
  names.forEach((n, r) => { ctx.fillText(n, 4, rowY(r) + 4); ctx.fillStyle = "#2e3846"; ctx.fillRect(padL, rowY(r), W - padL, 1); ctx.fillStyle = "#8b95a3"; });
  const n = Math.max(h.stages.length, 60);
  const dx = (W - padL - 4) / n;
  cv.dataset.epochs = String(h.stages.filter((s) => s >= 0).length);
  ctx.strokeStyle = "#e6e9ee"; ctx.lineWidth = 2; ctx.beginPath();
  let drawing = false;
  h.stages.forEach((s, i) => {
    if (s < 0) { drawing = false; return; }
    const y = rowY(rows[s]), x0 = padL + i * dx;
    if (!drawing) { ctx.moveTo(x0, y); drawing = true; } else ctx.lineTo(x0, y);
    ctx.lineTo(x0 + dx, y);
  });
  ctx.stroke();
  const dv = $("hypnodensity"), d = dv.getContext("2d");
  d.clearRect(0, 0, dv.width, dv.height);
  h.probs.forEach((p, i) => {
    if (!p) return;
    let y = 0;
    p.forEach((v, k) => { d.fillStyle = COLOURS[STAGES[k]]; d.fillRect(padL + i * dx, y, Math.max(dx, 1), v * dv.height); y += v * dv.height; });
  });
}

// -- routing ---------------------------------------------------------------------------------------
function route() {
  if (!state.token) { show("login"); return; }
  const m = location.hash.match(/^#\/session\/(.+)$/);
  if (m) {
    state.view = { name: "session", id: decodeURIComponent(m[1]) };
    show("session");
    loadSession(state.view.id);
  } else {
    state.view = { name: "floor" };
    show("floor");
  }
}
window.addEventListener("hashchange", route);

async function start() {
  try {
    const me = await api("GET", "/api/auth/me");
    $("who").textContent = `${me.name} (${me.role})`;
  } catch (e) { show("login"); return; }
  if (!state.ws) connect();
  route();
}

if (state.token) start(); else show("login");
