"""The operators' console (/console) on a real uvicorn server, and in a real headless Chromium.

The page must only ever call operations the API has, write untrusted text as text, forbid
inline script, and let an operator find a dead letter, read why, and replay it to its
destination, with the reason landing in the exchange log.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.api.console import ASSETS, asset
from gateway.model import DeliveryResult, OutboundMessage

from .support.api import KEYS, Running, log
from .support.records import record
from .support.waiting import wait_for

JS = asset("console.js").decode() + asset("cases.js").decode()


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
        assert sink not in JS, f"console.js uses {sink}; untrusted text must go through textContent"


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
    driver.find_element(By.ID, "verify").click()
    wait.until(lambda d: d.find_element(By.ID, "verdict").text.startswith(("INTACT", "TAMPERED")))
    driver.find_element(By.ID, "follow").click()  # follow the log, then a record arrives
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#log tbody tr")) > 0)
    httpx.post(f"{url}/api/v1/messages", content=record(case="CON-LIVE"), timeout=10,
               headers={"X-API-Key": police_key, "Content-Type": "application/xml"}).raise_for_status()
    wait.until(lambda d: "CON-LIVE" in d.find_element(By.ID, "log").text)
    followed = [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#log tbody tr") if "CON-LIVE" in r.text]
    return {"followed": str(len(followed)), "refused": refused, "who": who, "reason": reason,
            "injected": str(injected), "status": status,
            "bulk": bulk_button,
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


def _someone_reads_a_case(driver: Any, url: str, key: str, number: str) -> dict[str, Any]:
    """Sign in, open the case view, search a case number, read the timeline's rows."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 10)
    driver.get(f"{url}/console")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view='case']").click()
    driver.find_element(By.ID, "c-number").send_keys(number)
    driver.find_element(By.CSS_SELECTOR, "#case-form button").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#case tbody tr")) == 4)
    rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
            for tr in driver.find_elements(By.CSS_SELECTOR, "#case tbody tr")]
    heads = [th.text for th in driver.find_elements(By.CSS_SELECTOR, "#case thead th")]
    classes = [tr.get_attribute("class") for tr in driver.find_elements(By.CSS_SELECTOR, "#case tbody tr")]
    injected = len(driver.find_elements(By.ID, "injected"))
    driver.find_element(By.ID, "c-number").clear()
    driver.find_element(By.ID, "c-number").send_keys("NO-SUCH-CASE")
    driver.find_element(By.CSS_SELECTOR, "#case-form button").click()
    wait.until(lambda d: "no case NO-SUCH-CASE" in d.find_element(By.ID, "case").text)
    return {"rows": rows, "heads": heads, "classes": classes, "injected": injected}


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
    assert seen["heads"][:4] == ["#", "收到 received", "阶段 stage", "动作 action"]
    transfer, indicted, judged, refused = seen["rows"]
    assert transfer[2] == "审查起诉 prosecution review" and transfer[3] == "移送审查起诉 transfer for prosecution"
    assert transfer[4] == "POLICE → PROC" and transfer[5].startswith("PROC: ") and "pending" not in transfer[5]
    assert "起诉意见书 recommendation for prosecution <img id='injected' src='x'>" in transfer[7], "shown as text"
    assert seen["injected"] == 0, "markup in a record must never become page elements"
    assert transfer[6] != "-" and indicted[6] != "-", "each answered by its receiver's next record"
    assert indicted[3] == "提起公诉 indictment" and indicted[4] == "PROC → COURT"
    assert judged[4] == "COURT → PROC, POLICE" and judged[9] == "已接收 accepted" and judged[6] == "-"
    assert refused[9].startswith("已拦截 blocked") and "ID-01" in refused[9]
    assert seen["classes"] == ["", "", "", "blocked"]
