"""The operators' console (/console) on a real uvicorn server, and in a real headless Chromium.

The page must only ever call operations the API has, write untrusted text as text, forbid
inline script, and let an operator find a dead letter, read why, and replay it to its
destination, with the reason landing in the exchange log. Its statistics page is checked against
what GET /api/v1/stats and /api/v1/rankings answer over a city's two weeks of traffic
(tests/support/province.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.api.console import ASSETS, asset
from gateway.model import Attachment, DeliveryResult, MessageStatus, OutboundMessage
from gateway.stats.ranking import working_day

from .support import province
from .support.api import KEYS, Running, log, serve
from .support.browser import keyed_console
from .support.records import record
from .support.waiting import wait_for

SCRIPTS = ("i18n.js", "console.js", "cases.js", "stats.js")
JS = "\n".join(asset(name).decode() for name in SCRIPTS)
ROOT = Path(__file__).resolve().parent.parent
LANG = "case-exchange-gateway.lang"


TODAY = datetime.now(ZoneInfo("Asia/Shanghai")).date()
FROM, TO = TODAY - timedelta(days=13), TODAY
DAY = next(TODAY - timedelta(days=i) for i in range(1, 8) if working_day(TODAY - timedelta(days=i)))


@pytest.fixture
async def city_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Running]:
    """The `api` gateway over a city's agencies: thirteen past days from the year generator's writer,
    today's records submitted through the node (accepted, blocked, resent, delivered)."""
    for name, key in KEYS.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)
    async with serve(tmp_path / "data", shape=province.city) as running:
        await province.past_days(running.gateway.store, running.gateway.config.gateway.node, TODAY, 13)
        assert (await running.submit("POLICE", record("C-TODAY-1"))).json()["status"] == "accepted"
        assert (await running.submit("POLICE", record("C-TODAY-2", sender="COURT"))).json()["status"] == "rejected"
        assert (await running.submit("POLICE", record("C-TODAY-2", extra="resent"))).json()["status"] == "accepted"
        await wait_for(lambda: len(running.outs["PROC"].received) == 2, what="today's records delivered")
        yield running


async def test_the_page_and_its_files_are_served_with_a_strict_policy(api: Running) -> None:  # noqa: F811
    page = await api.call(None, "GET", "/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in page.text, "inline script would be refused by the policy"
    for name in ASSETS:
        if name != "index.html":
            r = await api.call(None, "GET", f"/console/{name}")
            assert r.status_code == 200 and r.headers["x-content-type-options"] == "nosniff"
    assert (await api.call(None, "GET", "/console/../gateway.db")).status_code == 404
    assert (await api.call(None, "GET", "/console/secrets.txt")).status_code == 404
    assert (await api.call(None, "GET", "/console/vendor")).status_code == 404
    charts = await api.call(None, "GET", "/console/echarts.min.js")
    assert charts.content == (ROOT / "gateway/api/console/vendor/echarts/echarts.min.js").read_bytes()
    assert "<script src=\"/console/echarts.min.js\"" in page.text and "//" not in page.text.split("src=")[1][:3]
    home = await api.call(None, "GET", "/", follow_redirects=False)
    assert home.status_code in (302, 307) and home.headers["location"] == "/console"


async def test_the_script_calls_only_operations_the_api_has(api: Running) -> None:  # noqa: F811
    schema = (await api.call(None, "GET", "/openapi.json")).json()["paths"]
    called = set(re.findall(r"[\"`](/api/v1/[^\"`]*)[\"`]", JS))
    assert len(called) >= 7, called
    # `/api/v1/deliveries/${...}/${what}` against `/api/v1/deliveries/{delivery_id}/replay`
    known = [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", "[^/]+", re.escape(p)) + "$") for p in schema]
    for path in called:
        ids = re.sub(r"\$\{(?!what\})[^}]*\}", "ID", path.split("?")[0])
        for concrete in ([ids.replace("${what}", w) for w in ("replay", "discard")] if "${what}" in ids else [ids]):
            assert any(k.match(concrete) for k in known), f"console.js calls {concrete}, which the API does not have"


def test_the_script_never_writes_html() -> None:
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in JS, f"the console's scripts use {sink}; untrusted text must go through textContent"
    assert "renderMode: \"richText\"" in asset("stats.js").decode(), "chart tooltips are drawn, not written as HTML"


def test_the_vendored_charts_are_the_recorded_release_with_its_license() -> None:
    folder = ROOT / "gateway/api/console/vendor/echarts"
    source = (folder / "SOURCE.txt").read_text()
    assert hashlib.sha256((folder / "echarts.min.js").read_bytes()).hexdigest() in source
    assert "Apache License" in (folder / "LICENSE").read_text() and "Apache ECharts" in (folder / "NOTICE").read_text()
    code = (folder / "echarts.min.js").read_text()
    assert "eval(" not in code and "new Function" not in code, "the console's policy allows no eval"


async def test_whoami_tells_each_role(api: Running) -> None:  # noqa: F811
    for who, role in (("OPERATOR", "operator"), ("AUDITOR", "auditor"), ("POLICE", "agency")):
        me = (await api.call(who, "GET", "/api/v1/me")).json()
        assert me["role"] == role and me["node"] == "test-node"
    assert (await api.call("POLICE", "GET", "/api/v1/me")).json()["agency"] == "POLICE"
    assert (await api.call(None, "GET", "/api/v1/me")).status_code == 401


async def test_verify_over_the_api_finds_an_altered_entry(api: Running, tmp_path: Path) -> None:  # noqa: F811
    assert (await api.submit("POLICE", record(case="VER-1"))).status_code == 202
    await wait_for(lambda: _delivered(api, "PROC", 1))
    assert (await api.call("POLICE", "GET", "/api/v1/audit/verify")).status_code == 403
    good = (await api.call("AUDITOR", "GET", "/api/v1/audit/verify")).json()
    assert good["ok"] is True and good["entries"] >= 4 and good["problem"] is None
    assert good["summary"].startswith("INTACT")
    seq = good["first_seq"] + 1
    with sqlite3.connect(tmp_path / "data" / "gateway.db") as db:  # as someone with write access would
        db.execute("DROP TRIGGER IF EXISTS audit_no_update")
        db.execute("UPDATE audit_log SET actor = 'someone-else' WHERE seq = ?", (seq,))
    bad = (await api.call("OPERATOR", "GET", "/api/v1/audit/verify")).json()
    assert bad["ok"] is False and bad["problem"]["seq"] == seq
    assert bad["summary"].startswith("TAMPERED")


async def _delivered(r: Running, code: str, n: int) -> bool:
    return len(r.outs[code].received) >= n


# -- in a real browser -----------------------------------------------------------------------------

MARKUP = '<img id="injected" src="x"> dossier incomplete'


def _operator_replays_a_dead_letter(driver: Any, url: str, key: str, police_key: str) -> dict[str, str]:
    """What an operator does: sign in, see the dead count, open it, read the reason, replay."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 10)
    driver.get(f"{url}/console")
    driver.execute_script(f"localStorage.setItem('{LANG}', 'en'); sessionStorage.clear();")
    driver.get(f"{url}/console")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#signin h2").text == "Sign in")
    driver.find_element(By.ID, "key").send_keys("not-a-key")
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(lambda d: "did not accept" in d.find_element(By.ID, "signin-error").text)
    refused = driver.find_element(By.ID, "signin-error").text
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    dead = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#queues td.bad a")))
    who = driver.find_element(By.ID, "who").text
    dead.click()
    row = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#deliveries tbody tr.dead")))
    bulk = driver.find_element(By.ID, "replay-all")
    bulk_button = bulk.text if bulk.is_displayed() else ""
    reason = row.find_element(By.CSS_SELECTOR, "td.reason").text
    injected = len(driver.find_elements(By.ID, "injected"))
    row.find_element(By.XPATH, ".//button[text()='Replay']").click()
    prompt = wait.until(ec.alert_is_present())
    prompt.send_keys("receiver fixed its dossier check")
    prompt.accept()
    wait.until(lambda d: "Replayed to PROC" in d.find_element(By.ID, "status").text)
    status = driver.find_element(By.ID, "status").text
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view='log']").click()
    driver.find_element(By.ID, "l-case").send_keys("CON-1")
    driver.find_element(By.CSS_SELECTOR, "#log-form button[type='submit']").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log tbody td.detail details")) > 3)
    times = [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#log tbody td.time")]
    head = driver.find_element(By.CSS_SELECTOR, "#log thead").text
    received = next(r for r in driver.find_elements(By.CSS_SELECTOR, "#log tbody tr") if " received " in f" {r.text} ")
    detail = received.find_element(By.CSS_SELECTOR, "td.detail")
    readable = detail.find_element(By.CSS_SELECTOR, ".readable").text
    raw_hidden = detail.find_element(By.CSS_SELECTOR, "details pre").is_displayed()
    detail.find_element(By.CSS_SELECTOR, "details summary").click()
    raw = detail.find_element(By.CSS_SELECTOR, "details pre").text
    driver.find_element(By.ID, "verify").click()
    wait.until(lambda d: d.find_element(By.ID, "verdict").text.startswith(("INTACT", "TAMPERED")))
    driver.find_element(By.ID, "l-case").clear()
    driver.find_element(By.ID, "follow").click()  # follow the whole log, then a record arrives
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log tbody tr")) > 0)
    httpx.post(f"{url}/api/v1/messages", content=record(case="CON-LIVE"), timeout=10,
               headers={"X-API-Key": police_key, "Content-Type": "application/xml"}).raise_for_status()
    wait.until(lambda d: "CON-LIVE" in d.find_element(By.ID, "log").text)
    followed = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#log tbody tr") if "CON-LIVE" in r.text]
    return {"followed": str(len(followed)), "refused": refused, "who": who, "reason": reason,
            "injected": str(injected), "status": status,
            "bulk": bulk_button, "times": "|".join(times), "head": head, "readable": readable,
            "raw_hidden": str(raw_hidden), "raw": raw,
            "verdict": driver.find_element(By.ID, "verdict").text}


async def test_an_operator_finds_reads_and_replays_a_dead_letter_in_the_browser(
        api: Running, browser: Any) -> None:  # noqa: F811

    broken = {"CON-1"}

    def proc(m: OutboundMessage) -> DeliveryResult:
        if m.case_number in broken:
            return DeliveryResult.permanent(f"HTTP 400 from receiver: {MARKUP}")
        return DeliveryResult.delivered()

    api.outs["PROC"].handler = proc
    assert (await api.submit("POLICE", record(case="CON-1"))).status_code == 202
    assert (await api.submit("POLICE", record(case="CON-2"))).status_code == 202
    await wait_for(lambda: _delivered(api, "PROC", 2))
    broken.clear()  # the receiver is fixed; the operator replays
    seen = await asyncio.to_thread(_operator_replays_a_dead_letter, browser, api.url, KEYS["OPERATOR"],
                                   KEYS["POLICE"])
    assert "did not accept" in seen["refused"]
    assert seen["who"] == "ops-wang (operator)"
    assert seen["bulk"] == "Replay all dead to PROC"
    assert MARKUP in seen["reason"], "the receiver's answer is shown as the text it is"
    assert seen["injected"] == "0", "markup in a receiver's answer must never become page elements"
    assert seen["verdict"].startswith("INTACT"), seen["verdict"]
    assert int(seen["followed"]) >= 3, "received, validated, routed ... of the new record show up as they happen"
    # times in Asia/Shanghai with the zone named, never bare UTC
    assert "time (Asia/Shanghai)" in seen["head"]
    local = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT\+8")
    assert all(local.fullmatch(t) for t in seen["times"].split("|")), seen["times"]
    first = (await log(api, case="CON-1"))[0]
    shanghai = datetime.fromisoformat(first["time"].replace("Z", "+00:00")).astimezone(ZoneInfo("Asia/Shanghai"))
    assert seen["times"].split("|")[0] == shanghai.strftime("%Y-%m-%d %H:%M:%S GMT+8")
    # the detail as a sentence, the stored JSON behind one click
    assert re.fullmatch(r"[\d,]+ bytes received on channel police-in", seen["readable"]), seen["readable"]
    assert seen["raw_hidden"] == "False" and '"channel": "police-in"' in seen["raw"]
    await wait_for(lambda: _delivered(api, "PROC", 3))
    assert [m.case_number for m in api.outs["PROC"].received].count("CON-1") == 2
    replays = [e for e in await log(api, case="CON-1") if e["action"] == "replayed"]
    assert replays and replays[0]["actor"] == "operator:ops-wang"
    assert "receiver fixed its dossier check" in replays[0]["detail"]
    started = time.monotonic()
    await wait_for(lambda: _dead_count(api, 0))
    assert time.monotonic() - started < 5


async def _dead_count(r: Running, n: int) -> bool:
    return len((await r.call("OPERATOR", "GET", "/api/v1/dead-letters")).json()) == n


async def test_recent_log_entries_are_the_newest_ones(api: Running) -> None:  # noqa: F811
    for case in ("REC-1", "REC-2"):
        assert (await api.submit("POLICE", record(case=case))).status_code == 202

    async def settled() -> bool:  # both delivered: the log stops growing
        return [q["count"] for q in (await api.call("OPERATOR", "GET", "/api/v1/queues")).json()
                if q["state"] == "delivered"] == [2]

    await wait_for(settled)
    head, _ = await api.gateway.store.audit_head()
    r = (await api.call("AUDITOR", "GET", "/api/v1/audit", params={"recent": "true", "limit": 3})).json()
    assert [e["seq"] for e in r["entries"]] == [head - 2, head - 1, head]
    whole = (await api.call("AUDITOR", "GET", "/api/v1/audit", params={"limit": 3})).json()
    assert whole["entries"][0]["seq"] == 1


# -- the statistics page, in Chinese and in English ------------------------------------------------

def _show_stats(driver: Any, url: str) -> None:
    """Open the statistics page on the chosen range and wait for its tables and three charts."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.find_element(By.CSS_SELECTOR, "nav button[data-view='stats']").click()
    driver.execute_script("document.getElementById('s-from').value = arguments[0];"
                          "document.getElementById('s-to').value = arguments[1];"
                          "document.getElementById('s-day').value = arguments[2];",
                          FROM.isoformat(), TO.isoformat(), DAY.isoformat())
    driver.find_element(By.CSS_SELECTOR, "#stats-form button[type='submit']").click()
    shown = f"{FROM.isoformat()} {TO.isoformat()} {DAY.isoformat()}"
    WebDriverWait(driver, 10).until(lambda d: d.find_element(By.ID, "view-stats").get_attribute("data-shown") == shown)
    WebDriverWait(driver, 10).until(lambda d: d.execute_script(
        "return ['chart-records', 'chart-handover', 'chart-rules'].every((id) => {"
        " const c = echarts.getInstanceByDom(document.getElementById(id));"
        " return c && c.getOption().series.length > 0; })"
        " && document.querySelectorAll('#stats-totals tbody tr[data-agency]').length > 0"
        " && document.querySelectorAll('#rankings tr[data-agency]').length > 0"))


def _figures(driver: Any) -> dict[str, Any]:
    """What the page shows, read back from it: table cells as text, the charts' data from ECharts."""
    return driver.execute_script("""
        const cell = (sel) => { const el = document.querySelector(sel); return el ? el.textContent : null; };
        const totals = {};
        const fields = (tr, into) => {
          for (const td of tr.querySelectorAll('td[data-field]')) into[td.dataset.field] = td.textContent;
          return into;
        };
        for (const tr of document.querySelectorAll('#stats-totals tbody tr[data-agency]')) {
          totals[tr.dataset.agency] = fields(tr, {});
        }
        const ranks = {};
        for (const tr of document.querySelectorAll('#rankings tr[data-agency]')) {
          const flag = tr.querySelector('td.flag').textContent;
          ranks[tr.dataset.agency] = fields(tr, {zero: tr.classList.contains('zero'), flag});
        }
        const opt = (id) => echarts.getInstanceByDom(document.getElementById(id)).getOption();
        return {totals, ranks, records: opt('chart-records').series.map((s) => [s.name, s.data]),
                rules: [opt('chart-rules').yAxis[0].data, opt('chart-rules').series[0].data],
                handover: opt('chart-handover').series.map((s) => s.data),
                zero: cell('#ranking-zero'), state: cell('#ranking-state'), title: cell('#ranking-title'),
                heads: [...document.querySelectorAll('#stats-totals thead th')].map((th) => th.textContent),
                nav: cell("nav button[data-view='stats']"), lang: document.documentElement.lang,
                csp: window.cspViolations || null};
    """)


def _screenshot(driver: Any, path: Path) -> None:
    """The whole statistics page as a PNG (the window made as tall as the page, no tooltip open)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    ActionChains(driver).move_to_element(driver.find_element(By.TAG_NAME, "h1")).perform()  # off the charts
    driver.execute_script("for (const id of ['chart-records', 'chart-handover', 'chart-rules'])"
                          " echarts.getInstanceByDom(document.getElementById(id)).dispatchAction({type: 'hideTip'});")
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height + 200, 900), 4000))  # the window's frame takes some
    driver.execute_script("window.dispatchEvent(new Event('resize'))")
    time.sleep(0.5)  # ECharts redraws on resize
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 900)


def _statistics_in_both_languages(driver: Any, url: str, key: str, shots: Path) -> dict[str, Any]:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    wait = WebDriverWait(driver, 10)
    driver.get(f"{url}/console")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")  # a browser that never chose
    driver.get(f"{url}/console")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#signin h2").text == "登录")
    signin = driver.find_element(By.CSS_SELECTOR, "#signin p").text
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    driver.execute_script("window.cspViolations = [];"
                          "document.addEventListener('securitypolicyviolation', (e) => "
                          "window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
    _show_stats(driver, url)
    driver.execute_script("echarts.getInstanceByDom(document.getElementById('chart-records'))"
                          ".on('showtip', () => { window.tipShown = true; });")
    ActionChains(driver).move_to_element(driver.find_element(By.ID, "chart-records")).perform()
    ActionChains(driver).move_by_offset(10, 5).perform()  # a tooltip: drawn on the canvas, not written as HTML
    wait.until(lambda d: d.execute_script("return window.tipShown === true"))
    tooltip_html = driver.execute_script("return document.getElementById('chart-records').innerText")
    zh = _figures(driver)
    _screenshot(driver, shots / "console-stats-zh.png")
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "nav button[data-view='stats']").text == "Statistics")
    wait.until(lambda d: "Ranking of" in d.find_element(By.ID, "ranking-title").text)
    switched = _figures(driver)
    driver.refresh()  # the choice is this browser's: it survives a reload (the key is the tab's)
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    driver.execute_script("window.cspViolations = [];"
                          "document.addEventListener('securitypolicyviolation', (e) => "
                          "window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
    _show_stats(driver, url)
    en = _figures(driver)
    _screenshot(driver, shots / "console-stats-en.png")
    driver.execute_script("document.getElementById('s-from').value = '2020-01-01';")  # more than the API allows
    driver.find_element(By.CSS_SELECTOR, "#stats-form button[type='submit']").click()
    wait.until(lambda d: "400" in d.find_element(By.ID, "status").text)
    too_long = driver.find_element(By.ID, "status").text
    return {"signin": signin, "zh": zh, "switched": switched, "en": en, "tooltip_html": tooltip_html,
            "too_long": too_long}


def _half_up(x: float) -> Decimal:
    """One decimal as the browser rounds (toFixed, Intl): the float's exact value, a tie goes up."""
    return Decimal(x).quantize(Decimal("0.1"), ROUND_HALF_UP)


def _number(text: str) -> float:
    return float(text.replace(",", "").rstrip("%"))


async def test_the_statistics_page_shows_the_apis_figures_in_chinese_then_english(
        city_api: Running, browser: Any, tmp_path: Path) -> None:
    api = city_api
    params = {"from": FROM.isoformat(), "to": TO.isoformat()}
    stats = (await api.call("OPERATOR", "GET", "/api/v1/stats", params=params)).json()
    ranking = (await api.call("OPERATOR", "GET", "/api/v1/rankings", params={"day": DAY.isoformat()})).json()
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path)  # =docs to renew the README's pictures
    seen = await asyncio.to_thread(_statistics_in_both_languages, browser, api.url, KEYS["OPERATOR"], shots)
    zh, en = seen["zh"], seen["en"]

    # zh-CN by default
    assert zh["lang"] == "zh-CN" and zh["nav"] == "统计" and "运维或审计" in seen["signin"]
    assert "发出" in zh["heads"] and "首次通过率" in zh["heads"] and zh["title"] == f"{DAY.isoformat()} 排名"
    # the figures on the page are the API's (every agency's totals, to the digit shown)
    totals = {a["agency"]: a["total"] for a in stats["agencies"]}
    compared = 0
    for code, shown in zh["totals"].items():
        t = totals[code]
        for field in ("sent", "received", "accepted", "blocked", "warned", "resends",
                      "clocks_on_time", "clocks_late", "clocks_overdue_now"):
            assert _number(shown[field]) == t[field], (code, field)
            compared += 1
        for field in ("handover_ms_p50", "handover_ms_p90"):
            assert shown[field] == ("—" if t[field] is None else f"{_half_up(t[field] / 1000):,}"), (code, field)
        for field in ("first_pass_rate", "dossier_complete_rate"):
            assert shown[field] == ("—" if t[field] is None else f"{_half_up(t[field] * 100)}%"), (code, field)
            compared += 1
    assert set(zh["totals"]) == set(totals) and compared >= 5 * len(totals)
    for field in ("clocks_on_time", "clocks_late", "clocks_overdue_now"):  # the time limits compared were not all 0
        assert sum(t[field] for t in totals.values()) > 0, field
    assert "按期答复" in zh["heads"] and "当前超期" in zh["heads"]
    assert zh["totals"]["POLICE"]["sent"] == f"{totals['POLICE']['sent']:,}"
    assert zh["totals"]["PSB-YQ"]["first_pass_rate"] == "—", "no data is a dash, never 0"
    # charts: records per day per agency, hand-over percentiles, findings by rule
    by_day = {a["name"]: [d["sent"] for d in a["days"]] for a in stats["agencies"]}
    assert dict(zh["records"]) == by_day
    rules: dict[str, int] = {}
    for a in stats["agencies"]:
        for r in a["total"]["top_rules"]:
            rules[r["rule"]] = rules.get(r["rule"], 0) + r["count"]
    assert dict(zip(*zh["rules"], strict=True)) == rules
    assert zh["handover"][0] == [round(a["total"]["handover_ms_p50"] / 1000, 1) for a in stats["agencies"]
                                 if a["total"]["handover_ms_p50"] is not None]
    # the ranking: every unit, its rank and records; zero activity and 0% rates highlighted and named
    units = [u for r in ranking["roles"] for u in r["units"]]
    for u in units:
        shown = zh["ranks"][u["agency"]]
        assert int(shown["rank"]) == u["rank"] and _number(shown["records"]) == u["records"]
        assert shown["zero"] == (u["zero_activity"] or u["zero_rate"])
        if u["zero_rate"]:
            assert "比率为 0%" in shown["flag"] and u["name"] in zh["zero"], u
    assert zh["ranks"]["PSB-YQ"]["zero"] and "当日无活动" in zh["ranks"]["PSB-YQ"]["flag"]
    assert "阳曲县公安局" in zh["zero"] and "已冻结" in zh["state"]

    # switched to English: labels change, figures stay; the choice survives a reload
    for page in (seen["switched"], en):
        assert page["lang"] == "en" and page["nav"] == "Statistics"
        assert "sent" in page["heads"] and "first-pass rate" in page["heads"] and "发出" not in page["heads"]
        assert "overdue now" in page["heads"]
        assert page["title"] == f"Ranking of {DAY.isoformat()}" and "frozen" in page["state"]
        assert page["totals"] == zh["totals"] and page["rules"] == zh["rules"]
        assert "no activity" in page["ranks"]["PSB-YQ"]["flag"]
    assert dict(en["records"]) == {a["agency"]: v for a, v in zip(stats["agencies"], by_day.values(), strict=True)}
    assert seen["tooltip_html"].strip() == "", "the tooltip is no HTML element holding the agencies' names"
    # the API's refusal reads as its sentence, not as JSON
    assert "一次最多查询 400 天 / at most 400 days at once" in seen["too_long"] and "{" not in seen["too_long"]
    # ECharts ran under the console's policy without one refusal
    assert zh["csp"] == [] and en["csp"] == []
    for lang in ("zh", "en"):
        png = (shots / f"console-stats-{lang}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 50_000


def _log_in_chinese(driver: Any, url: str, key: str, case: str, before: str, since: str,
                    shot: Path) -> dict[str, str]:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    wait = keyed_console(driver, url, key)

    def search() -> dict[str, str]:
        driver.find_element(By.CSS_SELECTOR, "nav button[data-view='log']").click()
        driver.find_element(By.ID, "l-case").clear()
        driver.find_element(By.ID, "l-case").send_keys(case)
        driver.find_element(By.CSS_SELECTOR, "#log-form button[type='submit']").click()
        wait.until(lambda d: any("已退回" in r.text for r in d.find_elements(By.CSS_SELECTOR, "#log tbody tr")))
        rows = driver.find_elements(By.CSS_SELECTOR, "#log tbody tr")
        rejected = next(r for r in rows if "已退回" in r.text)
        return {"head": driver.find_element(By.CSS_SELECTOR, "#log thead").text,
                "time": rows[0].find_element(By.CSS_SELECTOR, "td.time").text,
                "received": next(r for r in rows if "收到" in r.text).find_element(By.CSS_SELECTOR, ".readable").text,
                "findings": rejected.find_element(By.CSS_SELECTOR, ".readable").text}

    shanghai = search()
    driver.find_element(By.CSS_SELECTOR, "#log tbody td.detail details summary").click()  # one raw JSON open
    driver.save_screenshot(str(shot))
    driver.find_element(By.ID, "verify").click()
    wait.until(lambda d: d.find_element(By.ID, "verdict").text.startswith(("完整", "已被篡改")))
    shanghai["verdict"] = driver.find_element(By.ID, "verdict").text
    # until and since are typed as Shanghai's wall clock: a minute before the first entry finds none
    driver.find_element(By.ID, "l-until").send_keys(before)
    driver.find_element(By.CSS_SELECTOR, "#log-form button[type='submit']").click()
    wait.until(lambda d: "没有匹配的条目" in d.find_element(By.ID, "log").text)
    driver.find_element(By.ID, "l-until").clear()
    driver.find_element(By.ID, "l-since").send_keys(since)
    driver.find_element(By.CSS_SELECTOR, "#log-form button[type='submit']").click()
    wait.until(lambda d: "已退回" in d.find_element(By.ID, "log").text)
    driver.find_element(By.ID, "l-since").clear()
    zone = driver.find_element(By.ID, "zone")
    zone.clear()
    zone.send_keys("Asia/Urumqi\n")
    driver.find_element(By.TAG_NAME, "h1").click()  # the field's change event
    driver.refresh()  # the zone is this browser's choice, like the language
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    urumqi = search()
    driver.execute_script("localStorage.clear();")
    return {**{f"sh_{k}": v for k, v in shanghai.items()}, **{f"ur_{k}": v for k, v in urumqi.items()}}


async def test_the_log_reads_in_chinese_in_the_chosen_time_zone(
        api: Running, browser: Any, tmp_path: Path) -> None:  # noqa: F811
    example = ROOT / "standards/case-exchange/v1/examples/01-request-arrest-approval.xml"
    body = example.read_bytes().replace(b"14010519850312203X", b"140105198503122031")  # a wrong check digit
    body = re.sub(rb"<CaseNumber>[^<]*</CaseNumber>", b"<CaseNumber>ZH-1</CaseNumber>", body)
    scan = "讯问笔录".encode() * 300  # listed by the record with another hash: DOS-01 blocks it too
    receipt = await api.gateway.inbound["police-in"].submit(  # type: ignore[attr-defined]
        body, file_name="提请批准逮捕书.xml",
        attachments=(Attachment("讯问笔录.pdf", hashlib.sha256(scan).hexdigest(), len(scan), "application/pdf"),))
    assert receipt.status == MessageStatus.REJECTED
    entries = await log(api, case="ZH-1")
    problems = next(json.loads(e["detail"])["problems"] for e in entries if e["action"] == "rejected")
    assert problems and all(p["message_zh"] for p in problems)
    first = datetime.fromisoformat(entries[0]["time"].replace("Z", "+00:00"))
    local = first.astimezone(ZoneInfo("Asia/Shanghai"))
    seen = await asyncio.to_thread(_log_in_chinese, browser, api.url, KEYS["AUDITOR"], "ZH-1",
                                   (local - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S"),
                                   local.strftime("%Y-%m-%d %H:%M:%S"),
                                   Path(os.environ.get("CONSOLE_SCREENSHOTS") or tmp_path) / "console-log-zh.png")
    assert seen["sh_head"].startswith("序号 时间（Asia/Shanghai）") and seen["sh_time"].endswith(" GMT+8")
    assert re.fullmatch(r"经通道 police-in 收到 [\d,]+ 字节，文件 提请批准逮捕书.xml\n"
                        r"文件\s+类型\s+字节\s+SHA-256\n讯问笔录.pdf\s+application/pdf\s+3,600\s+\w{16}…",
                        seen["sh_received"]), seen["sh_received"]
    assert {"ID-01", "DOS-01"} <= {p["rule"] for p in problems}
    for p in problems:  # each finding in the reader's language, with its rule
        assert p["rule"] in seen["sh_findings"] and p["message_zh"] in seen["sh_findings"]
    assert p["message"] not in seen["sh_findings"]
    intact = re.compile(r"完整（INTACT）：第 1 至 \d+ 条（共 \d+ 条）未被改动，\d+ 个签名检查点相符.*")
    assert intact.fullmatch(seen["sh_verdict"]), seen["sh_verdict"]
    assert "时间（Asia/Urumqi）" in seen["ur_head"] and seen["ur_time"].endswith(" GMT+6")
    assert seen["ur_time"] == first.astimezone(ZoneInfo("Asia/Urumqi")).strftime("%Y-%m-%d %H:%M:%S GMT+6")


def _someone_reads_a_case(driver: Any, url: str, key: str, number: str) -> dict[str, Any]:
    """Sign in, open the case view, search a case number, read the timeline's rows in Chinese, then in English."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait = keyed_console(driver, url, key)
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view='case']").click()
    driver.find_element(By.ID, "c-number").send_keys(number)
    driver.find_element(By.CSS_SELECTOR, "#case-form button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#case tbody tr")) == 4)

    def table() -> tuple[list[str], list[list[str]]]:
        heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#case thead th")]
        return heads, [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                       for tr in driver.find_elements(By.CSS_SELECTOR, "#case tbody tr")]

    heads, rows = table()
    classes = [tr.get_attribute("class") for tr in driver.find_elements(By.CSS_SELECTOR, "#case tbody tr")]
    injected = len(driver.find_elements(By.ID, "injected"))
    Select(driver.find_element(By.ID, "lang")).select_by_value("en")
    wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#case thead th:nth-child(2)").text == "received")
    en_heads, en_rows = table()
    driver.find_element(By.ID, "c-number").clear()
    driver.find_element(By.ID, "c-number").send_keys("NO-SUCH-CASE")
    driver.find_element(By.CSS_SELECTOR, "#case-form button").click()
    wait.until(lambda d: "no case NO-SUCH-CASE" in d.find_element(By.ID, "case").text)
    return {"rows": rows, "heads": heads, "classes": classes, "injected": injected, "en_heads": en_heads,
            "en_rows": en_rows}


async def test_a_case_timeline_is_searched_and_read_in_the_browser(api: Running, browser: Any) -> None:  # noqa: F811
    case = "CON-CASE-1"
    doc = b"<Number>N-0</Number>"
    marked = record(case=case).replace(doc, b"<Number>&lt;img id='injected' src='x'&gt;</Number>")
    assert (await api.submit("POLICE", marked)).status_code == 202
    indictment = record(case=case, stage="trial", action="indictment", sender="PROC")
    assert (await api.submit("PROC", indictment)).status_code == 202
    await wait_for(lambda: _delivered(api, "COURT", 1))
    judgment = record(case=case, stage="trial", action="judgment", sender="COURT")
    assert (await api.submit("COURT", judgment)).status_code == 202
    blocked = record(case=case, extra="again").replace(b"11010519491231002X", b"110105194912310021")
    assert (await api.submit("POLICE", blocked)).status_code == 422
    await wait_for(lambda: _delivered(api, "POLICE", 2))  # the judgment and the defect notice
    await wait_for(lambda: _delivered(api, "PROC", 2))
    seen = await asyncio.to_thread(_someone_reads_a_case, browser, api.url, KEYS["AUDITOR"], case)
    assert seen["heads"][:4] == ["序号", "收到", "阶段", "动作"]
    transfer, indicted, judged, refused = seen["rows"]
    assert transfer[2] == "审查起诉" and transfer[3] == "移送审查起诉"
    assert transfer[4] == "POLICE → PROC" and transfer[5].startswith("PROC: ") and "未送达" not in transfer[5]
    assert transfer[5].endswith("GMT+8"), "times in the reader's zone, named"
    assert "起诉意见书 <img id='injected' src='x'>" in transfer[7], "shown as text"
    assert seen["injected"] == 0, "markup in a record must never become page elements"
    assert transfer[6] != "-" and indicted[6] != "-", "each answered by its receiver's next record"
    assert indicted[3] == "提起公诉" and indicted[4] == "PROC → COURT"
    assert judged[4] == "COURT → PROC, POLICE" and judged[9] == "已接收" and judged[6] == "-"
    assert refused[9].startswith("已拦截") and "ID-01" in refused[9]
    assert seen["classes"] == ["", "", "", "blocked"]
    assert seen["en_heads"][:4] == ["no.", "received", "stage", "action"]
    en_transfer = seen["en_rows"][0]
    assert en_transfer[2] == "prosecution review" and en_transfer[3] == "transfer for prosecution"
    assert seen["en_rows"][3][9].startswith("blocked")
