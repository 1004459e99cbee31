"""A deployment adapts the standard's rules as data (`rules:`), for one route or sender, and says so.

Each adaptation is a configuration error when it names a rule, code or agency that does not exist,
changes how the node judges exactly the records it selects, and is visible wherever people look:
`gateway check-config`, the console's Rules view (through GET /api/v1/rules/adaptations) and the
exchange log at each node start (`rules-adapted`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from adapters.memory import MemoryOutbound
from gateway import cli
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.model import MessageStatus
from gateway.runtime import Gateway

from .support.api import KEYS, keyed_config
from .support.browser import signed_in_view
from .support.config import base_config
from .support.records import record
from .support.serving import serving

NO_RECOMMENDATION = b"<Document><Type>prosecution-recommendation</Type><Number>N-0</Number>" \
                    b"<Date>2026-01-01</Date><Issuer>X</Issuer></Document>"

ADAPTED = {
    "disable": [{"rule": "ACC-PR-11", "sender": "POLICE", "action": "transfer-for-prosecution",
                 "reason": "the police send the recommendation on paper until their system is upgraded"}],
    "severity": [{"rule": "ACC-PR-14", "severity": "block", "sender": "POLICE",
                  "reason": "the procuratorate files every transfer under the police's own number"}],
    "add": [{"id": "LOCAL-PR-01", "severity": "warn", "stage": "prosecution-review", "test": "c:SentAt",
             "message": {"zh": "未注明发送时间", "en": "the time the record was sent is not given"},
             "reason": "the procuratorate computes its review time limit from it"}],
}


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, key in KEYS.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)


def without_recommendation(case: str, sender: str = "POLICE") -> bytes:
    body = record(case=case, sender=sender)
    assert NO_RECOMMENDATION in body
    return body.replace(NO_RECOMMENDATION, b"")


def _data(tmp_path: Path, rules: dict[str, Any] | None = None) -> dict[str, Any]:
    data = keyed_config(tmp_path / "data")
    data["agencies"][2]["inbound"] = [{"name": "court-in", "adapter": "memory"}]
    if rules is not None:
        data["rules"] = rules
    return data


async def _judge(tmp_path: Path, rules: dict[str, Any] | None, *bodies: tuple[str, bytes]) -> list[Any]:
    outs = {code: MemoryOutbound() for code in ("POLICE", "PROC", "COURT")}
    gw = Gateway(parse_config(_data(tmp_path, rules)), outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    try:
        return [await gw.inbound[channel].submit(body) for channel, body in bodies]  # type: ignore[attr-defined]
    finally:
        await gw.stop()


async def test_a_disabled_rule_no_longer_blocks_the_records_it_selects_and_only_those(tmp_path: Path) -> None:
    sent = [("police-in", without_recommendation("AD-1")),
            ("proc-in", without_recommendation("AD-2", sender="PROC")),
            ("police-in", record(case="AD-3").replace(b"agency='POLICE'", b"agency='PROC'")),
            ("police-in", record(case="AD-4"))]
    before = await _judge(tmp_path / "before", None, *sent)
    assert [r.status for r in before] == [MessageStatus.REJECTED, MessageStatus.REJECTED,
                                          MessageStatus.ACCEPTED, MessageStatus.ACCEPTED]
    assert "[ACC-PR-11]" in before[0].reasons[0]
    after = await _judge(tmp_path / "after", ADAPTED, *sent)
    assert after[0].status == MessageStatus.ACCEPTED, "ACC-PR-11 is disabled for the police's transfers"
    assert after[1].status == MessageStatus.REJECTED and "[ACC-PR-11]" in after[1].reasons[0], \
        "and still applies to another sender"
    assert after[2].status == MessageStatus.REJECTED and after[2].reasons[0].startswith("[ACC-PR-14]"), \
        "the warning became a block for the police"
    assert after[3].status == MessageStatus.ACCEPTED
    assert any(r.startswith("[LOCAL-PR-01] the time the record was sent is not given") for r in after[3].reasons)
    assert not any("LOCAL-PR-01" in r for r in before[3].reasons)


@pytest.mark.parametrize(("rules", "expected"), [
    ({"disable": [{"rule": "ACC-PR-41", "reason": "r"}]},
     "rules: disable[0].rule: the standard (v1) has no rule 'ACC-PR-41' (nearest: ACC-PR-14)"),
    ({"severity": [{"rule": "EV-TH-4", "severity": "block", "reason": "r"}]},
     "rules: severity[0].rule: the standard (v1) has no rule 'EV-TH-4' (nearest: EV-TH-04)"),
    ({"disable": [{"rule": "CODE-02", "reason": "r"}]}, "set unknown_codes: warn on the inbound channel"),
    ({"disable": [{"rule": "ACC-PR-11", "sender": "PRISON", "reason": "r"}]},
     "rules: disable[0].sender: agency PRISON is not defined"),
    ({"disable": [{"rule": "ACC-PR-11", "action": "transfer-for-prosecutoin", "reason": "r"}]},
     "disable[0].action: 'transfer-for-prosecutoin' is not in the standard's code list of actions "
     "(nearest: transfer-for-prosecution)"),
    ({"severity": [{"rule": "ACC-PR-11", "severity": "block", "reason": "r"}]}, "already block"),
    ({"disable": [{"rule": "ACC-PR-11", "reason": "r"}],
      "severity": [{"rule": "ACC-PR-11", "severity": "warn", "sender": "POLICE", "reason": "r"}]},
     "disable[0] and severity[0] both adapt ACC-PR-11"),
    ({"add": [{"id": "ID-01", "test": "true()", "message": {"zh": "a", "en": "b"}, "reason": "r"}]},
     "add[0].id: ID-01 is a rule of the standard"),
    ({"add": [{"id": "L-1", "test": "c:Stage[", "message": {"zh": "a", "en": "b"}, "reason": "r"}]},
     "add[0]: XPath error in 'c:Stage['"),
    ({"add": [{"id": "L-1", "test": "cx:no-such(.)", "message": {"zh": "a", "en": "b"}, "reason": "r"}]},
     "add[0]: the rule cannot run"),
    ({"disable": [{"rule": "ACC-PR-11"}]}, "rules.disable.0.reason: this key is required"),
])
def test_mistakes_are_configuration_errors_naming_the_key(tmp_path: Path, rules: dict[str, Any],
                                                          expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(_data(tmp_path, rules))
    assert expected in str(e.value)


def test_check_config_lists_every_adaptation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    monkeypatch.setattr(cli, "out", Console(width=300, no_color=True))
    path = tmp_path / "gw.yaml"
    data = base_config(tmp_path / "data")
    data["rules"] = ADAPTED
    data["agencies"][1]["inbound"][0]["unknown_codes"] = "warn"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    r = CliRunner().invoke(cli.app, ["check-config", str(path)])
    assert r.exit_code == 0, r.output
    for text in ("Rules adapted by this deployment", "ACC-PR-11 (block) not applied",
                 "action transfer-for-prosecution, from POLICE", "the police send the recommendation on paper",
                 "rules.disable[0]", "ACC-PR-14 block instead of warn", "LOCAL-PR-01 added (warn)",
                 "channel proc-in: unknown_codes: warn", "valid (3 agencies, 3 routes, 3 rule adaptations)"):
        assert text in r.stdout, text
    path.write_text(yaml.safe_dump(base_config(tmp_path / "data")), encoding="utf-8")
    plain = CliRunner().invoke(cli.app, ["check-config", str(path)])
    assert plain.exit_code == 0 and "Rules adapted" not in plain.stdout and "unknown_codes" not in plain.stdout


async def test_the_log_records_the_adaptations_at_every_node_start(tmp_path: Path) -> None:
    cfg = parse_config(_data(tmp_path, ADAPTED))
    for _ in range(2):
        gw = Gateway(cfg, outbound={c: MemoryOutbound() for c in ("POLICE", "PROC", "COURT")})  # type: ignore[arg-type]
        await gw.start()
        await gw.stop()
    entries = await _log(cfg)
    actions = [e.action for e in entries]
    assert actions.count("rules-adapted") == 2
    assert actions.index("rules-adapted") == actions.index("node-started") + 1
    detail = json.loads(next(e.detail for e in entries if e.action == "rules-adapted"))
    assert [(a["key"], a["change"], a["rule"], a["severity"]) for a in detail["adaptations"]] == [
        ("rules.disable[0]", "disable", "ACC-PR-11", "block"),
        ("rules.severity[0]", "severity", "ACC-PR-14", "block"),
        ("rules.add[0]", "add", "LOCAL-PR-01", "warn")]
    assert detail["adaptations"][0]["reason"] == ADAPTED["disable"][0]["reason"]
    assert detail["adaptations"][2]["test"] == "c:SentAt" and detail["unknown_codes_warn"] == []


async def _log(cfg: Any) -> list[Any]:
    from gateway.store import make_store

    store = make_store(cfg)
    await store.open()
    try:
        return list(await store.audit_entries())
    finally:
        await store.close()


# -- the console ----------------------------------------------------------------------------------

@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, Gateway]]:
    gw = Gateway(parse_config(_data(tmp_path, ADAPTED)),
                 outbound={c: MemoryOutbound() for c in ("POLICE", "PROC", "COURT")})  # type: ignore[arg-type]
    async with serving(create_app(gw)) as url:
        yield url, gw


async def test_operators_and_auditors_read_the_adaptations_agencies_do_not(
        served: tuple[str, Gateway]) -> None:
    import httpx

    url, _ = served
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        for who in ("OPERATOR", "AUDITOR"):
            r = await c.get("/api/v1/rules/adaptations", headers={"X-API-Key": KEYS[who]})
            assert r.status_code == 200
            assert [a["rule"] for a in r.json()["adaptations"]] == ["ACC-PR-11", "ACC-PR-14", "LOCAL-PR-01"]
        assert (await c.get("/api/v1/rules/adaptations", headers={"X-API-Key": KEYS["POLICE"]})).status_code == 403


def _read_rules_view(driver: Any, url: str, key: str) -> list[str]:
    from selenium.webdriver.common.by import By

    wait = signed_in_view(driver, url, key, "rules")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#adaptations tbody tr")) == 3)
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#adaptations tbody tr")]


async def test_the_console_shows_the_adaptations_in_force(served: tuple[str, Gateway], browser: Any) -> None:
    url, gw = served
    rows = await asyncio.to_thread(_read_rules_view, browser, url, KEYS["AUDITOR"])
    assert "ACC-PR-11 (block) not applied" in rows[0] and "from POLICE" in rows[0]
    assert "the police send the recommendation on paper" in rows[0] and "rules.disable[0]" in rows[0]
    assert "ACC-PR-14 block instead of warn" in rows[1]
    assert "LOCAL-PR-01 added (warn)" in rows[2]
    receipt = await gw.inbound["police-in"].submit(without_recommendation("AD-9"))  # type: ignore[attr-defined]
    assert receipt.status == MessageStatus.ACCEPTED, "the rule the console lists as disabled does not block"
    assert [e.action for e in await gw.store.audit_entries()][:2] == ["node-started", "rules-adapted"]
