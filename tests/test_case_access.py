"""Who sees which case timeline over the API and the CLI: operators and auditors every case, an
agency only the cases it took part in (anything else answers exactly as an unknown case), and of
those only what its own messages would show."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner, Result

from gateway import cli

from .support.api import KEYS, Running, log
from .support.records import record
from .support.waiting import wait_for


async def _settled(api: Running, n: int) -> bool:
    rows = (await api.call("OPERATOR", "GET", "/api/v1/deliveries", params={"state": "delivered"})).json()
    return len(rows) >= n


async def _case(api: Running, who: str | None, number: str) -> Any:
    return await api.call(who, "GET", f"/api/v1/cases/{number}")


async def test_agencies_see_only_the_cases_they_took_part_in(api: Running) -> None:  # noqa: F811
    assert (await api.submit("POLICE", record("ACC-1"))).status_code == 202  # POLICE -> PROC
    assert (await api.submit("COURT", record("ACC-2", "trial", "judgment", sender="COURT"))).status_code == 202
    blocked = record("ACC-3", sender="POLICE").replace(b"11010519491231002X", b"110105194912310021")
    assert (await api.submit("POLICE", blocked)).status_code == 422
    await wait_for(lambda: _settled(api, 3))  # ACC-1 to PROC, ACC-2 to PROC and POLICE

    for who in ("POLICE", "PROC", "OPERATOR", "AUDITOR"):
        r = await _case(api, who, "ACC-1")
        assert r.status_code == 200, (who, r.text)
        assert [x["sender"] for x in r.json()["records"]] == ["POLICE"]
    outsider, unknown = await _case(api, "COURT", "ACC-1"), await _case(api, "COURT", "ACC-404")
    assert outsider.status_code == unknown.status_code == 404
    assert outsider.json()["detail"].replace("ACC-1", "X") == unknown.json()["detail"].replace("ACC-404", "X")
    assert (await _case(api, None, "ACC-1")).status_code == 401
    refused = [e for e in await log(api) if e["action"] == "access-refused" and "ACC-1" in e["detail"]]
    assert refused, "an agency's look at a case not its own is logged for the auditors"

    # a judgment to PROC and POLICE: each receiver sees its own delivery, the sender both
    court = (await _case(api, "COURT", "ACC-2")).json()["records"][0]
    assert court["receivers"] == ["PROC", "POLICE"] and set(court["delivered"]) == {"PROC", "POLICE"}
    proc = (await _case(api, "PROC", "ACC-2")).json()["records"][0]
    assert proc["receivers"] == ["PROC"] and list(proc["delivered"]) == ["PROC"] and proc["delivered"]["PROC"]
    assert proc["action_name"] == {"zh": "判决", "en": "judgment"}
    judgment = {"type": "judgment", "number": "N-2", "name": {"zh": "刑事判决书", "en": "criminal judgment"}}
    assert proc["documents"][2] == judgment
    full = (await _case(api, "OPERATOR", "ACC-2")).json()["records"][0]
    assert set(full["delivered"]) == {"PROC", "POLICE"}

    # a blocked record: its sender sees it with the rules; it reached no one, so PROC has no such case
    own = (await _case(api, "POLICE", "ACC-3")).json()["records"][0]
    assert own["blocked"] is True and own["rules"] == ["ID-01"] and own["delivered"] == {}
    assert (await _case(api, "PROC", "ACC-3")).status_code == 404
    assert (await _case(api, "AUDITOR", "ACC-3")).json()["records"][0]["rules"] == ["ID-01"]


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "out", Console(width=400, no_color=True))
    monkeypatch.setattr(cli, "err", Console(width=250, no_color=True, stderr=True))


def _invoke(*args: str, key: str) -> Result:
    return CliRunner().invoke(cli.app, list(args), env={"GATEWAY_API_KEY": key})


async def test_the_cli_prints_a_case_zh_first(api: Running, wide: None) -> None:  # noqa: F811
    assert (await api.submit("POLICE", record("CLI-CASE-1"))).status_code == 202
    await wait_for(lambda: _settled(api, 1))
    r = await asyncio.to_thread(_invoke, "case", "CLI-CASE-1", "--url", api.url, key=KEYS["OPERATOR"])
    assert r.exit_code == 0, r.output
    for text in ("案件时间线 case timeline CLI-CASE-1", "审查起诉 prosecution review",
                 "移送审查起诉 transfer for prosecution", "POLICE → PROC", "已接收 accepted", "1 条记录 records"):
        assert text in r.stdout, (text, r.stdout)
    missing = await asyncio.to_thread(_invoke, "case", "CLI-CASE-1", "--url", api.url, key=KEYS["COURT"])
    assert missing.exit_code == 1 and "HTTP 404" in missing.stderr and "Traceback" not in missing.output
