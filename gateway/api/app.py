"""The REST API (OpenAPI at /docs) and the push adapters' endpoints on one ASGI app.

Operators see queues, failures with reasons, and replay or discard; auditors query the exchange
log; agencies submit and read their own messages. Every operator action lands in the log.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.api import console
from gateway.api.auth import (
    AgencyKey,
    AnyKey,
    OperatorKey,
    Principal,
    ReaderKey,
    configured_key_hashes,
    refuse,
)
from gateway.errors import Busy
from gateway.model import InboundRecord, MessageStatus
from gateway.store.schema import SCHEMA_VERSION


class PushFirst:
    """The gateway's ASGI app: a push adapter's request goes straight to its route, the rest to the API.

    Records from legacy systems are the hot path. FastAPI's per-request work (telemetry checks,
    error pages, exception handlers, body limits, dependency exit stacks) serves the REST API and
    cost about a third of the HTTP handling per record, while the adapters' endpoints answer
    every error themselves. Anything that is not exactly a push route, with one of its methods,
    goes through the full API as before (so a wrong method still gets the API's 405).
    """

    def __init__(self, api: FastAPI, routes: dict[str, Route]) -> None:
        self.api = api
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = self.routes.get(scope["path"])
            if route is not None and (not route.methods or scope["method"] in route.methods):
                await route.handle(scope, receive, send)
                return
        await self.api(scope, receive, send)


class OperatorAction(BaseModel):
    reason: str = Field(default="operator action", min_length=1, max_length=2000,
                        description="why; kept in the exchange log with who did it")


class ReplayAction(OperatorAction):
    expect_state: str | None = Field(default=None, description=(
        "the state the operator saw (e.g. dead); if the delivery is in another state by now, because "
        "someone else replayed or discarded it, nothing is done and the answer is 409"))


class BulkReplay(OperatorAction):
    destination: str = Field(min_length=1, description="the agency code whose dead letters to replay")
    limit: int = Field(default=500, ge=1, le=1000, description="at most this many in one call")


# Waiting or in-flight deliveries are still on their way; replaying them would deliver twice.
_REPLAYABLE = frozenset({"dead", "delivered", "discarded"})


def create_app(gw: Any) -> PushFirst:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not gw.started:
            await gw.start()
        app.state.key_hashes = configured_key_hashes(gw.config)
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
    push: dict[str, Route] = {}
    for adapter in gw.inbound.values():
        for route in adapter.routes(gw.intake):
            app.router.routes.append(route)  # also reachable through the API's stack, and listed there
            if isinstance(route, Route) and not route.param_convertors:
                push[route.path] = route

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

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics: queues, intake, delivery attempts "
             "(operator or auditor key, e.g. as the scrape's bearer token)")
    async def metrics(p: ReaderKey) -> Response:
        from gateway.metrics import CONTENT_TYPE

        return Response(await gw.metrics.render(gw.store), media_type=CONTENT_TYPE)

    @app.get("/api/v1/me", tags=["agencies", "operators", "auditors"],
             summary="who this key belongs to and what it may do")
    async def whoami(p: AnyKey) -> dict[str, Any]:
        return {"name": p.name, "role": p.role, "agency": p.agency, "node": gw.node}

    @app.post("/api/v1/messages", tags=["agencies"], summary="submit a record as the calling agency")
    async def submit(request: Request, p: AgencyKey, channel: str | None = None,
                     agency_code: Annotated[str | None, Query(alias="agency")] = None) -> Response:
        if agency_code is not None and agency_code != p.agency:
            await refuse(gw, request, p.name, f"agency key of {p.agency} used to submit as {agency_code}")
            raise HTTPException(403, f"this is a key of agency {p.agency}; it cannot submit as {agency_code}")
        try:
            agency = gw.config.agency(p.agency)
        except KeyError:
            raise HTTPException(403, f"agency {p.agency} is no longer configured") from None
        if not agency.inbound:
            raise HTTPException(400, f"agency {p.agency} has no inbound channel configured")
        ch = channel or agency.inbound[0].name
        if ch not in {c.name for c in agency.inbound}:
            await refuse(gw, request, p.name, f"channel {ch} is not one of agency {p.agency}'s")
            raise HTTPException(403, f"channel {ch} does not belong to agency {p.agency}")
        limit = gw.config.gateway.max_message_bytes
        body = bytearray()
        async for chunk in request.stream():  # never buffer more than the limit
            body += chunk
            if len(body) > limit:
                await refuse(gw, request, p.name, f"body over {limit} bytes")
                raise HTTPException(413, f"the record is over the limit of {limit:,} bytes; not accepted")
        try:
            with gw.pipeline.admission.slot(ch):  # a pushed record: refused as busy, never left waiting
                receipt = await gw.intake(InboundRecord(
                    channel=ch, sender=p.agency, body=bytes(body),  # type: ignore[arg-type]
                    sender_message_id=request.headers.get("x-message-id") or request.headers.get("idempotency-key")))
        except Busy as e:  # nothing was taken; the sender resends after Retry-After
            raise HTTPException(503, e.message, headers={"Retry-After": str(e.retry_after)}) from None
        code = 200 if receipt.duplicate else (202 if receipt.status == MessageStatus.ACCEPTED else 422)
        return JSONResponse(receipt.as_dict(), status_code=code)

    async def _message_for(request: Request, message_id: str, p: Principal) -> dict[str, Any]:
        m = await gw.store.get_message(message_id)
        if m is None:
            raise HTTPException(404, f"no message {message_id}")
        deliveries = await gw.store.get_deliveries(message_id)
        if not p.can_read_message(m["sender"], [d["destination"] for d in deliveries]):
            await refuse(gw, request, p.name, f"message {message_id} is not one of agency {p.agency}'s")
            raise HTTPException(403, f"message {message_id} was neither sent by nor to agency {p.agency}")
        m["deliveries"] = deliveries
        return m

    @app.get("/api/v1/messages/{message_id}", tags=["agencies", "operators"], summary="status of one message")
    async def message(request: Request, message_id: str, p: AnyKey) -> dict[str, Any]:
        return await _message_for(request, message_id, p)

    @app.get("/api/v1/messages/{message_id}/history", tags=["agencies", "operators"],
             summary="every step of one message: time, actor, action, details")
    async def history(request: Request, message_id: str, p: AnyKey) -> dict[str, Any]:
        m = await _message_for(request, message_id, p)
        entries = await gw.store.audit_entries(message_id=message_id, limit=10_000)
        attempts = {d["id"]: await gw.store.get_attempts(d["id"]) for d in m["deliveries"]}
        return {"message": m, "steps": [e.as_dict() for e in entries], "attempts": attempts}

    @app.get("/api/v1/queues", tags=["operators"], summary="deliveries per destination and state")
    async def queues(p: ReaderKey) -> list[dict[str, Any]]:
        return await gw.store.queue_depths()

    @app.get("/api/v1/deliveries", tags=["operators"], summary="a page of deliveries, filtered")
    async def deliveries(
        p: ReaderKey, state: str | None = None, destination: str | None = None, after: str | None = None,
        limit: Annotated[int, Query(le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return await gw.store.list_deliveries(
            state=state, destination=destination, after=after, limit=limit)

    @app.get("/api/v1/dead-letters", tags=["operators"],
             summary="deliveries that need an operator, with reasons")
    async def dead_letters(
        p: ReaderKey, destination: str | None = None, after: str | None = None,
        limit: Annotated[int, Query(le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        return await gw.store.list_deliveries(
            state="dead", destination=destination, after=after, limit=limit)

    @app.post("/api/v1/deliveries/{delivery_id}/replay", tags=["operators"],
              summary="deliver again from the original raw record, to this delivery's destination only")
    async def replay(delivery_id: str, p: OperatorKey, body: ReplayAction | None = None) -> dict[str, Any]:
        action = body or ReplayAction()
        d = await gw.store.get_delivery(delivery_id)
        if d is None:
            raise HTTPException(404, f"no delivery {delivery_id}")
        if d["state"] not in _REPLAYABLE:
            raise HTTPException(409, f"delivery {delivery_id} is {d['state']}; it is still on its way, "
                                     "so a replay would deliver it twice")
        try:
            new = await gw.replay(delivery_id, f"operator:{p.name}", action.reason,
                                  expect_state=action.expect_state or d["state"])
        except KeyError:
            raise HTTPException(404, f"no delivery {delivery_id}") from None
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        return {"replayed": delivery_id, "new_delivery": new, "destination": d["destination"]}

    replaying = asyncio.Lock()

    @app.post("/api/v1/dead-letters/replay", tags=["operators"],
              summary="replay the dead letters of one destination, oldest first, each from its raw record")
    async def replay_dead(body: BulkReplay, p: OperatorKey) -> dict[str, Any]:
        """After a receiver's outage: every dead delivery to `destination`, up to `limit` per call, in the
        order they were first queued (so a case's records keep their order). Each replay is logged
        with the operator and the reason; a dead letter someone else handled meanwhile is skipped."""
        actor = f"operator:{p.name}"
        replayed: list[dict[str, str]] = []
        skipped: list[dict[str, str]] = []
        async with replaying:
            for d in await gw.store.list_deliveries(state="dead", destination=body.destination, limit=body.limit):
                try:
                    new = await gw.replay(d["id"], actor, body.reason, expect_state="dead")
                except Exception as e:  # gone, handled meanwhile, or no longer mappable: said, not fatal
                    why = str(e).strip("'") if not isinstance(e, KeyError) else "it no longer exists"
                    skipped.append({"delivery": d["id"], "case": d["case_number"], "why": why})
                    continue
                replayed.append({"delivery": d["id"], "case": d["case_number"], "new_delivery": new})
        left = sum(q["count"] for q in await gw.store.queue_depths()
                   if q["destination"] == body.destination and q["state"] == "dead")
        return {"destination": body.destination, "replayed": replayed, "skipped": skipped, "dead_left": left}

    @app.post("/api/v1/deliveries/{delivery_id}/discard", tags=["operators"],
              summary="give up a dead or waiting delivery")
    async def discard(delivery_id: str, p: OperatorKey, body: OperatorAction | None = None) -> dict[str, Any]:
        try:
            await gw.store.discard(delivery_id, f"operator:{p.name}", (body or OperatorAction()).reason)
        except KeyError:
            raise HTTPException(404, f"no delivery {delivery_id}") from None
        except ValueError as e:
            raise HTTPException(409, str(e)) from None
        return {"discarded": delivery_id}

    @app.post("/api/v1/retention/run", tags=["operators"],
              summary="drop the payloads of exchanges finished longer ago than the retention policy says")
    async def retention(p: OperatorKey, days: Annotated[float | None, Query(gt=0)] = None) -> dict[str, Any]:
        if days is None and gw.config.gateway.retention.payload_days is None:
            raise HTTPException(409, "no retention policy: set gateway.retention.payload_days, or pass days")
        report = await gw.retention(f"operator:{p.name}", days)
        if report is None:
            raise HTTPException(409, "a retention run is already going on; try again when it has finished")
        return {**vars(report), "summary": report.summary()}

    @app.get("/api/v1/audit", tags=["auditors"],
             summary="exchange-log entries by case, message, agency, time")
    async def audit(
        p: ReaderKey, case: str | None = None, message_id: str | None = None, agency: str | None = None,
        since: str | None = None, until: str | None = None, after_seq: int = 0,
        limit: Annotated[int, Query(le=5000)] = 500,
        recent: Annotated[bool, Query(description="look only among the newest `limit` entries of the log "
                                                  "(to follow it as it grows, then page on with after_seq)")] = False,
    ) -> dict[str, Any]:
        if recent:
            after_seq = max(after_seq, (await gw.store.audit_head())[0] - limit)
        entries = await gw.store.audit_entries(case_number=case, message_id=message_id, agency=agency,
                                               since=since, until=until, after_seq=after_seq, limit=limit)
        return {"entries": [e.as_dict() for e in entries],
                "next_after_seq": entries[-1].seq if len(entries) == limit else None}

    @app.get("/api/v1/audit/checkpoints", tags=["auditors"], summary="signed checkpoints of the log's head")
    async def checkpoints(p: ReaderKey) -> dict[str, Any]:
        from gateway.audit.signing import public_pem

        return {"public_key": public_pem(gw.signer.public).decode(), "key_id": gw.signer.key_id,
                "checkpoints": await gw.store.checkpoints()}

    verifying = asyncio.Lock()

    @app.get("/api/v1/audit/verify", tags=["auditors"],
             summary="re-check the whole exchange log: chain, hashes and signed checkpoints")
    async def verify(p: ReaderKey) -> dict[str, Any]:
        from gateway.audit.verify import verify_store

        if verifying.locked():  # it reads the whole log: one at a time is enough for everyone
            raise HTTPException(409, "a verification of the log is already running; try again when it has finished")
        async with verifying:
            v = await verify_store(gw.store, gw.signer.public)
        return {"ok": v.ok, "summary": v.summary(), "entries": v.entries, "first_seq": v.first_seq,
                "last_seq": v.last_seq, "checkpoints": v.checkpoints, "covered_to": v.covered_to,
                "uncovered": list(v.uncovered) if v.uncovered else None,
                "problem": vars(v.problem) if v.problem else None}

    console.mount(app)
    return PushFirst(app, push)
