"""The `gateway` command: configuration checks, the generated reference, and the operator commands
against a real gateway on loopback. Every user error is one line and a non-zero exit code."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner, Result

from gateway import cli
from gateway.docs import render

from .support.api import KEYS, Running
from .support.config import base_config
from .support.ports import free_port
from .support.records import record
from .support.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "out", Console(width=250, no_color=True))
    monkeypatch.setattr(cli, "err", Console(width=250, no_color=True, stderr=True))


def invoke(*args: str, key: str | None = None) -> Result:
    env = {"GATEWAY_API_KEY": key} if key else {"GATEWAY_API_KEY": ""}
    return CliRunner().invoke(cli.app, list(args), env=env)


def one_error_line(r: Result) -> str:
    assert r.exit_code != 0
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr
    return lines[0]


def test_check_config_summarises_a_valid_file(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(base_config(tmp_path / "data")))
    r = invoke("check-config", str(path))
    assert r.exit_code == 0, r.output
    for text in ("POLICE", "City Procuratorate", "proc-in (memory, identity)", "transfer-for-prosecution",
                 "PROC, POLICE", "valid (3 agencies, 3 routes)"):
        assert text in r.stdout


def test_check_config_explains_mistakes_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "gw.yaml"
    data = base_config(tmp_path / "data")
    data["routes"][0]["to"] = ["PRISON"]
    path.write_text(yaml.safe_dump(data))
    r = invoke("check-config", str(path))
    assert r.exit_code == 2
    line = one_error_line(r)
    assert str(path) in line and "routes[0].to names agency PRISON, which is not defined" in line
    path.write_text("agencies: [\n")
    assert "line 2: not valid YAML" in one_error_line(invoke("check-config", str(path)))
    missing = invoke("check-config", str(tmp_path / "no.yaml"))
    assert "cannot read the configuration" in one_error_line(missing)
    data = base_config(tmp_path / "data")
    data["agencies"][0]["inbound"][0]["mapping"] = "no-such-pack"
    path.write_text(yaml.safe_dump(data))
    r = invoke("check-config", str(path))
    assert r.exit_code == 2 and "mapping pack 'no-such-pack' not found" in r.stderr


def test_shipped_example_configuration_is_valid() -> None:
    r = invoke("check-config", str(ROOT / "deploy" / "example.yaml"))
    assert r.exit_code == 0, r.output


def test_configuration_reference_is_current() -> None:
    committed = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == render(), "stale: run `gateway config-docs -o docs/configuration.md`"
    assert "| `max_attempts` | integer ≥ 1 | `20` |" in committed
    assert "`http` adapter: outbound settings" in committed
    import re

    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-")
               for h in re.findall(r"^#+ (.+)$", committed, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", committed))
    assert links <= anchors, f"links to sections the reference does not have: {sorted(links - anchors)}"


def test_run_refuses_a_config_whose_secrets_are_missing(tmp_path: Path) -> None:
    data = base_config(tmp_path / "data")
    data["access"] = {"operators": [{"name": "ops", "key": {"env": "SURELY_UNSET_GATEWAY_KEY"}}]}
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data))
    line = one_error_line(invoke("run", str(path)))
    assert "operator ops: environment variable SURELY_UNSET_GATEWAY_KEY is not set" in line


def test_check_config_and_run_refuse_shared_and_short_keys(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    data = base_config(tmp_path / "data")
    del data["gateway"]["api"]["min_key_length"]  # the default, 24
    data["agencies"][0]["api_key"] = {"env": "CLI_POLICE_KEY"}
    data["agencies"][1]["api_key"] = {"env": "CLI_PROC_KEY"}
    data["access"] = {"operators": [{"name": "ops", "key": {"env": "CLI_OPS_KEY"}}],
                      "auditors": [{"name": "aud", "key": {"file": str(tmp_path / "aud.key")}}]}
    (tmp_path / "aud.key").write_text("ops-key-" + "x" * 24 + "\n")
    monkeypatch.setenv("CLI_POLICE_KEY", "police-key-1")
    monkeypatch.setenv("CLI_PROC_KEY", "police-key-1")
    monkeypatch.setenv("CLI_OPS_KEY", "ops-key-" + "x" * 24)
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data))
    r = invoke("check-config", str(path))
    assert r.exit_code == 2
    assert f"{path}: agency POLICE: the API key has 12 characters, fewer than gateway.api.min_key_length (24)" \
        in r.stderr
    assert "agency POLICE and agency PROC have the same API key" in r.stderr
    assert "operator ops and auditor aud have the same API key" in r.stderr
    assert "police-key-1" not in r.output and "xxxx" not in r.output, "a key is never shown"
    line = one_error_line(invoke("run", str(path)))
    assert "agency POLICE: the API key has 12 characters" in line and "police-key-1" not in line


def test_keys_new_prints_a_strong_key_and_how_to_store_it() -> None:
    first, second = invoke("keys", "new"), invoke("keys", "new")
    assert first.exit_code == 0, first.output
    key = first.stdout.strip()
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", key) and key != second.stdout.strip()
    assert "{env: " in first.stderr and "{file: " in first.stderr and key not in first.stderr


def test_operator_commands_need_a_key_and_a_gateway() -> None:
    assert "no API key" in one_error_line(invoke("queues", "--url", "http://127.0.0.1:9"))
    line = one_error_line(invoke("queues", "--url", "http://127.0.0.1:9", key="k"))
    assert "cannot reach the gateway at http://127.0.0.1:9" in line


async def run_cli(*args: str, key: str | None = None) -> Result:
    """The server runs in this event loop, so the (blocking) command runs in a thread."""
    return await asyncio.to_thread(invoke, *args, key=key)


async def test_submit_status_and_operator_commands(api: Running, tmp_path: Path) -> None:  # noqa: F811
    good = tmp_path / "transfer.xml"
    good.write_bytes(record(case="CLI-0001"))
    r = await run_cli("submit", str(good), "--agency", "POLICE", "--url", api.url, key=KEYS["POLICE"])
    assert r.exit_code == 0, r.output
    assert "accepted" in r.stdout and "PROC" in r.stdout
    (message_id,) = re.findall(r"message_id\W+([0-9a-f]{13}-[0-9a-f]{12})", r.stdout)

    wrong = await run_cli("submit", str(good), "--agency", "COURT", "--url", api.url, key=KEYS["POLICE"])
    assert "HTTP 403" in one_error_line(wrong) and "cannot submit as COURT" in wrong.stderr
    bad = tmp_path / "bad.xml"
    bad.write_bytes(record(case="CLI-0002", sender="COURT"))
    rejected = await run_cli("submit", str(bad), "--agency", "POLICE", "--url", api.url, key=KEYS["POLICE"])
    assert rejected.exit_code == 1 and "rejected:" in rejected.stderr
    assert "[standard.sender] the record says it is from COURT" in rejected.stderr

    async def delivered() -> bool:
        return (await api.gateway.store.get_deliveries(message_id))[0].state == "delivered"

    await wait_for(delivered)
    status = await run_cli("status", message_id, "--url", api.url, key=KEYS["PROC"])
    assert status.exit_code == 0, status.output
    for text in ("CLI-0001", "accepted", "received", "routed", "delivered"):
        assert text in status.stdout
    denied = await run_cli("status", message_id, "--url", api.url, key=KEYS["COURT"])
    assert "HTTP 403" in one_error_line(denied)

    api.fail_proc.add("CLI-0003")
    judgment = tmp_path / "judgment.xml"
    judgment.write_bytes(record(case="CLI-0003", stage="trial", action="judgment", sender="COURT"))
    assert (await run_cli("submit", str(judgment), "--agency", "COURT", "--url", api.url,
                          key=KEYS["COURT"])).exit_code == 0

    async def dead() -> bool:
        return bool(await api.gateway.store.list_deliveries(state="dead"))

    await wait_for(dead)
    (dead_delivery,) = await api.gateway.store.list_deliveries(state="dead")
    letters = await run_cli("dead-letters", "--url", api.url, key=KEYS["OPERATOR"])
    assert dead_delivery.id in letters.stdout and "dossier incomplete" in letters.stdout
    queues = await run_cli("queues", "--url", api.url, key=KEYS["AUDITOR"])
    assert queues.exit_code == 0 and "dead" in queues.stdout

    assert "HTTP 403" in one_error_line(await run_cli(
        "replay", dead_delivery.id, "--reason", "try", "--url", api.url, key=KEYS["AUDITOR"]))
    api.fail_proc.discard("CLI-0003")
    replayed = await run_cli("replay", dead_delivery.id, "--reason", "receiver repaired", "--url", api.url,
                             key=KEYS["OPERATOR"])
    assert replayed.exit_code == 0 and "to PROC" in replayed.stdout
    gone = await run_cli("discard", dead_delivery.id, "--reason", "x", "--url", api.url,
                         key=KEYS["OPERATOR"])
    assert "HTTP 409" in one_error_line(gone)
    entries = await api.gateway.store.audit_entries(case_number="CLI-0003")
    assert any(e.action == "replayed" and e.actor == "operator:ops-wang" and "receiver repaired" in e.detail
               for e in entries)

    api.fail_proc.add("CLI-0004")
    judgment.write_bytes(record(case="CLI-0004", stage="trial", action="judgment", sender="COURT"))
    assert (await run_cli("submit", str(judgment), "--agency", "COURT", "--url", api.url,
                          key=KEYS["COURT"])).exit_code == 0
    await wait_for(dead)
    api.fail_proc.discard("CLI-0004")
    bulk = await run_cli("replay-dead", "PROC", "--reason", "receiver back", "--url", api.url, key=KEYS["OPERATOR"])
    assert bulk.exit_code == 0 and "1 dead letter(s) to PROC queued again; 0 still dead" in bulk.stdout, bulk.output

    no_policy = await run_cli("retention", "--url", api.url, key=KEYS["OPERATOR"])
    assert "no retention policy" in one_error_line(no_policy)
    pruned = await run_cli("retention", "--days", "0.000001", "--url", api.url, key=KEYS["OPERATOR"])
    assert pruned.exit_code == 0 and "finished message(s) dropped" in pruned.stdout, pruned.stdout
    entries = await api.gateway.store.audit_entries(case_number="CLI-0003")
    pruned_entry = next(e for e in entries if e.action == "payload-pruned")
    assert pruned_entry.actor == "operator:ops-wang"
    shown = await run_cli("status", pruned_entry.message_id, "--url", api.url, key=KEYS["OPERATOR"])
    assert "payloads dropped by the retention policy" in shown.stdout, shown.stdout


def test_run_serves_until_sigterm_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    data = base_config(tmp_path / "data", api={"host": "127.0.0.1", "port": port})
    data["access"] = {"operators": [{"name": "ops", "key": {"env": "RUN_TEST_OPERATOR_KEY"}}]}
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(data))
    env = {**os.environ, "RUN_TEST_OPERATOR_KEY": "run-test-key"}
    p = subprocess.Popen([sys.executable, "-c", "from gateway.cli import main; main()", "run", str(path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        end = time.monotonic() + 30
        while True:
            assert p.poll() is None and time.monotonic() < end, "the node did not come up"
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/api/v1/queues", headers={"X-API-Key": "run-test-key"})
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200
        p.send_signal(signal.SIGTERM)
        out, errs = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, errs
    assert "gateway stopped" in out and "Traceback" not in errs
    log = sqlite3.connect(tmp_path / "data" / "gateway.db").execute("SELECT action FROM audit_log").fetchall()
    assert [a for (a,) in log][-2:] == ["node-stopped", "checkpoint"]
