"""Statutory time-limit clocks in a running gateway, on SQLite and PostgreSQL, with a fake clock.

Every shipped limit: it starts on the starting record's confirmed delivery, stops with the
responsible agency's answer, is extended, restarted after a return, and a late answer is logged
with its days. Warnings (approaching, overdue) go once to the agency and its supervisor, and stay
in the log when the answer comes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from adapters.memory import MemoryOutbound
from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import ClockRow
from gateway.clocktime import FakeClock
from gateway.config import parse_config
from gateway.lawcalendar import TZ
from gateway.model import DeliveryResult, MessageStatus, Receipt, new_id
from gateway.runtime import Gateway

from .support.api import KEYS, Running
from .support.browser import signed_in_view
from .support.config import base_config
from .support.records import record
from .support.stores import store_settings

ROOT = Path(__file__).resolve().parent.parent
ARREST_REQUEST = (ROOT / "standards/case-exchange/v1/examples/01-request-arrest-approval.xml").read_bytes()
START = dt.datetime(2026, 3, 2, 10, 0, tzinfo=TZ).timestamp()  # Monday 2 March 2026, 10:00 in Beijing
DAY = 86400.0
AGENCIES = ("POLICE", "PROC", "COURT", "SUPV")


def clocks_config(data_dir: Path) -> dict[str, Any]:
    cfg = base_config(data_dir)
    cfg["agencies"][2]["inbound"] = [{"name": "court-in", "adapter": "memory"}]
    cfg["agencies"].append({"code": "SUPV", "name": "案件管理办公室", "role": "other",
                            "outbound": {"name": "supv-out", "adapter": "memory"}})
    cfg["routes"] += [
        {"stage": "arrest-review", "action": "request-arrest-approval", "to": ["PROC"]},
        {"stage": "arrest-review", "action": "approve-arrest", "to": ["POLICE"]},
        {"stage": "arrest-review", "action": "refuse-arrest", "to": ["POLICE"]},
        {"stage": "prosecution-review", "action": "return-supplementary-investigation", "to": ["POLICE"]},
        {"stage": "prosecution-review", "action": "extend-time-limit", "to": ["POLICE"]},
        {"stage": "trial", "action": "extend-time-limit", "to": ["PROC"]},
    ]
    cfg["clocks"] = {"supervisors": [{"limit": "arrest-decision", "to": ["SUPV"]}], "approaching": {"days": 2}}
    return cfg


def with_documents(body: bytes, *types: str) -> bytes:
    docs = "".join(f"<Document><Type>{t}</Type><Number>X-{t}</Number><Date>2026-03-01</Date><Issuer>X</Issuer>"
                   "</Document>" for t in types)
    return body.replace(b"</Documents>", docs.encode() + b"</Documents>", 1)


def arrest_request(case: str) -> bytes:
    return ARREST_REQUEST.replace(b"A1401052026030001", case.encode())


@dataclass
class Node:
    gw: Gateway
    outs: dict[str, MemoryOutbound]
    clock: FakeClock

    async def send(self, sender: str, body: bytes) -> Receipt:
        channel = {"POLICE": "police-in", "PROC": "proc-in", "COURT": "court-in"}[sender]
        r = await self.gw.inbound[channel].submit(body)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.ACCEPTED, r.reasons
        await self.settled()
        return r

    async def settled(self) -> None:
        """Until every delivery is delivered (the clocks start in that write)."""
        for _ in range(500):
            depths = await self.gw.store.queue_depths()
            if all(str(d.state) in ("delivered", "dead", "discarded") for d in depths):
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"deliveries not finished: {depths}")

    async def clocks(self, case: str) -> list[ClockRow]:
        return sorted(await self.gw.store.list_clocks(case=case, now=self.clock.now()), key=lambda c: c.created_at)

    async def log(self, case: str, prefix: str = "clock-") -> list[tuple[str, dict[str, Any]]]:
        return [(e.action, json.loads(e.detail)) for e in await self.gw.store.audit_entries(case_number=case)
                if e.action.startswith(prefix)]

    async def scan(self) -> list[tuple[str, str]]:
        assert self.gw.clock_scanner is not None
        issued = [(i.kind, ",".join(i.recipients)) for i in await self.gw.clock_scanner.scan_once()]
        await self.settled()
        return issued

    def notices(self, agency: str) -> list[etree._Element]:
        return [etree.fromstring(m.body) for m in self.outs[agency].received if b"TIME-LIMIT-" in m.body]


@pytest.fixture
async def node(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Node]:
    data = clocks_config(tmp_path / "data")
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    outs = {code: MemoryOutbound() for code in AGENCIES}
    clock = FakeClock(START)
    gw = Gateway(parse_config(data), outbound=outs, clock=clock)  # type: ignore[arg-type]
    await gw.start()
    try:
        yield Node(gw, outs, clock)
    finally:
        await gw.stop()


def day(c: ClockRow) -> str:
    assert c.last_day is not None
    return c.last_day


# -- arrest decision (7 days, custody: no holiday rule) ----------------------------------------------------
async def test_arrest_decision_starts_on_delivery_and_stops_with_the_answer(node: Node) -> None:
    case = "A2026-ARR-0001"
    await node.send("POLICE", arrest_request(case))
    [c] = await node.clocks(case)
    assert (c.limit_id, c.agency, c.state, c.started_at) == ("arrest-decision", "PROC", "running", START)
    assert day(c) == "2026-03-09"  # Monday + 7 days; the start day not counted
    node.clock.advance(3 * DAY)
    await node.send("PROC", record(case, "arrest-review", "approve-arrest", sender="PROC"))
    [c] = await node.clocks(case)
    assert (c.state, c.late_days, c.stop_action) == ("stopped", None, "approve-arrest")
    node.clock.advance(30 * DAY)
    assert await node.scan() == []  # a stopped clock is never warned about
    assert await node.log(case) == []  # an answer in time needs no entry of its own


async def test_arrest_decision_custody_period_ends_on_a_holiday(node: Node) -> None:
    node.clock.t = dt.datetime(2026, 9, 25, 10, tzinfo=TZ).timestamp()  # Friday; +7 = 2 October, National Day
    await node.send("POLICE", arrest_request("A2026-ARR-0002"))
    [c] = await node.clocks("A2026-ARR-0002")
    assert day(c) == "2026-10-02"


async def test_warnings_go_once_to_the_agency_and_supervisor_and_a_late_answer_is_logged(node: Node) -> None:
    case = "A2026-ARR-0003"
    await node.send("POLICE", arrest_request(case))
    assert await node.scan() == []
    node.clock.advance(5 * DAY + 3600)  # Saturday 7 March 11:00: more than 2 days left
    assert await node.scan() == []
    node.clock.advance(DAY)  # Sunday 8 March 11:00: less than 2 days before the last day (9 March) ends
    assert await node.scan() == [("approaching", "PROC,SUPV")]
    assert await node.scan() == []  # once
    node.clock.advance(2 * DAY)  # Tuesday 10 March: the last day is over
    assert await node.scan() == [("overdue", "PROC,SUPV")]
    node.clock.advance(DAY)
    assert await node.scan() == []
    for agency in ("PROC", "SUPV"):
        got = node.notices(agency)
        assert [n.findtext("{*}Defect/{*}Rule") for n in got] == ["TIME-LIMIT-APPROACHING", "TIME-LIMIT-OVERDUE"]
        assert all(n.findtext("{*}CaseNumber") == case for n in got)
        assert "审查批准逮捕期限将于2026-03-09届满" in got[0].findtext("{*}Defect/{*}MessageZh", "")
        assert "已超期1日" in got[1].findtext("{*}Defect/{*}MessageZh", "")
    node.clock.advance(DAY)  # Thursday 12 March
    await node.send("PROC", record(case, "arrest-review", "refuse-arrest", sender="PROC"))
    [c] = await node.clocks(case)
    assert (c.state, c.late_days) == ("stopped", 3)
    log = await node.log(case)
    assert [a for a, _ in log] == ["clock-approaching", "clock-overdue", "clock-answered-late"]
    assert log[2][1]["days_late"] == 3 and log[2][1]["note_zh"] == "逾期3日作出答复"
    assert log[1][1]["notified"] == ["PROC", "SUPV"]


async def test_a_scan_after_a_restart_issues_nothing_twice(node: Node, tmp_path: Path) -> None:
    case = "A2026-ARR-0004"
    await node.send("POLICE", arrest_request(case))
    node.clock.advance(10 * DAY)
    assert await node.scan() == [("overdue", "PROC,SUPV")]  # past due: the approaching warning is moot
    scanner = node.gw.clock_scanner
    assert scanner is not None
    [c] = await node.clocks(case)
    # another scanner holding the same due clock (a second node, or this one before it stored the claim)
    again = await scanner.store.issue_clock_warning(c, "overdue", None, [("PROC", b"<x/>", "x.xml")],
                                                    AuditEvent("clock-overdue", "other-node", new_id(), case))
    assert again is False
    assert len(node.notices("PROC")) == 1


# -- prosecution review (1 month, +15 days; plea cases 10 days, +5) -----------------------------------------
async def test_prosecution_review_month_and_extension_once(node: Node) -> None:
    case = "A2026-PR-0001"
    await node.send("POLICE", record(case))
    [c] = await node.clocks(case)
    assert (c.limit_id, c.terms, c.agency, day(c)) == ("prosecution-review", "prosecution-review", "PROC",
                                                      "2026-04-02")
    # only the responsible agency's own record extends its clock
    await node.send("COURT", with_documents(record(case, "trial", "extend-time-limit", sender="COURT"),
                                            "review-extension-decision"))
    [c] = await node.clocks(case)
    assert day(c) == "2026-04-02"
    ext = with_documents(record(case, action="extend-time-limit", sender="PROC"), "review-extension-decision")
    await node.send("PROC", ext)
    [c] = await node.clocks(case)
    assert day(c) == "2026-04-17" and json.loads(c.extended) == [0]  # 2 April + 15 days
    await node.send("PROC", ext.replace(b"Note>", b"Note>again ", 1))
    [c] = await node.clocks(case)
    assert day(c) == "2026-04-17"  # at most once
    assert [a for a, _ in await node.log(case)] == ["clock-extended", "clock-extension-refused"]
    await node.send("PROC", record(case, "trial", "indictment", sender="PROC"))
    c = (await node.clocks(case))[0]
    assert (c.state, c.stop_action, c.late_days) == ("stopped", "indictment", None)


async def test_prosecution_review_plea_case_ten_days_fifteen_with_extension(node: Node) -> None:
    case = "A2026-PR-0002"
    await node.send("POLICE", with_documents(record(case), "plea-statement"))
    [c] = await node.clocks(case)
    assert (c.terms, day(c)) == ("prosecution-review/plea", "2026-03-12")
    await node.send("PROC", with_documents(record(case, action="extend-time-limit", sender="PROC"),
                                           "review-extension-decision"))
    [c] = await node.clocks(case)
    assert day(c) == "2026-03-17"  # 15 days


async def test_return_for_supplementary_investigation_and_resend_restart_the_review(node: Node) -> None:
    case = "A2026-PR-0003"
    await node.send("POLICE", record(case))
    node.clock.advance(20 * DAY)
    await node.send("PROC", record(case, action="return-supplementary-investigation", sender="PROC"))
    review, supp = await node.clocks(case)
    assert (review.state, review.stop_action) == ("stopped", "return-supplementary-investigation")
    assert (supp.limit_id, supp.agency, supp.state, supp.period) == ("supplementary-investigation", "POLICE",
                                                                     "running", 1)
    assert day(supp) == "2026-04-22"  # returned Sunday 22 March + 1 month
    node.clock.advance(10 * DAY)
    await node.send("POLICE", record(case, extra="resent after supplementary investigation"))
    review1, supp1, review2 = await node.clocks(case)
    assert supp1.state == "stopped" and review2.period == 2 and review2.state == "running"
    assert day(review2) == "2026-05-06"  # a new month from Wednesday 1 April: 1 May is Labour Day (to 5 May)
    assert [a for a, _ in await node.log(case)] == ["clock-returned"]  # the return says a new period will run
    # a second return is allowed, a third is not (supplementary investigation at most twice)
    await node.send("PROC", record(case, action="return-supplementary-investigation", sender="PROC", extra="2"))
    await node.send("POLICE", record(case, extra="resent 2"))
    await node.send("PROC", record(case, action="return-supplementary-investigation", sender="PROC", extra="3"))
    supps = [c for c in await node.clocks(case) if c.limit_id == "supplementary-investigation"]
    assert [c.period for c in supps] == [1, 2]
    assert [a for a, _ in await node.log(case)][-1] == "clock-period-refused"


async def test_supplementary_investigation_late_resend(node: Node) -> None:
    case = "A2026-SI-0001"
    await node.send("POLICE", record(case))
    await node.send("PROC", record(case, action="return-supplementary-investigation", sender="PROC"))
    node.clock.advance(40 * DAY)  # one month from 2 March ends Thursday 2 April
    assert [k for k, _ in await node.scan()] == ["overdue"]
    await node.send("POLICE", record(case, extra="late"))
    supp = next(c for c in await node.clocks(case) if c.limit_id == "supplementary-investigation")
    assert (supp.state, supp.late_days) == ("stopped", 9)  # answered Saturday 11 April


# -- first-instance trial (2 months, up to 3; expedited 10 days, 15) -------------------------------------------
async def test_first_instance_trial_extension_and_late_judgment(node: Node) -> None:
    case = "A2026-TR-0001"
    await node.send("PROC", record(case, "trial", "indictment", sender="PROC"))
    [c] = await node.clocks(case)
    assert (c.limit_id, c.agency, day(c)) == ("first-instance-trial", "COURT", "2026-05-06")  # 2 May: holiday
    await node.send("COURT", with_documents(record(case, "trial", "extend-time-limit", sender="COURT"),
                                            "trial-extension-approval"))
    [c] = await node.clocks(case)
    assert day(c) == "2026-06-02"  # 2 March + 3 months
    node.clock.advance(100 * DAY)  # Wednesday 10 June
    await node.send("COURT", record(case, "trial", "judgment", sender="COURT"))
    [c] = await node.clocks(case)
    assert (c.state, c.late_days) == ("stopped", 8)
    assert [a for a, _ in await node.log(case)] == ["clock-extended", "clock-answered-late"]


async def test_expedited_procedure_ten_days_fifteen_with_extension(node: Node) -> None:
    case = "A2026-TR-0002"
    await node.send("PROC", with_documents(record(case, "trial", "indictment", sender="PROC"),
                                           "expedited-procedure-recommendation"))
    [c] = await node.clocks(case)
    assert (c.terms, day(c)) == ("first-instance-trial/expedited", "2026-03-12")
    await node.send("COURT", with_documents(record(case, "trial", "extend-time-limit", sender="COURT"),
                                            "trial-extension-approval"))
    [c] = await node.clocks(case)
    assert day(c) == "2026-03-17"
    await node.send("COURT", record(case, "trial", "judgment", sender="COURT"))
    assert (await node.clocks(case))[0].state == "stopped"


async def test_clock_waits_for_the_delivery(node: Node) -> None:
    """A starting record not yet delivered starts nothing: the agency cannot act on what it has not got."""
    node.outs["PROC"].handler = lambda m: DeliveryResult.transient("down")
    case = "A2026-ARR-0009"
    r = await node.gw.inbound["police-in"].submit(arrest_request(case))  # type: ignore[attr-defined]
    assert r.status == MessageStatus.ACCEPTED
    await asyncio.sleep(0.2)
    [c] = await node.clocks(case)
    assert (c.state, c.started_at, day(c)) == ("pending", None, "2026-03-09")  # as if delivered today
    node.clock.advance(2 * DAY)
    node.outs["PROC"].handler = None
    await node.settled()
    [c] = await node.clocks(case)
    assert (c.state, c.started_at, c.due_at) == ("running", START + 2 * DAY, None)  # delivered two days later:
    assert await node.scan() == []  # the next scan counts its last day again, from the day of delivery
    [c] = await node.clocks(case)
    assert (c.state, day(c)) == ("running", "2026-03-11")


# -- the read API and /metrics ------------------------------------------------------------------------------
async def test_clocks_api_operators_see_all_agencies_their_own(api: Running) -> None:
    for case in ("A2026-API-0001", "A2026-API-0002"):
        assert (await api.submit("POLICE", record(case))).status_code == 202
    for _ in range(300):
        got = (await api.call("OPERATOR", "GET", "/api/v1/clocks", params={"state": "running"})).json()["clocks"]
        if len(got) == 2:
            break
        await asyncio.sleep(0.02)
    assert {c["case_number"] for c in got} == {"A2026-API-0001", "A2026-API-0002"}
    assert all(c["agency"] == "PROC" and c["limit_id"] == "prosecution-review" and not c["overdue"] for c in got)
    assert len((await api.call("AUDITOR", "GET", "/api/v1/clocks")).json()["clocks"]) == 2
    assert len((await api.call("PROC", "GET", "/api/v1/clocks")).json()["clocks"]) == 2
    # POLICE is responsible for none of them, and cannot ask for PROC's
    assert (await api.call("POLICE", "GET", "/api/v1/clocks", params={"agency": "PROC"})).json()["clocks"] == []
    assert (await api.call(None, "GET", "/api/v1/clocks")).status_code == 401
    keeper = api.gateway.store.clock_keeper
    assert keeper is not None and api.gateway.clock_scanner is not None
    keeper.clock = api.gateway.clock_scanner.clock = FakeClock(got[0]["due_at"] + 3600)
    overdue = (await api.call("OPERATOR", "GET", "/api/v1/clocks", params={"state": "overdue"})).json()["clocks"]
    assert len(overdue) == 2 and all(c["overdue"] for c in overdue)
    assert len(await api.gateway.clock_scanner.scan_once()) == 2
    metrics = (await api.call("OPERATOR", "GET", "/metrics")).text
    assert 'gateway_clocks{agency="PROC",limit="prosecution-review",state="overdue"} 2.0' in metrics
    assert 'gateway_clocks{agency="PROC",limit="prosecution-review",state="approaching"} 0.0' in metrics


def _read_clocks_view(driver: Any, url: str, key: str) -> list[str]:
    from selenium.webdriver.common.by import By

    wait = signed_in_view(driver, url, key, "clocks")
    wait.until(lambda d: "A2026-CON-0001" in d.find_element(By.ID, "clocks").text)
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#clocks tbody tr")]


async def test_the_console_lists_overdue_clocks(api: Running, browser: Any) -> None:
    assert (await api.submit("POLICE", record("A2026-CON-0001"))).status_code == 202
    for _ in range(300):
        if await api.gateway.store.list_clocks(state="running", now=api.gateway.clock_now()):
            break
        await asyncio.sleep(0.02)
    keeper = api.gateway.store.clock_keeper
    assert keeper is not None
    keeper.clock = FakeClock(api.gateway.clock_now() + 60 * DAY)
    rows = await asyncio.to_thread(_read_clocks_view, browser, api.url, KEYS["OPERATOR"])
    assert len(rows) == 1 and "prosecution-review" in rows[0] and "PROC" in rows[0]
    assert "已超期" in rows[0], "in Chinese, the console's default"


async def test_a_resent_answer_stops_nothing(node: Node) -> None:
    case = "A2026-ARR-0010"
    answer = record(case, "arrest-review", "approve-arrest", sender="PROC")
    await node.send("POLICE", arrest_request(case))
    await node.send("PROC", answer)
    await node.send("POLICE", arrest_request(case).replace(b"</Documents>", b"</Documents><!-- again -->"))
    r = await node.gw.inbound["proc-in"].submit(answer)  # type: ignore[attr-defined]
    assert r.duplicate
    first, second = await node.clocks(case)
    assert (first.state, second.state) == ("stopped", "running")
