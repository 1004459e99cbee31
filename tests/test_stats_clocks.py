"""Time-limit figures in the statistics, on SQLite and PostgreSQL with a fake clock: per agency
responsible for answering, clocks answered on time and late in the range (by the day of the
answer), and clocks overdue at the moment asked."""

from __future__ import annotations

import asyncio
import csv
import io

from gateway.clocktime import FakeClock
from gateway.stats import export, service

from .support.api import Running
from .support.records import record
from .test_clocks import DAY, Node, arrest_request, node  # noqa: F401


async def test_answered_on_time_late_and_overdue_now_per_responsible_agency(node: Node) -> None:  # noqa: F811
    for case in ("A2026-ST-0001", "A2026-ST-0002", "A2026-ST-0003"):
        await node.send("POLICE", arrest_request(case))  # Monday 2 March: PROC must decide by 9 March
    node.clock.advance(3 * DAY)
    await node.send("PROC", record("A2026-ST-0001", "arrest-review", "approve-arrest", sender="PROC"))  # 5 March
    node.clock.advance(7 * DAY)  # Thursday 12 March: the last day is over
    await node.send("PROC", record("A2026-ST-0002", "arrest-review", "refuse-arrest", sender="PROC"))  # late

    async def totals(first: str, last: str) -> dict[str, tuple[int, int, int]]:
        r = await service.stats(node.gw.store, node.gw.config, first, last, now=node.clock.now())
        return {a["agency"]: (a["total"]["clocks_on_time"], a["total"]["clocks_late"],
                              a["total"]["clocks_overdue_now"]) for a in r["agencies"]}

    march = await totals("2026-03-01", "2026-03-31")
    assert march["PROC"] == (1, 1, 1)  # ST-0003 is still open past its last day
    assert march["POLICE"] == march["COURT"] == (0, 0, 0)  # responsible for none: 0, not missing
    assert (await totals("2026-03-01", "2026-03-05"))["PROC"] == (1, 0, 1)  # answers by their day; overdue is live
    assert (await totals("2026-03-06", "2026-03-11"))["PROC"] == (0, 0, 1)
    # the monthly export: the month's three figures in its summary, the answers of each day in its daily rows
    titles = ["期限内办结 / answered within the time limit", "超期办结 / answered late", "当前超期未办结 / overdue now"]
    sheets = await export.month_sheets(node.gw.store, node.gw.config, "2026-03", now=node.clock.now())
    head, *rows = sheets[export.SHEET_TOTAL]
    at = [head.index(t) for t in titles]
    assert {r[0]: [r[i] for i in at] for r in rows}["PROC"] == [1, 1, 1]
    data = await export.month(node.gw.store, node.gw.config, "2026-03", "csv", now=node.clock.now())
    head, *days = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    at = [head.index(t) for t in titles]
    assert {(d[0], d[1]): [d[i] for i in at] for d in days if d[1] == "PROC" and any(d[i] != "0" for i in at)} == {
        ("2026-03-05", "PROC"): ["1", "0", ""], ("2026-03-12", "PROC"): ["0", "1", ""]}  # overdue: live, no day's
    only = await service.stats(node.gw.store, node.gw.config, "2026-03-01", "2026-03-31", "PROC", now=node.clock.now())
    assert [a["agency"] for a in only["agencies"]] == ["PROC"] and only["agencies"][0]["total"]["clocks_late"] == 1
    await node.send("PROC", record("A2026-ST-0003", "arrest-review", "approve-arrest", sender="PROC"))
    assert (await totals("2026-03-12", "2026-03-12"))["PROC"] == (0, 2, 0)


async def test_the_api_counts_overdue_by_the_gateways_clock(api: Running) -> None:
    assert (await api.submit("POLICE", record("A2026-ST-API1"))).status_code == 202  # PROC's review starts
    for _ in range(300):
        running = (await api.call("OPERATOR", "GET", "/api/v1/clocks", params={"state": "running"})).json()["clocks"]
        if running:
            break
        await asyncio.sleep(0.02)
    figures = ("clocks_on_time", "clocks_late", "clocks_overdue_now")

    async def proc() -> tuple[int, ...]:
        r = (await api.call("PROC", "GET", "/api/v1/stats")).json()
        return tuple(r["agencies"][0]["total"][k] for k in figures)

    assert await proc() == (0, 0, 0)
    keeper = api.gateway.store.clock_keeper
    assert keeper is not None
    keeper.clock = FakeClock(running[0]["due_at"] + 3600)
    assert await proc() == (0, 0, 1)
    police = (await api.call("POLICE", "GET", "/api/v1/stats")).json()["agencies"][0]["total"]
    assert tuple(police[k] for k in figures) == (0, 0, 0)
