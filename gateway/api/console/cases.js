// The console's case view: a case's timeline from GET /api/v1/cases/{number}. Uses h(), api(),
// when() and guard() of console.js (loaded first); every value from a record is written as text.
"use strict";

function caseName(code, names) {
  return names ? [h("span", {lang: "zh"}, names.zh), " ", h("span", {class: "en"}, names.en)] : code;
}

function caseSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

function caseStatus(r) {
  if (r.blocked) return ["已拦截 blocked", h("div", {class: "rules"}, r.rules.join(", "))];
  return r.returned ? "退回 returned" : "已接收 accepted";
}

function caseRow(r, i) {
  const delivered = Object.entries(r.delivered).map(([to, t]) => h("div", {}, `${to}: ${t ? when(t) : "未送达 pending"}`));
  return h("tr", {class: r.blocked ? "blocked" : r.returned ? "returned" : ""},
    h("td", {class: "num"}, i + 1),
    h("td", {}, when(r.received_at)),
    h("td", {}, caseName(r.stage, r.stage_name)),
    h("td", {}, caseName(r.action, r.action_name)),
    h("td", {}, `${r.sender} → ${r.receivers.join(", ") || "-"}`),
    h("td", {}, delivered.length ? delivered : "-"),
    h("td", {}, r.answered_by ? [when(r.answered_at), h("div", {class: "hint"}, h("a", {href: "#", onclick: (ev) => {
      ev.preventDefault();
      openMessage(r.answered_by);
    }}, r.answered_by.slice(0, 12) + "…"))] : "-"),
    h("td", {}, r.documents.map((d) => h("div", {}, caseName(d.type, d.name), " ", d.number))),
    h("td", {class: "num"}, r.files ? `${r.files} · ${caseSize(r.file_bytes)}` : "-"),
    h("td", {class: "status"}, caseStatus(r)),
    h("td", {}, h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(r.message_id); }},
      r.message_id.slice(0, 12) + "…")));
}

async function loadCase() {
  const number = $("c-number").value.trim();
  const body = $("case").tBodies[0];
  body.replaceChildren();
  $("case-title").textContent = "";
  if (!number) return;
  try {
    const r = await api(`/api/v1/cases/${encodeURIComponent(number)}`);
    $("case-title").textContent = `${r.case_number} · ${r.records.length} 条记录 records`;
    body.append(...r.records.map(caseRow));
  } catch (e) {
    if (e instanceof ApiError && e.status === 404) {
      body.append(h("tr", {}, h("td", {colspan: 11}, `没有此案件 no case ${number}`)));
      return;
    }
    throw e;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("case-form").addEventListener("submit", guard(loadCase));
});
