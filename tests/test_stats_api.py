"""Statistics and rankings through the REST API, the CLI and the monthly export."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import time
import zipfile
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from gateway import cli
from gateway.config import parse_config
from gateway.stats import freezer, service
from gateway.stats.ranking import day_over, freeze_finished_days, working_day
from gateway.store import make_store
from gateway.store.base import Store
from gateway.store.stats import RANKING_ACTION, day_of
from tests.support.api import Running
from tests.support.config import base_config
from tests.support.records import record
from tests.support.waiting import wait_for
from tests.test_stats_aggregates import DAY, put


async def test_agencies_see_their_own_figures_and_everyone_the_ranking(api: Running) -> None:
    assert (await api.submit("POLICE", record("C-S1"))).json()["status"] == "accepted"
    assert (await api.submit("POLICE", record("C-S2", sender="COURT"))).json()["status"] == "rejected"
    assert (await api.submit("POLICE", record("C-S2", extra="now right"))).json()["status"] == "accepted"  # resend
    await wait_for(lambda: len(api.outs["PROC"].received) == 2, what="both accepted records delivered")

    async def police_total() -> dict[str, Any]:
        r = await api.call("OPERATOR", "GET", "/api/v1/stats", params={"agency": "POLICE"})
        return dict(r.json()["agencies"][0]["total"])

    async def handed_over() -> bool:  # the delivery's commit counts it, just after the receiver has it
        return (await police_total())["handover_ms_p50"] is not None

    await wait_for(handed_over, what="hand-overs counted")
    total = await police_total()
    assert (total["sent"], total["accepted"], total["blocked"], total["resends"]) == (3, 2, 1, 1)
    assert total["first_pass_rate"] == 0.5 and total["top_rules"] == [{"rule": "standard.sender", "count": 1}]
    assert total["handover_ms_p50"] is not None and total["handover_ms_p90"] >= total["handover_ms_p50"]

    mine = (await api.call("POLICE", "GET", "/api/v1/stats")).json()
    assert [a["agency"] for a in mine["agencies"]] == ["POLICE"] and len(mine["agencies"][0]["days"]) == 30
    assert (await api.call("POLICE", "GET", "/api/v1/stats", params={"agency": "PROC"})).status_code == 403
    every = (await api.call("AUDITOR", "GET", "/api/v1/stats")).json()
    assert {a["agency"] for a in every["agencies"]} == {"POLICE", "PROC", "COURT"}
    proc = next(a for a in every["agencies"] if a["agency"] == "PROC")["total"]
    assert proc["received"] == 2 and proc["first_pass_rate"] is None  # sent nothing: no data, not 0
    bad = await api.call("OPERATOR", "GET", "/api/v1/stats", params={"from": "2026-11-30", "to": "2026-11-01"})
    assert bad.status_code == 422 and "before" in bad.json()["detail"][0]["msg"]

    r = (await api.call("COURT", "GET", "/api/v1/rankings")).json()
    assert r["frozen"] is False and r["score"] == ["first_pass_rate", "dossier_complete_rate", "handover_ms_p50"]
    units = {u["agency"]: u for role in r["roles"] for u in role["units"]}
    assert units["POLICE"]["first_pass_rate"] == 0.5 and units["POLICE"]["rank"] == 1
    assert units["COURT"]["zero_activity"] is working_day(dt.date.fromisoformat(r["day"]))
    only = (await api.call("COURT", "GET", "/api/v1/rankings", params={"role": "court"})).json()
    assert [x["role"] for x in only["roles"]] == ["court"]

    x = await api.call("POLICE", "GET", "/api/v1/stats/export", params={"month": r["day"][:7]})
    assert x.status_code == 200 and x.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = zipfile.ZipFile(io.BytesIO(x.content))
    assert "月度汇总 summary" in book.read("xl/workbook.xml").decode()
    c = await api.call("OPERATOR", "GET", "/api/v1/stats/export", params={"month": r["day"][:7], "format": "csv"})
    rows = list(csv.reader(io.StringIO(c.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["日期 / day", "单位代码 / agency"]
    assert any(row[1] == "POLICE" and row[4] == "3" for row in rows)


async def test_a_finished_day_is_ranked_once_into_the_log_and_never_again(store: Store, tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path / "data"))
    past = time.time() - 2 * DAY
    day = day_of(past)
    await put(store, "POLICE", "C-1", "transfer-for-prosecution", "accepted", False, past)
    await put(store, "PROC", "C-9", "indictment", "blocked", False, past)
    first = await service.rankings(store, config, day)
    assert first["frozen"] is True
    units = {u["agency"]: u for role in first["roles"] for u in role["units"]}
    assert units["POLICE"]["first_pass_rate"] == 1.0 and units["PROC"]["zero_rate"] is True
    assert units["COURT"]["zero_activity"] is working_day(dt.date.fromisoformat(day))
    entries = [e for e in await store.audit_entries(limit=10_000) if e.action == RANKING_ACTION]
    assert len(entries) == 1 and entries[0].seq == first["log_seq"]

    # more records of that day, a rebuild, another score: the frozen ranking stands
    await put(store, "PROC", "C-9", "indictment", "accepted", False, past + 60)
    await store.rebuild_stats()
    config.gateway.stats.ranking_score = ["handover_ms_p50"]
    again = await service.rankings(store, config, day)
    assert again == first
    assert [e for e in await store.audit_entries(limit=10_000) if e.action == RANKING_ACTION] == entries
    today = await service.rankings(store, config, None)
    assert today["frozen"] is False and today["score"] == ["handover_ms_p50"]


def test_cli_prints_figures_rebuilds_and_exports(tmp_path: Path) -> None:
    data = base_config(tmp_path / "data")
    cfg_file = tmp_path / "gateway.yaml"
    cfg_file.write_text(yaml.safe_dump(data), encoding="utf-8")
    t = time.time() - DAY

    async def seed() -> None:
        store = make_store(parse_config(data))
        await store.open()
        await put(store, "POLICE", "C-1", "transfer-for-prosecution", "blocked-dossier", True, t)
        await put(store, "POLICE", "C-1", "transfer-for-prosecution", "accepted", True, t + 30)
        await store.close()

    asyncio.run(seed())
    run = CliRunner(env={"COLUMNS": "250"})  # a table as wide as an officer's terminal
    r = run.invoke(cli.app, ["stats", "--config", str(cfg_file), "--agency", "POLICE"])
    assert r.exit_code == 0, r.output
    assert "发送 / sent" in r.output and "DOS-01×1" in r.output and "50.0%" in r.output
    assert "按期答复" in r.output and "当前超期" in r.output  # the time-limit columns, 0 with no clock
    r = run.invoke(cli.app, ["stats", "rebuild", "--config", str(cfg_file)])
    assert r.exit_code == 0 and "from 2 records" in r.output, r.output
    r = run.invoke(cli.app, ["stats", "ranking", "--config", str(cfg_file), "--day", day_of(t)])
    assert r.exit_code == 0 and "已冻结 / frozen" in r.output, r.output
    out = tmp_path / "m.xlsx"
    r = run.invoke(cli.app, ["stats", "export", "--config", str(cfg_file), "--month", day_of(t)[:7], "-o", str(out)])
    assert r.exit_code == 0 and zipfile.is_zipfile(out), r.output
    out = tmp_path / "m.csv"
    r = run.invoke(cli.app, ["stats", "export", "--config", str(cfg_file), "--month", day_of(t)[:7], "--format", "csv",
                             "-o", str(out)])
    assert r.exit_code == 0, r.output
    head, *rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert head[-3:] == ["期限内办结 / answered within the time limit", "超期办结 / answered late",
                         "当前超期未办结 / overdue now"]
    assert [row[-3:] for row in rows if row[1] == "POLICE"] == [["0", "0", ""]]  # no clock: none answered
    r = run.invoke(cli.app, ["stats", "--config", str(cfg_file), "--from", "2026-13-01"])
    assert r.exit_code == 2 and "不是 YYYY-MM-DD" in r.output and "Traceback" not in r.output


async def _count_is(entries: Any, n: int) -> bool:
    return len(await entries()) == n


async def test_the_node_freezes_finished_days_once_under_the_cluster_lock(store: Store, tmp_path: Path) -> None:
    config = parse_config(base_config(tmp_path / "data"))
    units, score = service.units(config), config.gateway.stats.ranking_score
    assert await freeze_finished_days(store, units, score, "node-a") == []  # no traffic yet: nothing to rank
    for i in range(1, 9):  # a record each day of the last week and the day before
        await put(store, "POLICE", f"C-{i}", "transfer-for-prosecution", "accepted", False, time.time() - i * DAY)
    frozen = await freeze_finished_days(store, units, score, "node-a", days_back=3)
    assert frozen == [day_of(time.time() - i * DAY) for i in (3, 2, 1)
                      if day_over(day_of(time.time() - i * DAY))]
    assert await freeze_finished_days(store, units, score, "node-a", days_back=3) == []
    week = 7 if day_over(day_of(time.time() - DAY)) else 6

    async def logged() -> list[object]:
        return [e for e in await store.audit_entries(limit=1000) if e.action == RANKING_ACTION]

    task = asyncio.create_task(freezer.run(store, config, "node-a", every=0.05))
    try:
        await wait_for(lambda: _count_is(logged, week), what="the last week frozen")
        await asyncio.sleep(0.2)  # more rounds of the task freeze nothing again
    finally:
        task.cancel()
    assert len(await logged()) == week  # the last week, each day once
