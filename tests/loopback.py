"""Real HTTP on loopback for tests: a receiving legacy system and a gateway, each under uvicorn.

The receiver behaves like a well-made agency system: it answers a receipt, counts arrivals by
message id, and answers a repeated Idempotency-Key with the original receipt instead of acting
twice. Tests can make it fail on purpose (status codes, slowness) to drive the client's paths.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .conftest import base_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """A loopback receiver; `fail_next` holds status codes to answer before accepting again."""

    port: int = field(default_factory=free_port)
    arrivals: Counter[str] = field(default_factory=Counter)  # message id -> times it arrived
    keys: dict[str, bytes] = field(default_factory=dict)  # idempotency key -> receipt answered
    duplicate_arrivals: int = 0
    bodies: dict[str, bytes] = field(default_factory=dict)
    headers: list[dict[str, str]] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)
    delay: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receive"

    async def receive(self, request: Request) -> Response:
        try:
            body = await request.body()
        except ClientDisconnect:  # the sender died mid-request (the crash test kills it on purpose)
            return Response(status_code=400)
        self.headers.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next:
            code = self.fail_next.pop(0)
            return Response(f"receiver says no ({code})", status_code=code)
        mid = request.headers.get("x-message-id", "")
        key = request.headers.get("idempotency-key", "")
        self.arrivals[mid] += 1
        if key in self.keys:
            self.duplicate_arrivals += 1
            return Response(self.keys[key], media_type="application/json")
        receipt = json.dumps({"received": mid, "key": key, "number": len(self.keys) + 1}).encode()
        self.keys[key] = receipt
        self.bodies[mid] = body
        return Response(receipt, media_type="application/json")

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/receive", self.receive, methods=["POST"])])


@contextlib.asynccontextmanager
async def serving(app: Any, port: int) -> AsyncIterator[str]:
    """Serve an ASGI app on 127.0.0.1:port inside the running loop; yields the base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="on", access_log=False))
    task = asyncio.create_task(server.serve())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        assert loop.time() < deadline, f"server on port {port} did not start"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def http_config(data_dir: Path, receiver_url: str, **gateway: Any) -> dict[str, Any]:
    """POLICE sends over HTTP with its API key; PROC receives by HTTP POST."""
    out = {"adapter": "http", "settings": {"url": receiver_url, "read_timeout": 2}}
    cfg = base_config(data_dir, outbound=out, **gateway)
    police = cfg["agencies"][0]
    police["api_key"] = {"env": "POLICE_KEY"}
    police["inbound"] = [{"name": "police-in", "adapter": "http"}]
    return cfg


async def wait_for(pred, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not await pred():
        assert loop.time() < end, "condition not reached in time"
        await asyncio.sleep(0.02)
