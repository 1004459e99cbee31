"""A gateway with a key for every role (agencies, an operator, an auditor), served in this test's
event loop on a free loopback port, with memory outbounds whose PROC can be told to refuse cases.
The `api` fixture (tests/conftest.py) runs one per test; API, CLI, console and metrics tests use it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from adapters.memory import MemoryOutbound
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.model import DeliveryResult, OutboundMessage
from gateway.runtime import Gateway

from .config import base_config
from .serving import serving

KEYS = {"POLICE": "police-key-1", "PROC": "proc-key-1", "COURT": "court-key-1",
        "OPERATOR": "operator-key-1", "AUDITOR": "auditor-key-1"}


@dataclass
class Running:
    url: str
    gateway: Gateway
    outs: dict[str, MemoryOutbound]
    fail_proc: set[str]  # case numbers PROC's system refuses while listed

    def client(self, who: str | None) -> httpx.AsyncClient:
        headers = {"X-API-Key": KEYS[who]} if who else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=10)

    async def call(self, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
        async with self.client(who) as c:
            return await c.request(method, path, **kw)

    async def submit(self, who: str, body: bytes, **params: str) -> httpx.Response:
        return await self.call(who, "POST", "/api/v1/messages", content=body, params=params,
                               headers={"Content-Type": "application/xml"})


def keyed_config(data_dir: Path, **gateway: Any) -> dict[str, Any]:
    """base_config whose agencies, operator and auditor have keys, from TEST_*_KEY."""
    data = base_config(data_dir, **gateway)
    for a in data["agencies"]:
        a["api_key"] = {"env": f"TEST_{a['code']}_KEY"}
    data["access"] = {"operators": [{"name": "ops-wang", "key": {"env": "TEST_OPERATOR_KEY"}}],
                      "auditors": [{"name": "audit-li", "key": {"env": "TEST_AUDITOR_KEY"}}]}
    return data


@contextlib.asynccontextmanager
async def serve(data_dir: Path, shape: Callable[[dict[str, Any]], None] | None = None) -> AsyncIterator[Running]:
    """A gateway with keys from TEST_*_KEY on a real uvicorn server on a free loopback port;
    `shape` changes its configuration first (more agencies, their names)."""
    data = keyed_config(data_dir, max_message_bytes=256 * 1024)
    if shape is not None:
        shape(data)
    data["agencies"][2]["inbound"] = [{"name": "court-in", "adapter": "memory"}]
    fail_proc: set[str] = set()

    def proc_handler(m: OutboundMessage) -> DeliveryResult:
        if m.case_number in fail_proc:
            return DeliveryResult.permanent(
                "HTTP 400 from http://proc-cms.internal:8080/cases: dossier incomplete",
                receipt=b"<error>proc-cms internal stack trace</error>")
        return DeliveryResult.delivered()

    outs = {"POLICE": MemoryOutbound(), "PROC": MemoryOutbound(proc_handler), "COURT": MemoryOutbound()}
    gw = Gateway(parse_config(data), outbound=outs)  # type: ignore[arg-type]
    app = create_app(gw)
    async with serving(app) as url:
        yield Running(url, gw, outs, fail_proc)


async def log(r: Running, **params: Any) -> list[dict[str, Any]]:
    """Exchange-log entries as an auditor queries them."""
    return (await r.call("AUDITOR", "GET", "/api/v1/audit", params=params)).json()["entries"]
