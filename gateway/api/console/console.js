// The gateway's console: reads and acts through the REST API with the key typed at sign-in.
// Everything that came from a record or a receiver is untrusted: it is written with textContent
// (the h() helper below), never as HTML.
"use strict";

const KEY = "case-exchange-gateway.key";
const STATES = ["queued", "in_flight", "retrying", "dead", "delivered", "discarded"];
const $ = (id) => document.getElementById(id);
let me = null;
let timer = null;

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick") el.addEventListener("click", v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function when(t) {
  if (t === null || t === undefined || t === "") return "";
  const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString(undefined, {hour12: false});
}

function age(t) {
  if (!t) return "";
  const s = Math.max(0, Date.now() / 1000 - t);
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

function say(text, error) {
  const el = $("status");
  el.textContent = text || "";
  el.className = error ? "error" : "";
}

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function api(path, options) {
  const opts = options || {};
  const headers = {"X-API-Key": sessionStorage.getItem(KEY) || "", "Accept": "application/json"};
  if (opts.body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {method: opts.method || "GET", headers,
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body)});
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401) {
    signOut("The gateway did not accept this key (" + ((data && data.detail) || "401") + ").");
    throw new ApiError(401, "signed out");
  }
  if (!r.ok) {
    const detail = data && data.detail;
    throw new ApiError(r.status, typeof detail === "string" ? detail : JSON.stringify(detail || r.statusText));
  }
  return data;
}

function guard(fn) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try { await fn(ev); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) say(e.message, true); }
  };
}

// -- sign in / out -------------------------------------------------------------------------------

async function signIn() {
  me = await api("/api/v1/me");
  if (me.role === "agency") {
    signOut("This is an agency's key. The console is for operator and auditor keys.");
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  $("who").textContent = `${me.name} (${me.role})`;
  $("node").textContent = me.node ? `node ${me.node}` : "";
  show("queues");
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  me = null;
  clearInterval(timer);
  $("app").hidden = true;
  $("signout").hidden = true;
  $("signin").hidden = false;
  $("who").textContent = "";
  $("signin-error").textContent = why || "";
}

// -- views ---------------------------------------------------------------------------------------

function show(view) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  clearInterval(timer);
  say("");
  if (view === "log" && $("follow").checked) guard(followLog)();
  if (view === "rules") guard(loadAdaptations)();
  if (view === "clocks") guard(loadClocks)();
  if (view === "queues") {
    guard(loadQueues)();
    timer = setInterval(() => { if ($("auto").checked) guard(loadQueues)(); }, 3000);
  }
}

async function loadQueues() {
  const rows = await api("/api/v1/queues");
  const by = new Map();
  for (const r of rows) {
    if (!by.has(r.destination)) by.set(r.destination, {});
    by.get(r.destination)[r.state] = r;
  }
  const head = $("queues").tHead;
  head.replaceChildren(h("tr", {}, h("th", {}, "destination"), STATES.map((s) => h("th", {}, s.replace("_", " "))),
    h("th", {}, "oldest waiting")));
  const body = $("queues").tBodies[0];
  body.replaceChildren();
  for (const [dest, states] of [...by.entries()].sort()) {
    const waiting = ["queued", "retrying", "in_flight"].map((s) => states[s] && states[s].oldest).filter(Boolean);
    body.append(h("tr", {},
      h("th", {}, dest),
      STATES.map((s) => {
        const n = states[s] ? states[s].count : 0;
        const cls = n && (s === "dead" ? "bad" : s === "retrying" ? "warn" : "");
        return h("td", {class: `num ${cls || ""}`}, n ? h("a", {href: "#", onclick: (ev) => {
          ev.preventDefault();
          listDeliveries(s, dest);
        }}, n.toLocaleString()) : "0");
      }),
      h("td", {}, waiting.length ? age(Math.min(...waiting)) : "")));
  }
  if (!rows.length) body.append(h("tr", {}, h("td", {colspan: STATES.length + 2}, "No deliveries yet.")));
  say(`updated ${new Date().toLocaleTimeString(undefined, {hour12: false})}`);
}

let deliveriesAfter = null;

function listDeliveries(state, destination) {
  $("f-state").value = state;
  $("f-destination").value = destination || "";
  show("deliveries");
  guard(() => loadDeliveries(false))();
}

async function loadDeliveries(more) {
  const q = new URLSearchParams({limit: "100"});
  if ($("f-state").value) q.set("state", $("f-state").value);
  if ($("f-destination").value.trim()) q.set("destination", $("f-destination").value.trim());
  if (more && deliveriesAfter) q.set("after", deliveriesAfter);
  const rows = await api(`/api/v1/deliveries?${q}`);
  const body = $("deliveries").tBodies[0];
  if (!more) body.replaceChildren();
  for (const d of rows) body.append(deliveryRow(d));
  deliveriesAfter = rows.length ? rows[rows.length - 1].id : deliveriesAfter;
  $("deliveries-more").hidden = rows.length < 100;
  const dest = $("f-destination").value.trim();
  const bulk = $("replay-all");
  bulk.hidden = !(me && me.role === "operator" && $("f-state").value === "dead" && dest && rows.length);
  bulk.textContent = `Replay all dead to ${dest}`;
  if (!more && !rows.length) body.append(h("tr", {}, h("td", {colspan: 9}, "None.")));
}

function deliveryRow(d) {
  const actions = h("td", {class: "actions"});
  if (me && me.role === "operator") {
    if (["dead", "delivered", "discarded"].includes(d.state)) {
      actions.append(h("button", {type: "button", title: "deliver again from the original record, to this destination only",
        onclick: guard(() => act(d, "replay"))}, "Replay"));
    }
    if (["dead", "queued", "retrying"].includes(d.state)) {
      actions.append(h("button", {type: "button", title: "give up this delivery", onclick: guard(() => act(d, "discard"))},
        "Discard"));
    }
  }
  return h("tr", {class: d.state},
    h("td", {}, when(d.created_at)),
    h("td", {}, d.case_number),
    h("td", {}, d.destination),
    h("td", {}, d.state.replace("_", " ")),
    h("td", {class: "num"}, d.attempts),
    h("td", {}, d.state === "retrying" || d.state === "queued" ? when(d.next_attempt_at) : ""),
    h("td", {class: "reason"}, d.reason),
    h("td", {}, h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(d.message_id); }},
      d.message_id.slice(0, 12) + "…")),
    actions);
}

async function act(d, what) {
  const reason = window.prompt(`${what === "replay" ? "Replay" : "Discard"} the delivery of case ${d.case_number} `
    + `to ${d.destination}. Reason (kept in the exchange log with your name):`, "");
  if (reason === null) return;
  if (!reason.trim()) { say("A reason is needed; nothing was done.", true); return; }
  const body = what === "replay" ? {reason, expect_state: d.state} : {reason};
  const r = await api(`/api/v1/deliveries/${encodeURIComponent(d.id)}/${what}`, {method: "POST", body});
  say(what === "replay" ? `Replayed to ${r.destination}: new delivery ${r.new_delivery}.` : `Discarded ${r.discarded}.`);
  await loadDeliveries(false);
}

async function replayAllDead() {
  const dest = $("f-destination").value.trim();
  const reason = window.prompt(`Replay every dead delivery to ${dest}, oldest first, each from its original record. `
    + "Reason (kept in the exchange log with your name):", "");
  if (reason === null) return;
  if (!reason.trim()) { say("A reason is needed; nothing was done.", true); return; }
  const r = await api("/api/v1/dead-letters/replay", {method: "POST", body: {destination: dest, reason}});
  const skipped = r.skipped.map((s) => `${s.case}: ${s.why}`).join("; ");
  say(`${r.replayed.length} dead letter(s) to ${dest} queued again; ${r.dead_left} still dead.`
    + (skipped ? ` Skipped: ${skipped}` : ""), r.skipped.length > 0);
  await loadDeliveries(false);
}

function openMessage(id) {
  $("m-id").value = id;
  show("message");
  guard(loadMessage)();
}

function dl(pairs) {
  return h("dl", {}, pairs.filter(([, v]) => v !== null && v !== undefined && v !== "").map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

async function loadMessage() {
  const id = $("m-id").value.trim();
  const out = $("message");
  out.replaceChildren();
  if (!id) return;
  const r = await api(`/api/v1/messages/${encodeURIComponent(id)}/history`);
  const m = r.message;
  let reasons = m.reasons;
  if (Array.isArray(reasons)) reasons = reasons.map((p) => (p && p.message) || JSON.stringify(p)).join("; ");
  out.append(dl([
    ["case", m.case_number], ["stage / action", `${m.stage} / ${m.action}`], ["sender", `${m.sender} (channel ${m.channel})`],
    ["status", m.status], ["problems", reasons], ["received", when(m.received_at)], ["file", m.file_name],
    ["content hash", m.content_hash], ["payloads", m.payload_pruned_at ? `dropped by retention ${when(m.payload_pruned_at)}` : null],
  ]));
  out.append(h("h3", {}, "Deliveries"));
  const t = h("table", {}, h("thead", {}, h("tr", {}, ["destination", "state", "attempts", "reason", "attempts made", ""].map((c) => h("th", {}, c)))));
  const tb = h("tbody");
  for (const d of m.deliveries) {
    const tries = (r.attempts[d.id] || []).map((a) => h("div", {},
      `#${a.attempt} ${when(a.started_at)} on ${a.node}: ${a.outcome} ${a.detail}`));
    const row = deliveryRow(d);
    tb.append(h("tr", {class: d.state}, h("td", {}, d.destination), h("td", {}, d.state.replace("_", " ")),
      h("td", {class: "num"}, d.attempts), h("td", {class: "reason"}, d.reason), h("td", {class: "attempts"}, tries),
      row.lastChild));
  }
  t.append(tb);
  out.append(t, h("h3", {}, "Every step"));
  out.append(logTable(r.steps));
}

function logRow(e) {
  let detail = e.detail;
  try { detail = JSON.stringify(JSON.parse(e.detail)); } catch (err) { /* shown as stored */ }
  return h("tr", {},
    h("td", {class: "num"}, e.seq), h("td", {}, e.time.replace("T", " ").slice(0, 23)), h("td", {}, e.node),
    h("td", {}, e.actor), h("td", {}, e.action), h("td", {}, e.case_number),
    h("td", {}, e.message_id ? h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(e.message_id); }},
      e.message_id.slice(0, 12) + "…") : ""),
    h("td", {class: "detail"}, detail === "{}" ? "" : detail),
    h("td", {class: "hash", title: e.entry_hash}, e.entry_hash.slice(0, 12) + "…"));
}

function logTable(entries) {
  const t = h("table", {}, h("thead", {}, h("tr", {}, ["seq", "time (UTC)", "node", "actor", "action", "case", "message",
    "detail", "entry hash"].map((c) => h("th", {}, c)))));
  t.append(h("tbody", {}, entries.map(logRow)));
  return t;
}

let logAfter = 0;

async function loadLog(more, recent) {
  const q = new URLSearchParams({limit: "200"});
  if (recent) q.set("recent", "true");
  for (const [param, id] of [["case", "l-case"], ["agency", "l-agency"], ["since", "l-since"], ["until", "l-until"]]) {
    if ($(id).value.trim()) q.set(param, $(id).value.trim());
  }
  if (more) q.set("after_seq", String(logAfter));
  const r = await api(`/api/v1/audit?${q}`);
  const body = $("log").tBodies[0];
  if (!more) body.replaceChildren();
  for (const e of r.entries) body.append(logRow(e));
  logAfter = r.entries.length ? r.entries[r.entries.length - 1].seq : logAfter;
  $("log-more").hidden = !r.next_after_seq;
  if (!more && !r.entries.length) body.append(h("tr", {}, h("td", {colspan: 9}, "No entries match.")));
}

async function followLog() {
  // the newest entries first, then whatever is appended, every 2 s while the box stays ticked
  if (!$("follow").checked) return;
  await loadLog(false, true);
  clearInterval(timer);
  timer = setInterval(() => {
    if (!$("follow").checked) { clearInterval(timer); return; }
    guard(async () => {
      await loadLog(true);
      window.scrollTo(0, document.body.scrollHeight);
    })();
  }, 2000);
}

async function verifyLog() {
  const el = $("verdict");
  el.className = "";
  el.textContent = "Verifying every entry and signed checkpoint…";
  const v = await api("/api/v1/audit/verify");
  el.className = v.ok ? "ok" : "bad";
  el.textContent = v.summary;
}

async function loadAdaptations() {
  const r = await api("/api/v1/rules/adaptations");
  const body = $("adaptations").tBodies[0];
  body.replaceChildren(...r.adaptations.map((a) => h("tr", {class: a.change},
    h("td", {}, a.summary), h("td", {}, a.applies_to), h("td", {}, a.reason), h("td", {}, a.key))));
  if (!r.adaptations.length) {
    body.append(h("tr", {}, h("td", {colspan: 4}, "None: every rule of the standard applies as published.")));
  }
  $("unknown-codes").replaceChildren(...r.unknown_codes_warn.map((c) => h("li", {class: "warn"},
    `channel ${c}: records with a stage or action the standard does not know are delivered with a warning `
    + "(unknown_codes: warn, a migration period)")));
}

async function loadClocks() {
  const q = new URLSearchParams({limit: "500"});
  for (const [param, id] of [["state", "c-state"], ["agency", "c-agency"], ["case", "c-case"]]) {
    if ($(id).value.trim()) q.set(param, $(id).value.trim());
  }
  const r = await api(`/api/v1/clocks?${q}`);
  const body = $("clocks").tBodies[0];
  body.replaceChildren(...r.clocks.map((c) => h("tr", {class: c.overdue ? "bad" : (c.approaching ? "warn" : "")},
    h("td", {}, c.case_number), h("td", {}, c.terms), h("td", {}, c.agency), h("td", {}, String(c.period)),
    h("td", {}, c.overdue ? "overdue 已超期" : (c.approaching ? "approaching 临期" : c.state)),
    h("td", {}, c.last_day || "(waiting for delivery)"), h("td", {}, c.late_days ? String(c.late_days) : ""),
    h("td", {}, c.message_id))));
  if (!r.clocks.length) body.append(h("tr", {}, h("td", {colspan: 8}, "No clocks match.")));
}

// -- wiring --------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("signin-form").addEventListener("submit", guard(async () => {
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    try { await signIn(); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) signOut(e.message); }
  }));
  $("signout").addEventListener("click", () => signOut(""));
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => show(b.dataset.view));
  $("deliveries-form").addEventListener("submit", guard(() => loadDeliveries(false)));
  $("deliveries-more").addEventListener("click", guard(() => loadDeliveries(true)));
  $("replay-all").addEventListener("click", guard(replayAllDead));
  $("message-form").addEventListener("submit", guard(loadMessage));
  $("log-form").addEventListener("submit", guard(() => loadLog(false)));
  $("log-more").addEventListener("click", guard(() => loadLog(true)));
  $("verify").addEventListener("click", guard(verifyLog));
  $("clocks-form").addEventListener("submit", guard(loadClocks));
  $("follow").addEventListener("change", guard(followLog));
  if (sessionStorage.getItem(KEY)) guard(signIn)();
});
