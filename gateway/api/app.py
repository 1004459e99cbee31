"""The REST API (OpenAPI at /docs) and the push adapters' endpoints on one ASGI app.

Operators see queues, failures with reasons, and replay or discard; auditors query the exchange
log; agencies submit and read their own messages. Every operator action lands in the log.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from gateway.api.auth import Principal, principal, require
from gateway.model import InboundRecord, MessageStatus
from gateway.store.schema import SCHEMA_VERSION


class OperatorAction(BaseModel):
    reason: str = "operator action"


def create_app(gw: Any) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not gw.started:
            await gw.start()
        ev = getattr(app.state, "ready_event", None)
        if ev is not None:
            ev.set()
        try:
            yield
        finally:
            await gw.stop()

    app = FastAPI(
        title="Case Exchange Gateway",
        version="0.1.0",
        description="Moves criminal-case records between justice agencies; see /docs for every operation.",
        lifespan=lifespan,
    )
    app.state.gateway = gw
    gw.build()
    for adapter in gw.inbound.values():
        for route in adapter.routes(gw.intake):
            app.router.routes.append(route)

    @app.get("/health", tags=["operations"], summary="the process is alive")
    async def health() -> dict[str, Any]:
        return {"status": "alive", "node": gw.node}

    @app.get("/ready", tags=["operations"], summary="database reachable, schema current, adapters connected")
    async def ready() -> JSONResponse:
        checks: dict[str, Any] = {}
        ok = gw.started
        try:
            await gw.store.audit_head()
            version = await gw.store.schema_version()
            current = version == SCHEMA_VERSION
            checks["store"] = {"ok": current, "schema_version": version, "expected": SCHEMA_VERSION}
            ok = ok and current
        except Exception as e:
            ok = False
            checks["store"] = {"ok": False, "error": str(e)}
        for name, adapter in gw.inbound.items():
            h = adapter.health()
            checks[f"inbound:{name}"] = h
            ok = ok and bool(h.get("ok", True))
        return JSONResponse({"ready": ok, "node": gw.node, "checks": checks}, status_code=200 if ok else 503)

    @app.post("/api/v1/messages", tags=["agencies"], summary="submit a record as the calling agency")
    async def submit(request: Request, channel: str | None = None, p: Principal = Depends(require("agency"))) -> Response:
        agency = gw.config.agency(p.agency)
        if not agency.inbound:
            raise HTTPException(400, f"agency {p.agency} has no inbound channel configured")
        ch = channel or agency.inbound[0].name
        if ch not in {c.name for c in agency.inbound}:
            raise HTTPException(403, f"channel {ch} does not belong to agency {p.agency}")
        body = await request.body()
        receipt = await gw.intake(InboundRecord(
            channel=ch, sender=p.agency, body=body,  # type: ignore[arg-type]
            sender_message_id=request.headers.get("x-message-id") or request.headers.get("idempotency-key")))
        code = 200 if receipt.duplicate else (202 if receipt.status == MessageStatus.ACCEPTED else 422)
        return JSONResponse(receipt.as_dict(), status_code=code)

    async def _message_for(message_id: str, p: Principal) -> dict[str, Any]:
        m = await gw.store.get_message(message_id)
        if m is None:
            raise HTTPException(404, f"no message {message_id}")
        deliveries = await gw.store.get_deliveries(message_id)
        if not p.can_read_message(m["sender"], [d["destination"] for d in deliveries]):
            raise HTTPException(404, f"no message {message_id}")
        m["deliveries"] = deliveries
        return m

    @app.get("/api/v1/messages/{message_id}", tags=["agencies", "operators"], summary="status of one message")
    async def message(message_id: str, p: Principal = Depends(principal)) -> dict[str, Any]:
        return await _message_for(message_id, p)

    @app.get("/api/v1/messages/{message_id}/history", tags=["agencies", "operators"],
             summary="every step of one message: time, actor, action, details")
    async def history(message_id: str, p: Principal = Depends(principal)) -> dict[str, Any]:
        m = await _message_for(message_id, p)
        entries = await gw.store.audit_entries(message_id=message_id, limit=10_000)
        attempts = {d["id"]: await gw.store.get_attempts(d["id"]) for d in m["deliveries"]}
        return {"message": m, "steps": [e.as_dict() for e in entries], "attempts": attempts}

    @app.get("/api/v1/queues", tags=["operators"], summary="deliveries per destination and state")
    async def queues(p: Principal = Depends(require("operator", "auditor"))) -> list[dict[str, Any]]:
        return await gw.store.queue_depths()  # type: ignore[no-any-return]

    @app.get("/api/v1/deliveries", tags=["operators"], summary="a page of deliveries, filtered")
    async def deliveries(
        state: str | None = None, destination: str | None = None, after: str | None = None,
        limit: int = Query(100, le=1000), p: Principal = Depends(require("operator", "auditor")),
    ) -> list[dict[str, Any]]:
        return await gw.store.list_deliveries(  # type: ignore[no-any-return]
            state=state, destination=destination, after=after, limit=limit)

    @app.get("/api/v1/dead-letters", tags=["operators"], summary="deliveries that need an operator, with reasons")
    async def dead_letters(
        destination: str | None = None, after: str | None = None, limit: int = Query(100, le=1000),
        p: Principal = Depends(require("operator", "auditor")),
    ) -> list[dict[str, Any]]:
        return await gw.store.list_deliveries(  # type: ignore[no-any-return]
            state="dead", destination=destination, after=after, limit=limit)

    @app.post("/api/v1/deliveries/{delivery_id}/replay", tags=["operators"],
              summary="deliver again from the original raw record, to this delivery's destination only")
    async def replay(delivery_id: str, body: OperatorAction | None = None,
                     p: Principal = Depends(require("operator"))) -> dict[str, Any]:
        try:
            new = await gw.replay(delivery_id, f"operator:{p.name}", (body or OperatorAction()).reason)
        except KeyError:
            raise HTTPException(404, f"no delivery {delivery_id}") from None
        return {"replayed": delivery_id, "new_delivery": new}

    @app.post("/api/v1/deliveries/{delivery_id}/discard", tags=["operators"], summary="give up a dead delivery")
    async def discard(delivery_id: str, body: OperatorAction | None = None,
                      p: Principal = Depends(require("operator"))) -> dict[str, Any]:
        try:
            await gw.store.discard(delivery_id, f"operator:{p.name}", (body or OperatorAction()).reason)
        except KeyError:
            raise HTTPException(404, f"no delivery {delivery_id}") from None
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        return {"discarded": delivery_id}

    @app.get("/api/v1/audit", tags=["auditors"], summary="exchange-log entries by case, message, agency, time")
    async def audit(
        case: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0,
        limit: int = Query(500, le=5000), p: Principal = Depends(require("auditor", "operator")),
    ) -> dict[str, Any]:
        entries = await gw.store.audit_entries(case_number=case, message_id=message_id, agency=agency, since=since,
                                               until=until, after_seq=after_seq, limit=limit)
        return {"entries": [e.as_dict() for e in entries],
                "next_after_seq": entries[-1].seq if len(entries) == limit else None}

    @app.get("/api/v1/audit/checkpoints", tags=["auditors"], summary="signed checkpoints of the log's head")
    async def checkpoints(p: Principal = Depends(require("auditor", "operator"))) -> dict[str, Any]:
        from gateway.audit.signing import public_pem

        return {"public_key": public_pem(gw.signer.public).decode(), "key_id": gw.signer.key_id,
                "checkpoints": await gw.store.checkpoints()}

    return app
