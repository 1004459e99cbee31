"""The HTTP side of a simulated agency: a receiving endpoint and a client submitting to the gateway.

The endpoint takes a record as the body, or with its dossier files as multipart form data, and
deduplicates by the Idempotency-Key header (a retried delivery is answered with the
first receipt and not acted on twice), answers a receipt, and counts deliveries. Records the
agency sends in answer go to its inbound channel on the gateway, retried until accepted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import InputRejected
from gateway.sim.agencies import AgencySystem
from gateway.sim.records import CaseStep, from_xml, to_xml

log = logging.getLogger("gateway.sim")

# (event, step, from agency, to agency, detail): how the demo shows the flow as it happens
Observer = Callable[[str, CaseStep, str, str, str], None]


class HttpAgency:
    """Puts one AgencySystem on HTTP: POST /receive for deliveries, POSTs answers into the gateway."""

    def __init__(self, system: AgencySystem, *, submit_url: str, api_key: str, observe: Observer,
                 encode: Callable[[CaseStep], bytes] = to_xml,
                 decode: Callable[[bytes], CaseStep] = from_xml) -> None:
        self.system = system
        self.encode, self.decode = encode, decode
        self.submit_url = submit_url
        self.observe = observe
        self.client = httpx.AsyncClient(timeout=10.0, headers={"X-API-Key": api_key})
        self.deliveries = 0  # every POST, retries included
        self._receipts: dict[str, dict[str, str]] = {}
        self.files: dict[str, dict[str, bytes]] = {}  # idempotency key -> dossier files that came with it
        self._tasks: set[asyncio.Task[object]] = set()

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/receive", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> Response:
        self.deliveries += 1
        key = request.headers.get("idempotency-key")
        if not key:
            return JSONResponse({"error": "Idempotency-Key header is required"}, status_code=400)
        if key in self._receipts:
            return JSONResponse({**self._receipts[key], "duplicate": "true"})
        files: dict[str, bytes] = {}
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()  # the record with its dossier files, read by Starlette's parser
            body = b""
            for name, part in form.multi_items():
                if isinstance(part, UploadFile):
                    data = await part.read()
                    if name == "record":
                        body = data
                    else:
                        files[part.filename or name] = data
        else:
            body = await request.body()
        try:
            step = self.decode(body)
        except InputRejected as e:
            return JSONResponse({"error": e.explain()}, status_code=422)
        receipt = {"agency": self.system.code, "case": step.case_number, "received": key}
        self._receipts[key] = receipt
        self.files[key] = files
        carried = f"{len(files)} dossier files, " if files else ""
        self.observe("delivered", step, step.sender, self.system.code, f"HTTP, {carried}receipt sent")
        for answer in self.system.accept(step, key):
            self._spawn(self.submit(answer))
        return JSONResponse(receipt)

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def submit(self, step: CaseStep, *, attempts: int = 50) -> dict[str, object]:
        """Send one record into the gateway, retrying while it is unreachable; returns the receipt."""
        headers = {"Content-Type": "application/xml", "Idempotency-Key": f"{step.case_number}:{step.action}"}
        last = ""
        for _ in range(attempts):
            try:
                resp = await self.client.post(self.submit_url, content=self.encode(step), headers=headers)
            except httpx.TransportError as e:
                last = f"gateway unreachable: {e or type(e).__name__}"
            else:
                receipt: dict[str, object] = resp.json()
                if resp.status_code < 500:
                    dests = ", ".join(str(d) for d in receipt.get("destinations", []) or [])  # type: ignore[attr-defined]
                    state = str(receipt.get("status", resp.status_code))
                    self.observe("submitted", step, self.system.code, dests or "-", f"HTTP, {state}")
                    return receipt
                last = f"HTTP {resp.status_code}"
            await asyncio.sleep(0.2)
        log.warning("%s gave up sending %s of case %s: %s",
                    self.system.code, step.action, step.case_number, last)
        return {"status": "not sent", "reasons": [last]}

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()
