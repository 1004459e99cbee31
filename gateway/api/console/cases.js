// The console's case view: a case's timeline from GET /api/v1/cases/{number}. Uses h(), api(),
// guard() of console.js and t()/when() of i18n.js (loaded first); every value from a record is
// written as text, and the view is drawn again in the other language when the reader switches.
"use strict";

let caseShown = null;  // the last answer, redrawn on a language change

function caseName(code, names) {
  return names ? (names[I18N.lang] || names.zh || code) : code;
}

function caseSize(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1048576).toFixed(1)} MB`;
}

function caseStatus(r) {
  if (r.blocked) return [t("case.blocked"), h("div", {class: "rules"}, r.rules.join(", "))];
  return r.returned ? t("case.returned") : t("case.accepted");
}

function caseLink(id) {
  return h("a", {href: "#", onclick: (ev) => { ev.preventDefault(); openMessage(id); }}, id.slice(0, 12) + "…");
}

function caseRow(r, i) {
  const delivered = Object.entries(r.delivered).map(
    ([to, at]) => h("div", {}, `${to}: ${at ? when(at) : t("case.pending")}`));
  return h("tr", {class: r.blocked ? "blocked" : r.returned ? "returned" : ""},
    h("td", {class: "num"}, i + 1),
    h("td", {}, when(r.received_at)),
    h("td", {}, caseName(r.stage, r.stage_name)),
    h("td", {}, caseName(r.action, r.action_name)),
    h("td", {}, `${r.sender} → ${r.receivers.join(", ") || "-"}`),
    h("td", {}, delivered.length ? delivered : "-"),
    h("td", {}, r.answered_by ? [when(r.answered_at), h("div", {class: "hint"}, caseLink(r.answered_by))] : "-"),
    h("td", {}, r.documents.map((d) => h("div", {}, caseName(d.type, d.name), " ", d.number))),
    h("td", {class: "num"}, r.files ? `${r.files} · ${caseSize(r.file_bytes)}` : "-"),
    h("td", {class: "status"}, caseStatus(r)),
    h("td", {}, caseLink(r.message_id)));
}

function drawCase() {
  const body = $("case").tBodies[0];
  body.replaceChildren();
  $("case-title").textContent = "";
  if (!caseShown) return;
  if (caseShown.missing) {
    body.append(h("tr", {}, h("td", {colspan: 11}, t("case.none", {number: caseShown.missing}))));
    return;
  }
  $("case-title").textContent = t("case.records", {case: caseShown.case_number, n: caseShown.records.length});
  body.append(...caseShown.records.map(caseRow));
}

async function loadCase() {
  const number = $("c-number").value.trim();
  caseShown = null;
  drawCase();
  if (!number) return;
  try {
    caseShown = await api(`/api/v1/cases/${encodeURIComponent(number)}`);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 404)) throw e;
    caseShown = {missing: number};
  }
  drawCase();
}

document.addEventListener("DOMContentLoaded", () => {
  $("case-form").addEventListener("submit", guard(loadCase));
});
document.addEventListener("languagechange", drawCase);
