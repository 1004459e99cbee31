"""The validation service answers exactly what `gateway validate` prints, over REST and SOAP, and keeps nothing.

A node runs every shipped pack on its own agency (tests/support/validation.py); each invalid
sample of each pack goes to POST /api/v1/validate and to SOAP ValidateCaseRecord (zeep, and the
npm `soap` package, a client that is not zeep), and the findings are compared with what the
command line prints for the same file.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import zeep
from typer.testing import CliRunner
from zeep.wsse.username import UsernameToken

from gateway import mapping_cli
from gateway.cli import app as cli_app
from gateway.mapping import MappingPack
from gateway.validation import AgencyRate

from .support.validation import KEYS, SOAP_PASSWORDS, PacksNode, packs, packs_config, packs_node, write_config

Finding = tuple[str, str, str, int | None, str]  # severity, rule, location, line, the lines printed under it
_HEAD = re.compile(r"^  (block|warn )\s\[([^\]]+)\](?: at (.*?))?(?:, line (\d+))?$")
NPM_DIR = Path(os.environ.get("CASE_EXCHANGE_NPM", Path.home() / ".cache" / "case-exchange" / "npm"))


def _invalid_samples() -> list[tuple[MappingPack, Path]]:
    return [(p, f) for p in packs() for f in sorted((p.samples / "invalid").glob("*.xml"))]


def _printed(text: str) -> list[Finding]:
    """The findings as `gateway validate` prints them: a head line, then the message lines."""
    found: list[Finding] = []
    lines: list[str] = []
    head: tuple[str, str, str, int | None] | None = None

    def close() -> None:
        if head is not None:
            found.append((*head, "\n".join(lines)))

    for line in text.splitlines():
        m = _HEAD.match(line)
        if m:
            close()
            head, lines = (m[1].strip(), m[2], m[3] or "", int(m[4]) if m[4] else None), []
        elif head is not None and line.startswith("        "):
            lines.append(line[8:])
        elif head is not None:
            close()
            head = None
    close()
    return found


def _lines(zh: str, en: str, hint_zh: str, hint_en: str, location: str, standard: str,
           standard_line: int | None) -> str:
    """A finding's fields in the order `gateway validate` prints them under its head line."""
    lines = [zh] if zh else []
    lines.append(en)
    if hint_zh or hint_en:
        lines.append(f"处理建议 / what to do: {hint_zh} / {hint_en}")
    if standard and standard != location:
        lines.append(f"标准 / standard: {standard}" + (f", line {standard_line}" if standard_line else ""))
    return "\n".join(lines)


def _from_json(findings: list[dict[str, Any]]) -> list[Finding]:
    return [(f["severity"], f["rule"], f["location"] or "", f["line"],
             _lines(f["message_zh"], f["message"], f.get("hint_zh", ""), f.get("hint_en", ""), f["location"] or "",
                    f.get("standard_location", ""), f.get("standard_line"))) for f in findings]


def _from_soap(response: Any) -> list[Finding]:
    return [(f.Severity, f.Rule, f.Location or "", f.Line,
             _lines(f.MessageZh, f.MessageEn, f.HintZh or "", f.HintEn or "", f.Location or "",
                    f.StandardLocation or "", f.StandardLine)) for f in response.Findings.Finding]


def _cli(config: Path, agency: str, sample: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(mapping_cli.console, "width", 10_000)  # one finding line is one printed line
    out = CliRunner().invoke(cli_app, ["validate", str(sample), "--agency", agency, "--config", str(config)])
    assert out.exit_code == 1, out.output  # every invalid sample is blocked
    return out.output


async def _rest(node: PacksNode, agency: str, body: bytes) -> httpx.Response:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
        return await c.post("/api/v1/validate", content=body,
                            headers={"X-API-Key": KEYS[agency], "Content-Type": "application/xml"})


def _zeep(node: PacksNode, agency: str) -> zeep.Client:
    return zeep.Client(f"{node.url}/soap/{agency.lower()}-soap?wsdl",
                       wsse=UsernameToken(agency, SOAP_PASSWORDS[agency], use_digest=True))


async def test_rest_and_soap_answer_exactly_what_gateway_validate_prints(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(packs_config(tmp_path / "data"), tmp_path / "gateway.yaml")
    samples = _invalid_samples()
    assert len(samples) >= 14 and len({p.name for p, _ in samples}) == 4  # every pack has invalid samples
    async with packs_node(tmp_path / "data") as node:
        clients = {p.agency: await asyncio.to_thread(_zeep, node, p.agency) for p in packs()}
        for pack, sample in samples:
            printed = _printed(_cli(config, pack.agency, sample, monkeypatch))
            assert printed, f"{sample}: nothing printed"
            rest = await _rest(node, pack.agency, sample.read_bytes())
            assert rest.status_code == 200, rest.text
            answer = rest.json()
            assert answer["outcome"] == "blocked" and answer["accepted"] is False and answer["stored"] is False
            assert _from_json(answer["findings"]) == printed, sample
            record = sample.read_bytes()
            soap = await asyncio.to_thread(clients[pack.agency].service.ValidateCaseRecord,
                                           FileName=sample.name, Record=record)
            assert soap.Outcome == "blocked" and soap.Accepted is False
            assert _from_soap(soap) == printed, sample
        assert node.message_count() == 0
        assert sum(len(o.received) for o in node.outs.values()) == 0


async def test_a_valid_record_is_neither_stored_nor_logged(tmp_path: Path) -> None:
    police = next(p for p in packs() if p.agency == "POLICE")
    valid = sorted((police.samples / "valid").glob("*.xml"))
    async with packs_node(tmp_path / "data") as node:
        client = await asyncio.to_thread(_zeep, node, "POLICE")
        await asyncio.sleep(0.2)  # the node's own start-up entries are in the log
        messages, log = node.message_count(), await node.log_length()
        for sample in valid:
            rest = (await _rest(node, "POLICE", sample.read_bytes())).json()
            assert rest["accepted"] is True, rest
            assert rest["destinations"], rest  # where it would go, though it goes nowhere
            soap = await asyncio.to_thread(client.service.ValidateCaseRecord, Record=sample.read_bytes())
            assert soap.Accepted is True and list(soap.Destinations.Agency) == rest["destinations"]
        assert node.message_count() == messages == 0
        assert await node.log_length() == log
        assert sum(len(o.received) for o in node.outs.values()) == 0
        async with httpx.AsyncClient(headers={"X-API-Key": KEYS["OPERATOR"]}) as c:
            metrics = (await c.get(f"{node.url}/metrics")).text
        assert 'gateway_validations_total{agency="POLICE",outcome="accepted"}' in metrics \
            or 'gateway_validations_total{agency="POLICE",outcome="warned"}' in metrics
        accepted = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                       if line.startswith('gateway_validations_total{agency="POLICE"'))
        assert accepted == 2 * len(valid)
        assert 'gateway_records_total{channel="police-in"' not in metrics  # no submission counted


async def test_multipart_with_dossier_files_is_checked_and_the_files_are_not_kept(tmp_path: Path) -> None:
    police = next(p for p in packs() if p.agency == "POLICE")
    sample = sorted((police.samples / "valid").glob("*.xml"))[0]
    async with packs_node(tmp_path / "data") as node:
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as c:
            r = await c.post("/api/v1/validate", headers={"X-API-Key": KEYS["POLICE"]}, files=[
                ("record", (sample.name, sample.read_bytes(), "application/xml")),
                ("file", ("scan-001.pdf", b"%PDF-1.4 scan" * 100, "application/pdf"))])
        assert r.status_code == 200, r.text
        plain = (await _rest(node, "POLICE", sample.read_bytes())).json()
        assert plain["accepted"] is True
        # the dossier rules see the file: one the record's dossier list does not name is a defect
        assert [f["rule"] for f in r.json()["findings"]] == ["DOS-01"] and r.json()["accepted"] is False
        files = Path(node.gateway.config.gateway.data_dir) / "files"
        kept = [p for p in files.rglob("*") if p.is_file()] if files.exists() else []
        assert kept == []
        assert node.message_count() == 0


async def test_over_the_limit_and_over_the_share_are_refused_plainly(tmp_path: Path) -> None:
    async with packs_node(tmp_path / "data") as node:
        limit = node.gateway.config.gateway.max_message_bytes
        big = await _rest(node, "POLICE", b"<a>" + b"x" * limit + b"</a>")
        assert big.status_code == 413 and "limit" in big.json()["detail"]
        assert node.gateway.validation is not None
        node.gateway.validation.rate = AgencyRate(per_second=1, burst=2)
        sample = _invalid_samples()[0][1].read_bytes()
        answers = [await _rest(node, "POLICE", sample) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert int(answers[2].headers["Retry-After"]) >= 1
        assert "每秒" in answers[2].json()["detail"] and "validations a second" in answers[2].json()["detail"]
        assert (await _rest(node, "COURT", sample)).status_code == 200  # the share is per agency


def test_agency_rate_refills_over_time() -> None:
    now = [0.0]
    rate = AgencyRate(per_second=2, burst=2, clock=lambda: now[0])
    assert rate.take("A") is None and rate.take("A") is None
    wait = rate.take("A")
    assert wait is not None and 0 < wait <= 0.5
    now[0] += 0.5
    assert rate.take("A") is None


_NODE_CLIENT = """
const soap = require(process.argv[2]);
const [url, user, password, record] = process.argv.slice(3);
(async () => {
  const client = await soap.createClientAsync(url + '?wsdl');
  client.setSecurity(new soap.WSSecurity(user, password, {passwordType: 'PasswordDigest'}));
  const [result] = await client.ValidateCaseRecordAsync({FileName: 'from-node.xml', Record: record});
  process.stdout.write(JSON.stringify(result));
})().catch(e => { console.error(String(e && e.body || e)); process.exit(1); });
"""


def _node_soap() -> Path:
    module = NPM_DIR / "node_modules" / "soap"
    if not (module / "package.json").is_file() or shutil.which("node") is None:
        if os.environ.get("CI") == "true":
            raise AssertionError(f"the npm soap client is not in {NPM_DIR}: run tests/system-packages.sh")
        pytest.skip(f"the npm soap client is not in {NPM_DIR} (tests/system-packages.sh installs it)")
    return module


async def test_a_node_js_soap_client_calls_validate_from_the_wsdl(tmp_path: Path) -> None:
    module = _node_soap()
    script = tmp_path / "validate.js"
    script.write_text(_NODE_CLIENT)
    pack, sample = next((p, f) for p, f in _invalid_samples() if p.agency == "PROC")
    async with packs_node(tmp_path / "data") as node:
        expected = (await _rest(node, "PROC", sample.read_bytes())).json()
        run = await asyncio.create_subprocess_exec(
            "node", str(script), str(module), f"{node.url}/soap/proc-soap", "PROC", SOAP_PASSWORDS["PROC"],
            base64.b64encode(sample.read_bytes()).decode(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = await asyncio.wait_for(run.communicate(), 60)
        assert run.returncode == 0, err.decode()
        result = json.loads(out)
        assert result["Outcome"] == "blocked" and result["Accepted"] in (False, "false")
        findings = result["Findings"]["Finding"]
        findings = findings if isinstance(findings, list) else [findings]
        assert [(f["Rule"], f["Severity"], f["MessageEn"], f.get("MessageZh") or "") for f in findings] == [
            (f["rule"], f["severity"], f["message"], f["message_zh"]) for f in expected["findings"]]
        assert node.message_count() == 0


async def test_the_answer_names_the_time_limit_a_delivery_would_start(tmp_path: Path) -> None:
    police = next(p for p in packs() if p.agency == "POLICE")
    request = (police.samples / "valid" / "01-request-arrest-approval.xml").read_bytes()
    async with packs_node(tmp_path / "data") as node:
        rest = (await _rest(node, "POLICE", request)).json()
        [limit] = rest["time_limits"]
        assert limit["limit"] == "arrest-decision" and limit["agency"] == "PROC"
        assert limit["name_zh"] and limit["name_en"]
        last = dt.date.fromisoformat(limit["last_day_if_delivered_today"])
        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
        assert 7 <= (last - today).days <= 7 + 10, "7 days, moved past a holiday at most"
        client = await asyncio.to_thread(_zeep, node, "POLICE")
        soap = await asyncio.to_thread(client.service.ValidateCaseRecord, Record=request)
        [tl] = soap.TimeLimit
        assert (tl.limit, tl.agency, tl.lastDayIfDeliveredToday) == ("arrest-decision", "PROC", last)
        assert (tl.NameZh, tl.NameEn) == (limit["name_zh"], limit["name_en"])
        assert node.message_count() == 0 and await node.gateway.store.list_clocks(now=time.time()) == []
        blocked = (police.samples / "invalid" / "evidence-and-id-defects.xml").read_bytes()
        assert (await _rest(node, "POLICE", blocked)).json()["time_limits"] == []
