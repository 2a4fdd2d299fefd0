// Bedtime Nexus client portal: a client's own nights and reports, dream journal, consent, export and erasure.
// Plain JavaScript on the same REST API as the console, nothing fetched from elsewhere.
"use strict";

const $ = (id) => document.getElementById(id);
const SCOPES = {
  recording: "Record my nights (signals, stages, events)",
  audio: "Play sounds at my bed",
  stimulation: "Closed-loop stimulation (clicks, cues) in deep sleep",
  dream_incubation: "Dream incubation prompts",
  psyche_monitoring: "Watch for distress at night (staff see the detail)",
  research: "Use my pseudonymised nights for research",
  clinician_sharing: "Share my nights and journal with my clinician",
  opt_out_natural_nights: "Skip the planned natural (no-sound) nights",
};
const state = { token: sessionStorage.getItem("nexus-client-token"), me: null };

const detail = (data, fallback) => {
  const d = data && data.detail;
  return typeof d === "string" ? d : (Array.isArray(d) ? d.map((x) => x.msg).join("; ") : fallback);
};

// a reply that arrives after a logout (or another login) is dropped: it would put the last client's code and data
// back on a screen they left
class LoggedOut extends Error {}

async function api(method, path, body, raw) {
  const token = state.token;
  const headers = { "Authorization": "Bearer " + token };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (state.token !== token) throw new LoggedOut("Logged out.");
  if (res.status === 401) { logout(); throw new Error("Your login has expired: log in again."); }
  if (raw && res.ok) return res;
  const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
  if (!res.ok) throw new Error(detail(data, res.statusText));
  return data;
}

function show(name) {
  $("login").hidden = name !== "login";
  $("portal").hidden = name !== "portal";
  $("logout").hidden = name === "login";
}

function logout() {
  state.token = null;
  state.me = null;
  $("me").textContent = "";  // no client code left on the screen
  sessionStorage.removeItem("nexus-client-token");
  show("login");
}
$("logout").addEventListener("click", logout);

// a client logs in with their code and password, or sets the password once with an invitation code
async function login(path, body, form, errorBox) {
  $(errorBox).textContent = "";
  try {
    const res = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                    body: JSON.stringify(body) });
    const data = res.headers.get("content-type")?.includes("json") ? await res.json() : null;
    if (!res.ok) throw new Error(detail(data, res.statusText));
    state.token = data.token;
    await start();
    sessionStorage.setItem("nexus-client-token", state.token);
    form.reset();
    $("enrol").open = false;
  } catch (e) {
    if (e instanceof LoggedOut) return;  // logged out while the portal was loading: the login page is shown
    state.token = null;
    $(errorBox).textContent = e.message;
    show("login");
  }
}

$("login-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  login("/api/auth/client/login", { code: f.get("code").trim(), password: f.get("password") },
        ev.target, "login-error");
});

$("enrol-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  if (f.get("password") !== f.get("again")) {
    $("enrol-error").textContent = "The two passwords differ: type the same one twice.";
    return;
  }
  login("/api/auth/client/enrol",
        { code: f.get("code").trim(), invitation: f.get("invitation").trim(), password: f.get("password") },
        ev.target, "enrol-error");
});

async function start() {
  const me = await api("GET", "/api/auth/me");
  if (me.role !== "client") throw new Error("This is the clients' portal: staff use the console at /.");
  state.me = me;
  show("portal");
  await Promise.all([loadNights(), loadJournal(), loadConsent()]);
}

// -- nights and reports ----------------------------------------------------------------------------
const when = (iso) => (iso ? new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "—");

async function loadNights() {
  const rows = await api("GET", "/api/sessions");
  const tb = $("nights").querySelector("tbody");
  tb.textContent = "";
  $("nights-empty").hidden = rows.length > 0;
  for (const n of rows) {
    const tr = document.createElement("tr");
    tr.dataset.session = n.id;
    tr.dataset.state = n.state;
    for (const v of [when(n.started_at), n.bed || "—", n.mode === "record_only" ? "natural night" : "dreamscape",
                     n.state]) {
      const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
    }
    const td = document.createElement("td");
    const b = document.createElement("button");
    b.type = "button"; b.className = "open-report"; b.textContent = "Report";
    // a running night's report is the night so far (GET .../report draws it from the live bed)
    b.disabled = !["running", "extracting", "ended", "aborted"].includes(n.state);
    b.title = b.disabled ? "Ready once the night has begun."
      : ["running", "extracting"].includes(n.state) ? "The night so far: it is still running." : "";
    b.addEventListener("click", () => openReport(n));
    td.appendChild(b); tr.appendChild(td);
    tb.appendChild(tr);
  }
}

async function openReport(n) {
  $("report-title").textContent = `Night report · ${when(n.started_at)}`;
  try {
    const res = await api("GET", `/api/sessions/${encodeURIComponent(n.id)}/report`, undefined, true);
    $("report").srcdoc = await res.text();
    $("report-view").hidden = false;
    $("report-view").dataset.session = n.id;
    $("report-view").scrollIntoView();
  } catch (e) { alert(e.message); }
}
$("report-close").addEventListener("click", () => { $("report-view").hidden = true; $("report").srcdoc = ""; });

// -- dream journal ---------------------------------------------------------------------------------
async function loadJournal() {
  const entries = await api("GET", `/api/clients/${encodeURIComponent(state.me.client_id)}/journal`);
  const ol = $("journal");
  ol.textContent = "";
  for (const e of entries.slice().reverse()) {
    const li = document.createElement("li");
    li.textContent = `${when(e.written_at)}${e.mood ? " · " + e.mood : ""} — ${e.text}`;
    ol.appendChild(li);
  }
}

$("journal-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  try {
    await api("POST", `/api/clients/${encodeURIComponent(state.me.client_id)}/journal`,
      { text: f.get("text"), mood: f.get("mood") || null });
    ev.target.reset();
    $("journal-msg").textContent = "Saved.";
    await loadJournal();
  } catch (e) { $("journal-msg").textContent = e.message; }
});

// -- consent ---------------------------------------------------------------------------------------
let granted = [];
async function loadConsent() {
  const v = await api("GET", `/api/clients/${encodeURIComponent(state.me.client_id)}/consent`);
  granted = v.consent;
  $("me").textContent = `${v.code}`;
  const box = $("scopes");
  box.textContent = "";
  for (const [scope, text] of Object.entries(SCOPES)) {
    const l = document.createElement("label");
    l.innerHTML = `<input type="checkbox"> <span></span> <small></small>`;
    const cb = l.querySelector("input");
    cb.name = scope; cb.checked = granted.includes(scope);
    l.querySelector("span").textContent = text;
    l.querySelector("small").textContent = scope;
    box.appendChild(l);
  }
  const d = v.dependency || {};
  const tonight = v.natural_night_tonight;
  $("dependency").textContent = tonight
    ? `Tonight: ${tonight.due ? "a natural night (no sound)" : "your program"} (${tonight.reason}).`
      + (d.level && d.level !== "unknown" ? ` Your reliance on the programs: ${d.level}.` : "")
    : "";
}

$("consent-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const boxes = [...$("scopes").querySelectorAll("input")];
  const grant = boxes.filter((b) => b.checked && !granted.includes(b.name)).map((b) => b.name);
  const revoke = boxes.filter((b) => !b.checked && granted.includes(b.name)).map((b) => b.name);
  try {
    const r = await api("POST", `/api/clients/${encodeURIComponent(state.me.client_id)}/consent`, { grant, revoke });
    $("consent-msg").textContent = (grant.length || revoke.length ? "Saved." : "Nothing changed.") +
      (r.notes && r.notes.length ? " " + r.notes.join(" ") : "");
    await loadConsent();
  } catch (e) { $("consent-msg").textContent = e.message; await loadConsent(); }
});

// -- export and erasure ----------------------------------------------------------------------------
$("export").addEventListener("click", async () => {
  $("export-msg").textContent = "Preparing…";
  try {
    const res = await api("GET", `/api/clients/${encodeURIComponent(state.me.client_id)}/export`, undefined, true);
    const blob = await res.blob();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "my-nexus-data.zip";
    document.body.appendChild(a); a.click(); a.remove();
    $("export-msg").textContent = `Downloaded (${Math.round(blob.size / 1024)} KiB).`;
  } catch (e) { $("export-msg").textContent = e.message; }
});

$("erase").addEventListener("click", () => {
  const dlg = $("confirm");
  dlg.showModal();
  dlg.onclose = async () => {
    if (dlg.returnValue !== "ok") return;
    try {
      await api("POST", `/api/clients/${encodeURIComponent(state.me.client_id)}/erase`);
      logout();  // the erasure revokes the client's codes
      $("login-error").textContent = "Your data was erased, and your login with it.";
    } catch (e) { $("erase-msg").textContent = e.message; }
  };
});

if (state.token) start().catch(() => show("login")); else show("login");
