// The statistics page: records per day per agency, hand-over times, rule findings and the day's
// ranking, from GET /api/v1/stats and /api/v1/rankings. Charts are Apache ECharts (shipped with
// the console, echarts.min.js) drawn on canvas, tooltips included (renderMode richText), so no
// received text ever becomes markup; the figures are also in tables, as text.
"use strict";

const CHARTS = ["chart-records", "chart-handover", "chart-rules"];
let statsShown = null; // {stats, ranking}, drawn again when the language changes
let statsAsked = 0;

function seconds(ms) {
  return ms === null || ms === undefined ? null : Math.round(ms / 100) / 10;
}

// the label of an agency in charts: its own name in Chinese, its code in English
function agencyLabel(a) {
  return I18N.lang === "zh" && a.name ? a.name : a.agency;
}

function chart(id) {
  const el = $(id);
  const old = echarts.getInstanceByDom(el);
  if (old) old.dispose();
  return echarts.init(el, null, {renderer: "canvas", locale: I18N.lang === "zh" ? "ZH" : "EN"});
}

function statsDefaults() {
  if ($("s-to").value) return;
  const now = new Date();
  $("s-to").value = dayOf(now, 0);
  $("s-from").value = dayOf(now, -6);
  $("s-day").value = dayOf(now, 0); // today's ranking, as the API, `gateway stats ranking` and the demo show
}

async function loadStats() {
  statsDefaults();
  const from = $("s-from").value;
  const to = $("s-to").value;
  const day = $("s-day").value;
  if (from > to) { say(t("stats.badrange"), true); return; }
  const asked = ++statsAsked;
  const [stats, ranking] = await Promise.all([
    api(`/api/v1/stats?${new URLSearchParams({from, to})}`),
    api(`/api/v1/rankings?${new URLSearchParams({day})}`),
  ]);
  if (asked !== statsAsked) return; // a later choice of days is on its way: this answer is stale
  statsShown = {stats, ranking};
  drawStats();
  $("view-stats").dataset.shown = `${from} ${to} ${day}`;
}

function drawStats() {
  if (!statsShown) return;
  const {stats, ranking} = statsShown;
  drawTotals(stats.agencies);
  drawCharts(stats.agencies);
  drawRanking(ranking);
}

const TOTAL_COLUMNS = [
  ["sent", (v) => number(v)], ["received", (v) => number(v)], ["accepted", (v) => number(v)],
  ["blocked", (v) => number(v)], ["warned", (v) => number(v)], ["resends", (v) => number(v)],
  ["handover_ms_p50", (v) => number(seconds(v), 1)], ["handover_ms_p90", (v) => number(seconds(v), 1)],
  ["first_pass_rate", percent], ["dossier_complete_rate", percent],
  ["clocks_on_time", (v) => number(v)], ["clocks_late", (v) => number(v)], ["clocks_overdue_now", (v) => number(v)],
];
const TOTAL_HEADS = ["stats.sent", "stats.received", "stats.accepted", "stats.blocked", "stats.warned", "stats.resends",
  "stats.p50", "stats.p90", "stats.first_pass", "stats.dossier", "stats.clocks_on_time", "stats.clocks_late",
  "stats.clocks_overdue_now"];

function drawTotals(agencies) {
  const table = $("stats-totals");
  table.tHead.replaceChildren(h("tr", {}, [t("stats.agency"), t("stats.name"), t("stats.role")].map((c) => h("th", {}, c)),
    TOTAL_HEADS.map((k, i) => h("th", {}, i === 6 || i === 7 ? `${t(k)} (${t("stats.seconds")})` : t(k)))));
  table.tBodies[0].replaceChildren(...agencies.map((a) => h("tr", {"data-agency": a.agency},
    h("td", {}, a.agency), h("td", {}, a.name), h("td", {}, roleName(a.role)),
    TOTAL_COLUMNS.map(([field, show]) => h("td", {class: "num", "data-field": field}, show(a.total[field]))))));
  if (!agencies.length) table.tBodies[0].append(h("tr", {}, h("td", {colspan: 13}, t("stats.empty"))));
}

function drawCharts(agencies) {
  const days = [...new Set(agencies.flatMap((a) => a.days.map((d) => d.day)))].sort();
  const tooltip = {trigger: "axis", renderMode: "richText"};
  const legend = {type: "scroll", top: 0};
  const grid = {left: 10, right: 30, top: 40, bottom: 10, containLabel: true};
  chart("chart-records").setOption({
    tooltip, legend: {top: 0}, grid: {...grid, top: 70}, xAxis: {type: "category", data: days}, yAxis: {type: "value"},
    series: agencies.map((a) => {
      const by = new Map(a.days.map((d) => [d.day, d.sent]));
      return {type: "bar", stack: "sent", name: agencyLabel(a), data: days.map((d) => by.get(d) || 0)};
    }),
  });
  const active = agencies.filter((a) => a.total.handover_ms_p50 !== null && a.total.handover_ms_p50 !== undefined);
  chart("chart-handover").setOption({
    tooltip: {...tooltip, axisPointer: {type: "shadow"}}, legend, grid,
    yAxis: {type: "category", data: active.map(agencyLabel), inverse: true},
    xAxis: {type: "value", name: t("stats.seconds")},
    series: [["stats.p50", "handover_ms_p50"], ["stats.p90", "handover_ms_p90"]].map(([label, field]) =>
      ({type: "bar", name: t(label), data: active.map((a) => seconds(a.total[field]))})),
  });
  const rules = new Map();
  for (const a of agencies) for (const r of a.total.top_rules || []) rules.set(r.rule, (rules.get(r.rule) || 0) + r.count);
  const sorted = [...rules.entries()].sort((x, y) => x[1] - y[1]);
  chart("chart-rules").setOption({
    tooltip: {...tooltip, axisPointer: {type: "shadow"}}, grid: {...grid, top: 10},
    xAxis: {type: "value"}, yAxis: {type: "category", data: sorted.map((r) => r[0])},
    series: [{type: "bar", name: t("stats.chart.findings"), data: sorted.map((r) => r[1])}],
  });
}

function drawRanking(ranking) {
  $("ranking-title").textContent = t("stats.ranking", {day: ranking.day});
  $("ranking-state").textContent = `${t(ranking.frozen ? "stats.frozen" : "stats.open")} · `
    + t("stats.score", {list: ranking.score.map((s) => tk("score", s)).join(" > ")});
  const zero = ranking.roles.flatMap((r) => r.units).filter((u) => u.zero_activity || u.zero_rate);
  $("ranking-zero").textContent = zero.length
    ? t("stats.zero", {list: zero.map((u) => u.name || u.agency).join("、")}) : t("stats.zero.none");
  $("rankings").replaceChildren(...ranking.roles.map((r) => h("table", {class: "ranking", "data-role": r.role},
    h("caption", {}, roleName(r.role)),
    h("thead", {}, h("tr", {}, [t("stats.rank"), t("stats.agency"), t("stats.name"), t("stats.first_pass"),
      t("stats.dossier"), `${t("stats.p50")} (${t("stats.seconds")})`, t("stats.records"), ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, r.units.map(rankingRow)))));
}

// one unit of a role's ranking; a unit with no activity or a 0% rate is highlighted and says why
function rankingRow(u) {
  const flags = [u.zero_activity ? t("stats.zero_activity") : "", u.zero_rate ? t("stats.zero_rate") : ""];
  return h("tr", {class: u.zero_activity || u.zero_rate ? "zero" : null, "data-agency": u.agency},
    h("td", {class: "num", "data-field": "rank"}, u.rank), h("td", {}, u.agency), h("td", {}, u.name),
    h("td", {class: "num", "data-field": "first_pass_rate"}, percent(u.first_pass_rate)),
    h("td", {class: "num", "data-field": "dossier_complete_rate"}, percent(u.dossier_complete_rate)),
    h("td", {class: "num", "data-field": "handover_ms_p50"}, number(seconds(u.handover_ms_p50), 1)),
    h("td", {class: "num", "data-field": "records"}, number(u.records)),
    h("td", {class: "flag"}, flags.filter(Boolean).join(" · ")));
}

document.addEventListener("DOMContentLoaded", () => {
  $("stats-form").addEventListener("submit", guard(loadStats));
  document.addEventListener("languagechange", () => { if (current === "stats") drawStats(); });
  window.addEventListener("resize", () => {
    for (const id of CHARTS) { const c = echarts.getInstanceByDom($(id)); if (c) c.resize(); }
  });
});
