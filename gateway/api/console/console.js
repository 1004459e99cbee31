// The gateway's console: reads and acts through the REST API with the key typed at sign-in.
// Everything that came from a record or a receiver is untrusted: it is written with textContent
// (the h() helper below), never as HTML. Words come from the catalogue through t() (i18n.js).
"use strict";

const KEY = "case-exchange-gateway.key";
const STATES = ["queued", "in_flight", "retrying", "dead", "delivered", "discarded"];
const $ = (id) => document.getElementById(id);
let me = null;
let timer = null;
let current = "queues";

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

function age(at) {
  if (!at) return "";
  const s = Math.max(0, Date.now() / 1000 - at);
  if (s < 90) return t("age.s", {n: Math.round(s)});
  if (s < 5400) return t("age.min", {n: Math.round(s / 60)});
  if (s < 172800) return t("age.h", {n: Math.round(s / 3600)});
  return t("age.d", {n: Math.round(s / 86400)});
}

const stateName = (s) => tk("state", s);
const roleName = (r) => tk("role", r);

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
  let r;
  try {
    r = await fetch(path, {method: opts.method || "GET", headers,
      body: opts.body === undefined ? undefined : JSON.stringify(opts.body)});
  } catch (e) {
    throw new ApiError(0, t("error.network", {detail: e.message}));
  }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401) {
    signOut(t("signin.refused", {detail: (data && data.detail) || "401"}));
    throw new ApiError(401, "signed out");
  }
  if (!r.ok) {
    const detail = data && data.detail;
    // a 422 lists what was wrong ({loc, msg}); a person reads the messages, not the JSON
    const text = typeof detail === "string" ? detail
      : Array.isArray(detail) ? detail.map((d) => (d && d.msg) || JSON.stringify(d)).join("; ")
      : JSON.stringify(detail || r.statusText);
    throw new ApiError(r.status, t("error.api", {status: r.status, detail: text}));
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
    signOut(t("signin.agency"));
    return;
  }
  $("signin").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  showWho();
  show("queues");
}

function showWho() {
  $("who").textContent = me ? t("who", {name: me.name, role: roleName(me.role)}) : "";
  $("node").textContent = me && me.node ? t("node", {node: me.node}) : "";
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
  current = view;
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b.dataset.view === view);
  for (const s of document.querySelectorAll(".view")) s.hidden = s.id !== `view-${view}`;
  clearInterval(timer);
  say("");
  if (view === "log" && $("follow").checked) guard(followLog)();
  if (view === "rules") guard(loadAdaptations)();
  if (view === "conformance") guard(loadConformance)();
  if (view === "stats") guard(loadStats)();
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
  head.replaceChildren(h("tr", {}, h("th", {}, t("queues.destination")), STATES.map((s) => h("th", {}, stateName(s))),
    h("th", {}, t("queues.oldest"))));
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
  if (!rows.length) body.append(h("tr", {}, h("td", {colspan: STATES.length + 2}, t("queues.none"))));
  say(t("updated", {time: when(Date.now() / 1000)}));
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
  bulk.textContent = t("replay.all", {dest});
  if (!more && !rows.length) body.append(h("tr", {}, h("td", {colspan: 9}, t("none"))));
}

function deliveryRow(d) {
  const actions = h("td", {class: "actions"});
  if (me && me.role === "operator") {
    if (["dead", "delivered", "discarded"].includes(d.state)) {
      actions.append(h("button", {type: "button", title: t("replay.title"),
        onclick: guard(() => act(d, "replay"))}, t("replay")));
    }
    if (["dead", "queued", "retrying"].includes(d.state)) {
      actions.append(h("button", {type: "button", title: t("discard.title"), onclick: guard(() => act(d, "discard"))},
        t("discard")));
    }
  }
  return h("tr", {class: d.state},
    h("td", {}, when(d.created_at)),
    h("td", {}, d.case_number),
    h("td", {}, d.destination),
    h("td", {}, stateName(d.state)),
    h("td", {class: "num"}, d.attempts),
    h("td", {}, d.state === "retrying" || d.state === "queued" ? when(d.next_attempt_at) : ""),
    h("td", {class: "reason"}, d.reason),
    h("td", {}, h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(d.message_id); }},
      d.message_id.slice(0, 12) + "…")),
    actions);
}

async function act(d, what) {
  const reason = window.prompt(t(what === "replay" ? "replay.prompt" : "discard.prompt",
    {case: d.case_number, dest: d.destination}), "");
  if (reason === null) return;
  if (!reason.trim()) { say(t("reason.needed"), true); return; }
  const body = what === "replay" ? {reason, expect_state: d.state} : {reason};
  const r = await api(`/api/v1/deliveries/${encodeURIComponent(d.id)}/${what}`, {method: "POST", body});
  say(what === "replay" ? t("replayed", {dest: r.destination, id: r.new_delivery}) : t("discarded", {id: r.discarded}));
  await loadDeliveries(false);
}

async function replayAllDead() {
  const dest = $("f-destination").value.trim();
  const reason = window.prompt(t("replay.all.prompt", {dest}), "");
  if (reason === null) return;
  if (!reason.trim()) { say(t("reason.needed"), true); return; }
  const r = await api("/api/v1/dead-letters/replay", {method: "POST", body: {destination: dest, reason}});
  const skipped = r.skipped.map((s) => `${s.case}: ${s.why}`).join("; ");
  say(t("replayed.all", {n: r.replayed.length, dest, left: r.dead_left})
    + (skipped ? ` ${t("skipped", {list: skipped})}` : ""), r.skipped.length > 0);
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
    [t("m.case"), m.case_number], [t("m.stage"), `${m.stage} / ${m.action}`],
    [t("m.sender"), t("m.sender.value", {sender: m.sender, channel: m.channel})],
    [t("m.status"), tk("status", m.status)], [t("m.problems"), reasons], [t("m.received"), when(m.received_at)],
    [t("m.file"), m.file_name], [t("m.hash"), m.content_hash],
    [t("m.payloads"), m.payload_pruned_at ? t("m.pruned", {time: when(m.payload_pruned_at)}) : null],
  ]));
  out.append(h("h3", {}, t("m.deliveries")));
  const table = h("table", {}, h("thead", {}, h("tr", {}, [t("col.destination"), t("col.state"), t("col.attempts"),
    t("col.reason"), t("m.tries"), ""].map((c) => h("th", {}, c)))));
  const tb = h("tbody");
  for (const d of m.deliveries) {
    const tries = (r.attempts[d.id] || []).map((a) => h("div", {},
      t("m.try", {n: a.attempt, time: when(a.started_at), node: a.node, outcome: a.outcome, detail: a.detail})));
    const row = deliveryRow(d);
    tb.append(h("tr", {class: d.state}, h("td", {}, d.destination), h("td", {}, stateName(d.state)),
      h("td", {class: "num"}, d.attempts), h("td", {class: "reason"}, d.reason), h("td", {class: "attempts"}, tries),
      row.lastChild));
  }
  table.append(tb);
  out.append(table, h("h3", {}, t("m.steps")));
  out.append(logTable(r.steps));
}

function logRow(e) {
  return h("tr", {},
    h("td", {class: "num"}, e.seq), h("td", {class: "time", title: e.time}, when(e.time)), h("td", {}, e.node),
    h("td", {}, e.actor), h("td", {title: e.action}, tk("action", e.action)), h("td", {}, e.case_number),
    h("td", {}, e.message_id ? h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(e.message_id); }},
      e.message_id.slice(0, 12) + "…") : ""),
    h("td", {class: "detail"}, detailCell(e)),
    h("td", {class: "hash", title: e.entry_hash}, e.entry_hash.slice(0, 12) + "…"));
}

// -- the exchange log's detail: a sentence or a small table per action, the stored JSON one click away

function parseDetail(raw) {
  if (raw && typeof raw === "object") return raw;
  try {
    const d = JSON.parse(raw);
    return d && typeof d === "object" && !Array.isArray(d) ? d : null;
  } catch (err) {
    return null;
  }
}

function smallTable(heads, rows) {
  return h("table", {class: "small"}, h("thead", {}, h("tr", {}, heads.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

// a rule finding in the reader's language (findings carry both), with where it is
function findingsTable(findings) {
  return smallTable([t("finding.rule"), t("finding.severity"), t("finding.message"), t("finding.where")],
    findings.map((p) => [p.rule, tk("severity", p.severity),
      (I18N.lang === "zh" ? p.message_zh || p.message : p.message || p.message_zh) || "",
      [p.location, p.line ? t("finding.line", {n: p.line}) : ""].filter(Boolean).join(" ")]));
}

function attachmentsTable(files) {
  return smallTable([t("att.file"), t("att.type"), t("att.size"), t("att.sha")],
    files.map((a) => [a.name, a.media_type, number(a.size), String(a.sha256 || "").slice(0, 16) + "…"]));
}

function readable(action, d) {
  const list = (xs) => (xs || []).join(", ");
  switch (action) {
    case "received": {
      const sentence = t("detail.received", {channel: d.channel, size: number(d.size)})
        + (d.file ? t("detail.received.file", {file: d.file}) : "");
      return [h("div", {}, sentence), d.attachments && d.attachments.length ? attachmentsTable(d.attachments) : null];
    }
    case "mapped": return t("detail.mapped", {pack: d.pack});
    case "validated":
      return d.warnings && d.warnings.length
        ? [h("div", {}, t("detail.validated.warnings", {n: d.warnings.length})), findingsTable(d.warnings)]
        : t("detail.validated");
    case "warned": return [h("div", {}, t("detail.warned", {n: (d.warnings || []).length})), findingsTable(d.warnings || [])];
    case "rejected":
      return [h("div", {}, t("detail.rejected", {n: (d.problems || []).length})), findingsTable(d.problems || [])];
    case "routed": return t("detail.routed", {list: list(d.destinations)});
    case "queued": return t("detail.queued", {dest: d.destination});
    case "defect-notice": return t("detail.defect-notice", {dest: d.destination, list: list(d.rules)});
    case "defect-notice-failed": return t("detail.defect-notice-failed", {dest: d.destination, reason: d.reason});
    case "duplicate": return t("detail.duplicate", {channel: d.channel});
    case "delivered": case "delivery-failed": case "dead-lettered":
      return t(`detail.${action}`, {dest: d.destination, attempt: d.attempt, detail: d.detail || ""});
    case "payload-pruned": return t("detail.payload-pruned", {policy: d.policy});
    case "replayed": return t("detail.replayed", {dest: d.destination, id: d.new_delivery, reason: d.reason});
    case "discarded": return t("detail.discarded", {dest: d.destination, reason: d.reason});
    case "node-started": case "node-stopped": return t(`detail.${action}`, {node: d.node});
    case "refused": return t("detail.refused", {source: d.source || d.channel || "", rule: d.rule || ""});
    case "access-refused":
      return t("detail.access-refused", {client: d.client || d.source || "", method: d.method || "", path: d.path || "",
        why: d.why || d.rule || ""});
    case "refusals-repeated": return t("detail.refusals-repeated", {n: d.repeats, why: d.why || d.rule || ""});
    case "channel-stopped": return t("detail.channel-stopped", {channel: d.channel, why: d.why});
    case "conformance-run": return t("detail.conformance-run", {status: d.status});
    case "unknown-code-admitted": return t("detail.unknown-code-admitted", {channel: d.channel});
    default: // an action without its own sentence: its fields as a two-column table
      return smallTable([t("finding.where"), t("col.detail")], Object.entries(d).map(([k, v]) =>
        [k, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]));
  }
}

function detailCell(e) {
  const d = parseDetail(e.detail);
  if (!d) return e.detail && e.detail !== "{}" ? String(e.detail) : "";
  if (!Object.keys(d).length) return "";
  let shown;
  try { shown = readable(e.action, d); } catch (err) { shown = null; }
  return [h("div", {class: "readable"}, shown),
    h("details", {class: "raw"}, h("summary", {}, t("detail.raw")), h("pre", {}, JSON.stringify(d, null, 1)))];
}

function logHead() {
  return h("tr", {}, [t("col.seq"), t("col.time", {zone: I18N.zone}), t("col.node"), t("col.actor"), t("col.action"),
    t("col.case"), t("col.message"), t("col.detail"), t("col.hash")].map((c) => h("th", {}, c)));
}

function logTable(entries) {
  const table = h("table", {}, h("thead", {}, logHead()));
  table.append(h("tbody", {}, entries.map(logRow)));
  return table;
}

let logAfter = 0;

async function loadLog(more, recent) {
  const q = new URLSearchParams({limit: "200"});
  if (recent) q.set("recent", "true");
  for (const [param, id] of [["case", "l-case"], ["agency", "l-agency"]]) {
    if ($(id).value.trim()) q.set(param, $(id).value.trim());
  }
  for (const [param, id] of [["since", "l-since"], ["until", "l-until"]]) { // typed in the chosen zone
    if ($(id).value.trim()) q.set(param, utcOfLocal($(id).value));
  }
  if (more) q.set("after_seq", String(logAfter));
  const r = await api(`/api/v1/audit?${q}`);
  const body = $("log").tBodies[0];
  $("log").tHead.replaceChildren(logHead());
  if (!more) body.replaceChildren();
  for (const e of r.entries) body.append(logRow(e));
  logAfter = r.entries.length ? r.entries[r.entries.length - 1].seq : logAfter;
  $("log-more").hidden = !r.next_after_seq;
  if (!more && !r.entries.length) body.append(h("tr", {}, h("td", {colspan: 9}, t("log.none"))));
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
  el.textContent = t("log.verifying");
  const v = await api("/api/v1/audit/verify");
  el.className = v.ok ? "ok" : "bad";
  el.title = v.summary; // the gateway's own words
  if (!v.ok) el.textContent = t("verify.tampered", {problem: v.problem ? v.problem.message : v.summary});
  else if (!v.entries) el.textContent = t("verify.empty");
  else {
    el.textContent = t("verify.intact", {a: v.first_seq, b: v.last_seq, n: v.entries, c: v.checkpoints})
      + (v.uncovered ? t("verify.uncovered", {a: v.uncovered[0], b: v.uncovered[1]}) : "");
  }
}

async function loadAdaptations() {
  const r = await api("/api/v1/rules/adaptations");
  const body = $("adaptations").tBodies[0];
  body.replaceChildren(...r.adaptations.map((a) => h("tr", {class: a.change},
    h("td", {}, a.summary), h("td", {}, a.applies_to), h("td", {}, a.reason), h("td", {}, a.key))));
  if (!r.adaptations.length) {
    body.append(h("tr", {}, h("td", {colspan: 4}, t("rules.none"))));
  }
  $("unknown-codes").replaceChildren(...r.unknown_codes_warn.map((c) => h("li", {class: "warn"},
    t("rules.unknown", {channel: c}))));
}

async function loadConformance() {
  const rows = await api("/api/v1/conformance");
  const body = $("conformance").tBodies[0];
  body.replaceChildren(...rows.map((a) => {
    const last = a.last_run || {};
    const samples = last.samples
      ? t("conf.asexpected", {ok: last.samples.filter((s) => s.ok).length, n: last.samples.length}) : "";
    const run = me && me.role === "operator"
      ? h("button", {type: "button", onclick: guard(() => runConformance(a.agency))}, t("conf.run")) : "";
    return h("tr", {class: a.conformant === false ? "dead" : null},
      h("td", {}, a.agency), h("td", {class: a.conformant ? "" : "bad"}, a.status), h("td", {}, when(last.at)),
      h("td", {}, samples),
      h("td", {}, a.closed ? t("conf.closed") : (a.required ? t("conf.open") : "")), h("td", {}, run));
  }));
}

async function runConformance(agency) {
  say(t("conf.running", {agency}));
  const r = await api(`/api/v1/conformance/${encodeURIComponent(agency)}`, {method: "POST"});
  say(`${r.agency}: ${r.status}`, !r.passed);
  const table = $("conformance-report");
  table.tHead.replaceChildren(h("tr", {}, [t("conf.sample"), t("conf.expected"), t("conf.outcome"), t("conf.ms"),
    t("conf.outbound"), t("conf.rules")].map((c) => h("th", {}, c))));
  table.tBodies[0].replaceChildren(...r.samples.map((s) => h("tr", {class: s.ok ? null : "dead"},
    h("td", {}, s.sample), h("td", {}, s.expected), h("td", {class: s.ok ? "" : "bad"}, s.outcome),
    h("td", {}, (s.seconds * 1000).toFixed(1)),
    h("td", {}, Object.keys(s.outbound).map((d) => `${d} ${atob(s.outbound[d]).length} B`).join(", ")),
    h("td", {}, s.error || s.rules.join(" ")))));
  await loadConformance();
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
    h("td", {}, tk("clockstate", c.overdue ? "overdue" : (c.approaching ? "approaching" : c.state))),
    h("td", {}, c.last_day || t("clocks.waiting")), h("td", {}, c.late_days ? String(c.late_days) : ""),
    h("td", {}, c.message_id))));
  if (!r.clocks.length) body.append(h("tr", {}, h("td", {colspan: 8}, t("clocks.none"))));
}

// -- wiring --------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  try {
    await I18N.ready;
  } catch (e) { // without the catalogue there are no words to say it in but these
    $("signin-error").textContent = `无法加载控制台文字 / Could not load the console's words: ${e.message}`;
  }
  $("lang").addEventListener("change", () => setLanguage($("lang").value));
  $("zone").addEventListener("change", () => {
    if (!setZone($("zone").value.trim())) say(t("zone.bad", {zone: $("zone").value}), true);
  });
  // a new language or zone: what is on screen is drawn again in it
  document.addEventListener("languagechange", () => {
    if (!me) return;
    showWho();
    const view = current;
    show(view);
    if (view === "deliveries") guard(() => loadDeliveries(false))();
    if (view === "message" && $("m-id").value.trim()) guard(loadMessage)();
    if (view === "log" && !$("follow").checked && $("log").tBodies[0].rows.length) guard(() => loadLog(false))();
  });
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
