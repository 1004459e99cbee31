"""Conformance run: an agency's pack samples sent through its real inbound channel before it goes live.

An operator starts a run (`gateway conformance AGENCY`, the console's button, or POST
/api/v1/conformance/AGENCY). The node sends each sample of the agency's pack (samples/valid must
be accepted, samples/invalid blocked) to its own endpoint of the agency's first HTTP or SOAP
channel, with the agency's credentials and an `X-Conformance-Run` token that this node issued for
this run only. The channel reads the record as it reads live traffic, and the validation service
judges it in test mode: validated, mapped, routed and mapped for each destination, then delivered
nowhere, stored nowhere and never counted. The report says per sample whether it came out as
expected, the bytes each destination would get, and the time taken.

The result goes into the exchange log (`conformance-run`) and is kept per agency; an agency whose
last run failed, or that never ran one, shows as not conformant, and with `require_conformance:
true` its channels refuse live records (rule `conformance.required`) until a run passes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.config import Agency, GatewayConfig, InboundChannel
from gateway.errors import GatewayError
from gateway.mapping import MappingPack, Problem, load_pack
from gateway.pipeline import Context

log = logging.getLogger("gateway.conformance")

TEST_HEADER = "X-Conformance-Run"
ACTION = "conformance-run"
NOT_CONFORMANT = "未通过一致性测试 / not conformant"
_TIMEOUT = 60.0


class ConformanceError(GatewayError):
    """A run that cannot be made (no channel it can drive, no samples); said in Chinese and English."""


@dataclass
class SampleRun:
    name: str
    expected: str  # accepted | blocked
    outcome: str  # accepted | warned | blocked, or error
    seconds: float
    findings: list[dict[str, Any]] = field(default_factory=list)
    destinations: list[str] = field(default_factory=list)
    outbound: dict[str, bytes] = field(default_factory=dict)
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and (self.outcome == "blocked") == (self.expected == "blocked")

    def as_json(self, *, with_bytes: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sample": self.name, "expected": self.expected, "outcome": self.outcome, "ok": self.ok,
            "seconds": round(self.seconds, 4), "destinations": self.destinations,
            "rules": [f["rule"] for f in self.findings], "error": self.error,
            "outbound_sha256": {d: hashlib.sha256(b).hexdigest() for d, b in self.outbound.items()},
        }
        if with_bytes:
            out["findings"] = self.findings
            out["outbound"] = {d: base64.b64encode(b).decode("ascii") for d, b in self.outbound.items()}
        return out


@dataclass
class Report:
    agency: str
    channel: str
    adapter: str
    samples: list[SampleRun]
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.samples) and all(s.ok for s in self.samples)

    def as_json(self, *, with_bytes: bool = True) -> dict[str, Any]:
        return {"agency": self.agency, "channel": self.channel, "adapter": self.adapter, "passed": self.passed,
                "status": "通过 / conformant" if self.passed else NOT_CONFORMANT, "seconds": round(self.seconds, 3),
                "samples": [s.as_json(with_bytes=with_bytes) for s in self.samples]}


def pack_samples(pack: MappingPack) -> Iterator[tuple[Path, str]]:
    """(file, expected outcome): samples/valid must be accepted, samples/invalid blocked."""
    for kind, expected in (("valid", "accepted"), ("invalid", "blocked")):
        for f in sorted((pack.samples / kind).glob("*.xml")):
            yield f, expected


class Conformance:
    """The node's conformance runs: tokens of runs under way, and each agency's last result."""

    def __init__(self, config: GatewayConfig, append: Callable[[list[AuditEvent]], Awaitable[Any]],
                 last_run: Callable[[str], Awaitable[AuditEntry | None]]) -> None:
        self.config = config
        self.append = append
        self.last_run = last_run  # an agency's newest ACTION entry (the store's last_conformance_run)
        self.tokens: dict[str, str] = {}  # token -> agency, while its run is under way
        self.last: dict[str, dict[str, Any]] = {}  # agency -> the summary of its last run
        self.required = {a.code for a in config.agencies if a.require_conformance}

    def allows(self, agency: str, token: str) -> bool:
        """True when `token` is that of a run of `agency` under way on this node."""
        return bool(token) and secrets.compare_digest(self.tokens.get(token, "\0").encode(), agency.encode())

    def conformant(self, agency: str) -> bool | None:
        """The last run's verdict; None when the agency never had one."""
        last = self.last.get(agency)
        return None if last is None else bool(last["passed"])

    def closed(self, agency: str) -> bool:
        """Live records of this agency are refused: it must pass a run first."""
        return agency in self.required and self.conformant(agency) is not True

    async def load(self, *, required_only: bool = False) -> None:
        """Each agency's last run, read back from the exchange log: at start for the agencies whose gate
        depends on it (a restart keeps it shut), then for the others in the background (the console's
        view); an agency not read yet counts as never run, so a gate is never open by mistake."""
        for agency in self.config.agencies:
            if required_only and agency.code not in self.required or agency.code in self.last:
                continue
            last = await self.last_run(agency.code)
            if last is not None and agency.code not in self.last:  # a run that ended meanwhile is newer
                self.last[agency.code] = {**json.loads(last.detail), "at": last.time}

    async def load_the_rest(self) -> None:
        """`load` for every agency, in the background after start; a failure is logged, the view stays partial."""
        try:
            await self.load()
        except Exception:
            log.exception("could not read the agencies' last conformance runs from the exchange log")

    def status(self) -> list[dict[str, Any]]:
        """Per agency: conformant (true, false, or null: never run), required, when, the summary."""
        out = []
        for a in self.config.agencies:
            last = self.last.get(a.code)
            ok = self.conformant(a.code)
            out.append({"agency": a.code, "conformant": ok, "required": a.require_conformance,
                        "closed": self.closed(a.code), "status": "通过 / conformant" if ok else NOT_CONFORMANT
                        if ok is False else "未测试 / not run", "last_run": last})
        return out

    async def run(self, agency_code: str, base_url: str, operator: str) -> Report:
        """Send every sample of the agency's pack through its channel on this node, in test mode."""
        agency = self.config.agency(agency_code)
        channel = next((c for c in agency.inbound if c.adapter in ("http", "soap")), None)
        if channel is None:
            raise ConformanceError(
                f"机构 {agency.code} 没有 HTTP 或 SOAP 接入通道，无法进行一致性测试 / "
                f"agency {agency.code} has no HTTP or SOAP inbound channel a conformance run can send through")
        pack = load_pack(channel.mapping, tuple(self.config.gateway.mapping_dirs))
        samples = list(pack_samples(pack))
        if not samples:
            raise ConformanceError(f"映射包 {pack.name} 没有样例 / pack {pack.name} has no samples in {pack.samples}")
        token = secrets.token_urlsafe(32)
        self.tokens[token] = agency.code
        started = time.perf_counter()
        try:
            send = _http_sender if channel.adapter == "http" else _soap_sender
            runs = [await send(agency, channel, base_url.rstrip("/"), token, path, expected)
                    for path, expected in samples]
        finally:
            del self.tokens[token]
        report = Report(agency.code, channel.name, channel.adapter, runs, time.perf_counter() - started)
        summary = report.as_json(with_bytes=False)
        entries = await self.append([AuditEvent(ACTION, agency.code, detail={**summary, "operator": operator})])
        self.last[agency.code] = {**summary, "operator": operator, "at": entries[0].time if entries else ""}
        return report


def _secret(agency: Agency) -> str:
    if agency.api_key is None:
        return ""
    return agency.api_key.resolve()


async def _http_sender(agency: Agency, channel: InboundChannel, base: str, token: str, sample: Path,
                       expected: str) -> SampleRun:
    path = getattr(channel.adapter_settings, "path", None) or f"/inbound/{channel.name}"
    headers = {TEST_HEADER: token, "Content-Type": "application/xml", "X-File-Name": sample.name,
               "Accept": "application/json"}
    if key := _secret(agency):
        headers["X-API-Key"] = key
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT) as c:
            r = await c.post(base + path, content=sample.read_bytes(), headers=headers)
    except httpx.HTTPError as e:
        return SampleRun(sample.name, expected, "error", time.perf_counter() - started,
                         error=f"{base + path}: {e or type(e).__name__}")
    seconds = time.perf_counter() - started
    if r.status_code != 200 or not r.json().get("conformance"):
        return SampleRun(sample.name, expected, "error", seconds, error=f"HTTP {r.status_code}: {r.text[:500]}")
    v = r.json()
    return SampleRun(sample.name, expected, v["outcome"], seconds, v["findings"], v["destinations"],
                     {d: base64.b64decode(b) for d, b in v.get("outbound", {}).items()})


async def _soap_sender(agency: Agency, channel: InboundChannel, base: str, token: str, sample: Path,
                       expected: str) -> SampleRun:
    import zeep
    from zeep.transports import Transport
    from zeep.wsse.username import UsernameToken

    settings = channel.adapter_settings
    path = getattr(settings, "path", None) or f"/soap/{channel.name}"
    wsse = None
    if getattr(settings, "require_token", True):
        secret = getattr(settings, "password", None)
        password = secret.resolve() if secret is not None else _secret(agency)
        wsse = UsernameToken(getattr(settings, "username", None) or agency.code, password, use_digest=True)

    def call() -> Any:
        transport = Transport(timeout=_TIMEOUT, operation_timeout=_TIMEOUT)
        transport.session.headers[TEST_HEADER] = token
        client = zeep.Client(f"{base}{path}?wsdl", wsse=wsse, transport=transport)
        return client.service.ValidateCaseRecord(FileName=sample.name, Record=sample.read_bytes())

    started = time.perf_counter()
    try:
        v = await asyncio.to_thread(call)
    except Exception as e:  # a fault or a broken connection: the sample did not come through
        return SampleRun(sample.name, expected, "error", time.perf_counter() - started,
                         error=f"{base + path}: {type(e).__name__}: {e}")
    findings = [{"rule": f.Rule, "severity": f.Severity, "message": f.MessageEn, "message_zh": f.MessageZh,
                 "location": f.Location or "", "line": f.Line} for f in (v.Findings.Finding if v.Findings else [])]
    return SampleRun(sample.name, expected, v.Outcome, time.perf_counter() - started, findings,
                     list(v.Destinations.Agency if v.Destinations else []),
                     {o.agency: o._value_1 for o in (v.Outbound or [])})


class Gate:
    """First step of the pipeline: an agency that must pass a conformance run first is refused until it has."""

    name = "conformance"

    def __init__(self, conformance: Conformance) -> None:
        self.conformance = conformance

    def __call__(self, ctx: Context) -> None:
        sender = ctx.record.sender
        if self.conformance.closed(sender):
            ctx.block(Problem(
                "conformance.required", f"agency {sender} must pass a conformance run before its records are "
                "taken live (require_conformance); ask the operators to run one",
                message_zh=f"机构 {sender} 须先通过一致性测试才能正式报送记录（require_conformance），"
                           "请联系运维人员进行测试"))
