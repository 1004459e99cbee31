"""Conformance runs: an agency's pack samples through its real channel on a running node, delivered nowhere.

The receivers (memory outbounds) count what reaches them: zero after a run. The exchange log and the
metrics show the run, never a submission. An agency that must pass a run first is refused live.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from gateway.cli import app as cli_app
from gateway.mapping import load_pack
from gateway.pipeline import Route
from gateway.routing import Router

from .support.validation import KEYS, PacksNode, packs_node

OPERATOR = {"X-API-Key": KEYS["OPERATOR"]}
SOAP_FIRST = {"PROC": {"inbound": [
    {"name": "proc-soap", "adapter": "soap", "mapping": "procuratorate",
     "settings": {"password": {"env": "VALIDATION_TEST_PROC_SOAP"}}},
    {"name": "proc-in", "adapter": "http", "mapping": "procuratorate"}]}}


async def _call(node: PacksNode, method: str, path: str, **kw: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=node.url, headers=OPERATOR, timeout=120) as c:
        return await c.request(method, path, **kw)


async def _delivered(node: PacksNode) -> int:
    await asyncio.sleep(0.5)  # the dispatcher has had its chance to deliver anything queued
    return sum(len(o.received) for o in node.outs.values())


async def _metrics(node: PacksNode) -> str:
    return (await _call(node, "GET", "/metrics")).text


async def test_a_run_over_http_reports_each_sample_and_delivers_nothing(tmp_path: Path) -> None:
    async with packs_node(tmp_path / "data") as node:
        log_before = await node.log_length()
        r = await _call(node, "POST", "/api/v1/conformance/POLICE")
        assert r.status_code == 200, r.text
        report = r.json()
        pack = load_pack("police")
        valid = sorted(p.name for p in (pack.samples / "valid").glob("*.xml"))
        invalid = sorted(p.name for p in (pack.samples / "invalid").glob("*.xml"))
        assert report["passed"] is True and report["channel"] == "police-in" and report["adapter"] == "http"
        assert [s["sample"] for s in report["samples"]] == valid + invalid
        for s in report["samples"]:
            assert s["ok"] and s["seconds"] > 0
            if s["expected"] == "accepted":
                assert s["outcome"] in ("accepted", "warned") and s["destinations"]
                assert set(s["outbound"]) == set(s["destinations"])
                assert all(base64.b64decode(b).lstrip(b"\xef\xbb\xbf").startswith(b"<") for b in s["outbound"].values())
            else:
                assert s["outcome"] == "blocked" and s["rules"] and not s["outbound"]
        assert await _delivered(node) == 0  # the receivers got nothing
        assert node.message_count() == 0
        assert (await node.gateway.store.stats_rows("2000-01-01", "2999-12-31")) == ([], [], [])  # never counted
        metrics = await _metrics(node)
        assert "gateway_records_total{" not in metrics and "gateway_validations_total{" not in metrics
        entries = (await node.gateway.store.audit_entries(after_seq=log_before))
        assert [e.action for e in entries] == ["conformance-run"]  # the run, and no record of it
        status = {s["agency"]: s for s in (await _call(node, "GET", "/api/v1/conformance")).json()}
        assert status["POLICE"]["conformant"] is True and status["COURT"]["conformant"] is None


async def test_a_run_over_soap_goes_through_the_wsdl_and_delivers_nothing(tmp_path: Path) -> None:
    async with packs_node(tmp_path / "data", **SOAP_FIRST) as node:
        r = await _call(node, "POST", "/api/v1/conformance/PROC")
        report = r.json()
        assert r.status_code == 200 and report["adapter"] == "soap", report
        assert report["passed"] is True, [s for s in report["samples"] if not s["ok"]]
        assert any(s["outbound"] for s in report["samples"])
        assert await _delivered(node) == 0 and node.message_count() == 0


async def test_not_conformant_until_a_run_passes_when_required(tmp_path: Path) -> None:
    court = load_pack("court")
    sample = sorted((court.samples / "valid").glob("*.xml"))[0].read_bytes()
    async with packs_node(tmp_path / "data", COURT={"require_conformance": True}) as node:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
            live = await c.post("/inbound/court-in", content=sample, headers={"X-API-Key": KEYS["COURT"]})
        assert live.status_code == 422
        reasons = " ".join(live.json()["reasons"])
        assert "conformance.required" in reasons
        status = {s["agency"]: s for s in (await _call(node, "GET", "/api/v1/conformance")).json()}
        assert status["COURT"]["closed"] is True and status["COURT"]["status"] == "未测试 / not run"
        assert status["POLICE"]["closed"] is False  # only the agency that must pass first
        assert node.gateway.pipeline is not None  # with no routes, every valid sample is blocked ("no route")
        route = next(s for s in node.gateway.pipeline.steps if isinstance(s, Route))
        route.router = Router([], set())
        failed = (await _call(node, "POST", "/api/v1/conformance/COURT")).json()
        assert failed["passed"] is False and failed["status"] == "未通过一致性测试 / not conformant"
        status = {s["agency"]: s for s in (await _call(node, "GET", "/api/v1/conformance")).json()}
        assert status["COURT"]["conformant"] is False and status["COURT"]["closed"] is True


async def test_a_passing_run_opens_the_channel_and_survives_a_restart(tmp_path: Path) -> None:
    court = load_pack("court")
    sample = sorted((court.samples / "valid").glob("*.xml"))[0].read_bytes()
    async with packs_node(tmp_path / "data", COURT={"require_conformance": True}) as node:
        passed = (await _call(node, "POST", "/api/v1/conformance/COURT")).json()
        assert passed["passed"] is True, passed
        assert await _delivered(node) == 0
    async with packs_node(tmp_path / "data", COURT={"require_conformance": True}) as node:
        assert node.gateway.conformance.conformant("COURT") is True  # read back from the exchange log
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
            live = await c.post("/inbound/court-in", content=sample, headers={"X-API-Key": KEYS["COURT"]})
        assert live.status_code == 202, live.text


async def test_the_test_header_without_a_run_is_refused_and_nothing_taken(tmp_path: Path) -> None:
    police = load_pack("police")
    sample = sorted((police.samples / "valid").glob("*.xml"))[0].read_bytes()
    async with packs_node(tmp_path / "data") as node:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
            r = await c.post("/inbound/police-in", content=sample,
                             headers={"X-API-Key": KEYS["POLICE"], "X-Conformance-Run": KEYS["OPERATOR"]})
        assert r.status_code == 403 and r.json()["rule"] == "conformance.token"
        assert node.message_count() == 0 and await _delivered(node) == 0


async def test_the_command_prints_the_report_in_chinese_and_english(tmp_path: Path) -> None:
    async with packs_node(tmp_path / "data") as node:
        result = await asyncio.to_thread(CliRunner().invoke, cli_app, [
            "conformance", "JUSTICE", "--url", node.url, "--key", KEYS["OPERATOR"], "--save", str(tmp_path / "out")])
        assert result.exit_code == 0, result.output
        assert "一致性测试 / conformance run: JUSTICE" in result.output
        assert "通过 / conformant" in result.output
        saved = sorted(p.name for p in (tmp_path / "out").iterdir())
        assert saved == ["offender-received.COURT.xml"], saved
        assert (tmp_path / "out" / saved[0]).read_bytes().startswith(b"<?xml")
        assert await _delivered(node) == 0


def _operator_runs_conformance(driver: Any, url: str, key: str) -> dict[str, str]:
    """What an operator does: open Conformance, read the agency's status, run it, read the report."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, 30)
    driver.get(f"{url}/console")
    driver.execute_script("localStorage.clear(); sessionStorage.clear();")  # the console's default: Chinese
    driver.get(f"{url}/console")
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#signin-form button").click()
    wait.until(ec.visibility_of_element_located((By.ID, "queues")))
    driver.find_element(By.CSS_SELECTOR, "nav button[data-view='conformance']").click()
    row = wait.until(ec.visibility_of_element_located(
        (By.XPATH, "//table[@id='conformance']//tr[td[1]='COURT']")))
    before = row.text
    row.find_element(By.XPATH, ".//button").click()
    wait.until(lambda d: "COURT:" in d.find_element(By.ID, "status").text)
    report = driver.find_element(By.ID, "conformance-report").text
    after = driver.find_element(By.XPATH, "//table[@id='conformance']//tr[td[1]='COURT']").text
    return {"before": before, "status": driver.find_element(By.ID, "status").text, "report": report, "after": after}


async def test_the_console_shows_not_conformant_and_runs_it(tmp_path: Path, browser: Any) -> None:
    async with packs_node(tmp_path / "data", COURT={"require_conformance": True}) as node:
        assert node.gateway.pipeline is not None  # without routes the run fails: not conformant
        route = next(s for s in node.gateway.pipeline.steps if isinstance(s, Route))
        routes, route.router = route.router, Router([], set())
        assert (await _call(node, "POST", "/api/v1/conformance/COURT")).json()["passed"] is False
        route.router = routes
        seen = await asyncio.to_thread(_operator_runs_conformance, browser, node.url, KEYS["OPERATOR"])
        assert "未通过一致性测试 / not conformant" in seen["before"] and "拒收，直到测试通过" in seen["before"]
        assert seen["status"] == "COURT: 通过 / conformant", seen
        court = load_pack("court")
        for sample in (court.samples / "valid").glob("*.xml"):
            assert sample.name in seen["report"]
        assert "通过 / conformant" in seen["after"] and "开放" in seen["after"]
        assert await _delivered(node) == 0
