// The console's words in Chinese and English, and its clock. One catalogue (messages.json) holds
// every label, state name, message and error in both languages; the page is zh-CN unless this
// browser chose English (kept in localStorage). Times are shown in one time zone, Asia/Shanghai
// unless this browser chose another, always with the zone named.
"use strict";

const LANG_KEY = "case-exchange-gateway.lang";
const ZONE_KEY = "case-exchange-gateway.zone";
const DEFAULT_ZONE = "Asia/Shanghai";
const I18N = {messages: {}, lang: "zh", zone: DEFAULT_ZONE, ready: null};

function t(key, vars) {
  const m = I18N.messages[key];
  if (!m) return key;
  const text = m[I18N.lang] || m.zh || m.en;
  return text.replace(/\{(\w+)\}/g, (all, name) => (vars && name in vars ? String(vars[name]) : all));
}

// a code's word from a family of keys ("state", "queued" -> state.queued), or the code itself
function tk(family, code, vars) {
  const key = `${family}.${code}`;
  return I18N.messages[key] ? t(key, vars) : String(code);
}

function applyLanguage() {
  document.documentElement.lang = I18N.lang === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n, {zone: I18N.zone});
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  document.title = t("app.title");
  const pick = document.getElementById("lang");
  if (pick) pick.value = I18N.lang;
  const zone = document.getElementById("zone");
  if (zone && document.activeElement !== zone) zone.value = I18N.zone;
}

function setLanguage(lang) {
  I18N.lang = lang === "en" ? "en" : "zh";
  localStorage.setItem(LANG_KEY, I18N.lang);
  applyLanguage();
  document.dispatchEvent(new CustomEvent("languagechange"));
}

function validZone(zone) {
  try { new Intl.DateTimeFormat("en", {timeZone: zone}); return true; } catch (e) { return false; }
}

// returns false (and keeps the zone) when the browser does not know the zone named
function setZone(zone) {
  if (!zone || !validZone(zone)) return false;
  I18N.zone = zone;
  localStorage.setItem(ZONE_KEY, zone);
  applyLanguage();
  document.dispatchEvent(new CustomEvent("languagechange"));
  return true;
}

// "2026-11-26 09:05:03 GMT+8": the instant in the chosen zone, with the zone's offset
function when(value) {
  if (value === null || value === undefined || value === "") return "";
  const d = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (isNaN(d)) return String(value);
  const parts = {};
  const fmt = new Intl.DateTimeFormat("en-GB", {timeZone: I18N.zone, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    timeZoneName: "shortOffset"});
  for (const p of fmt.formatToParts(d)) parts[p.type] = p.value;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}:${parts.second} ${parts.timeZoneName}`;
}

// the calendar day (YYYY-MM-DD) of an instant in the chosen zone, `offset` days later
function dayOf(date, offset) {
  const d = new Date(date.getTime() + (offset || 0) * 86400000);
  return new Intl.DateTimeFormat("en-CA", {timeZone: I18N.zone, year: "numeric", month: "2-digit", day: "2-digit"})
    .format(d);
}

// milliseconds the chosen zone's clock is ahead of UTC at the instant `ms`
function zoneOffset(ms) {
  const p = {};
  const fmt = new Intl.DateTimeFormat("en-US", {timeZone: I18N.zone, hourCycle: "h23", year: "numeric",
    month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"});
  for (const x of fmt.formatToParts(new Date(ms))) p[x.type] = x.value;
  return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second) - Math.floor(ms / 1000) * 1000;
}

// a time typed as the chosen zone's wall clock ("2026-01-31 08:00") as the log's UTC form
// ("2026-01-31T00:00:00"); anything else is passed on as typed
function utcOfLocal(text) {
  const m = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d))?)?$/.exec(text.trim());
  if (!m) return text.trim();
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +(m[4] || 0), +(m[5] || 0), +(m[6] || 0));
  const at = wall - zoneOffset(wall - zoneOffset(wall)); // twice: the offset may change between the two
  return new Date(at).toISOString().slice(0, 19);
}

function number(n, digits) {
  if (n === null || n === undefined) return t("stats.nodata");
  return Number(n).toLocaleString(I18N.lang === "zh" ? "zh-CN" : "en-US",
    {minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0});
}

function percent(r) {
  return r === null || r === undefined ? t("stats.nodata") : `${(r * 100).toFixed(1)}%`;
}

async function loadMessages() {
  const stored = localStorage.getItem(LANG_KEY);
  I18N.lang = stored === "en" ? "en" : "zh";
  const zone = localStorage.getItem(ZONE_KEY);
  I18N.zone = zone && validZone(zone) ? zone : DEFAULT_ZONE;
  const r = await fetch("/console/messages.json");
  I18N.messages = await r.json();
  applyLanguage();
}

I18N.ready = loadMessages();
