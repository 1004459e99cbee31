"""An agency's HTTP endpoint on loopback, standing in for a well-made legacy system.

It answers a receipt, counts arrivals by message id, and answers a repeated Idempotency-Key
with the original receipt instead of acting twice. It records what came (bodies, headers, and
multipart forms part by part), and can be made to fail on purpose (status codes, slowness) to
drive the sender's paths. It runs inside the test's event loop (`serving(rcv.app(), rcv.port)`)
or on a thread of its own (`start`/`stop`) when the test's loop is busy or the senders are
other processes.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from .ports import free_port


@dataclass
class Receiver:
    """A loopback receiver; `fail_next` holds status codes to answer before accepting again."""

    port: int = field(default_factory=free_port)
    arrivals: Counter[str] = field(default_factory=Counter)  # message id -> times accepted
    keys: dict[str, bytes] = field(default_factory=dict)  # idempotency key -> receipt answered
    duplicate_arrivals: int = 0  # retries of a key already acted on: answered, not acted on again
    bodies: dict[str, bytes] = field(default_factory=dict)  # message id -> body first accepted
    key_bodies: dict[str, bytes] = field(default_factory=dict)  # idempotency key -> body accepted with it
    headers: list[dict[str, str]] = field(default_factory=list)  # every request's, failed ones too
    forms: list[dict[str, Any]] = field(default_factory=list)  # multipart: {"headers", "record", "files"}
    fail_next: list[int] = field(default_factory=list)
    delay: float = 0.0
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

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
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            self.forms.append(await self._form(request))
        mid = request.headers.get("x-message-id", "")
        key = request.headers.get("idempotency-key", "")
        self.arrivals[mid] += 1
        if key in self.keys:
            self.duplicate_arrivals += 1
            return Response(self.keys[key], media_type="application/json")
        receipt = json.dumps({"received": mid, "key": key, "number": len(self.keys) + 1}).encode()
        self.keys[key] = receipt
        self.bodies[mid] = body
        self.key_bodies[key] = body
        return Response(receipt, media_type="application/json")

    @staticmethod
    async def _form(request: Request) -> dict[str, Any]:
        """The parts as (filename, bytes, media type), read by Starlette's own form parser; a part
        without a filename is kept as (None, its text, None), so that a test comparing parts sees it."""
        form = await request.form(max_files=100, max_part_size=64 * 1024 * 1024)
        got: dict[str, Any] = {"headers": dict(request.headers), "files": []}
        for name, value in form.multi_items():
            item = ((value.filename, await value.read(), value.content_type) if isinstance(value, UploadFile)
                    else (None, value.encode(), None))
            if name == "record":
                got["record"] = item
            else:
                got["files"].append(item)
        return got

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/receive", self.receive, methods=["POST"])])

    def start(self) -> None:
        """Serve on a thread of its own until `stop`."""
        self._server = uvicorn.Server(uvicorn.Config(self.app(), host="127.0.0.1", port=self.port,
                                                     log_level="error", lifespan="off", access_log=False))
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            assert self._thread.is_alive(), f"the receiver could not serve on port {self.port}"
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server:
            self._server.should_exit = True
        if self._thread:
            self._thread.join(10)
