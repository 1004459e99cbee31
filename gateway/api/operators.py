"""What operators do: watch queues, see what failed and why, replay or discard, run retention.

Every action is logged in the exchange log with the operator's name and reason.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, Field

from gateway.api.auth import GatewayDep, OperatorKey, ReaderKey
from gateway.api.errors import answers

router = APIRouter(tags=["operators"])

# Waiting or in-flight deliveries are still on their way; replaying them would deliver twice.
_REPLAYABLE = frozenset({"dead", "delivered", "discarded"})

Page = Annotated[int, Query(ge=1, le=1000, description="at most this many rows")]


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


@router.get("/api/v1/queues", summary="deliveries per destination and state", responses=answers(401, 403))
async def queues(gw: GatewayDep, p: ReaderKey) -> list[dict[str, Any]]:
    return [q.as_json() for q in await gw.store.queue_depths()]


@router.get("/api/v1/deliveries", summary="a page of deliveries, filtered", responses=answers(401, 403))
async def deliveries(gw: GatewayDep, p: ReaderKey, state: str | None = None, destination: str | None = None,
                     after: str | None = None, limit: Page = 100) -> list[dict[str, Any]]:
    return [d.as_json() for d in await gw.store.list_deliveries(
        state=state, destination=destination, after=after, limit=limit)]


@router.get("/api/v1/dead-letters", summary="deliveries that need an operator, with reasons",
            responses=answers(401, 403))
async def dead_letters(gw: GatewayDep, p: ReaderKey, destination: str | None = None, after: str | None = None,
                       limit: Page = 100) -> list[dict[str, Any]]:
    return [d.as_json() for d in await gw.store.list_deliveries(
        state="dead", destination=destination, after=after, limit=limit)]


@router.post("/api/v1/deliveries/{delivery_id}/replay",
             summary="deliver again from the original raw record, to this delivery's destination only",
             responses=answers(400, 401, 403, 404, 409))
async def replay(gw: GatewayDep, delivery_id: str, p: OperatorKey, body: ReplayAction | None = None) -> dict[str, Any]:
    action = body or ReplayAction()
    d = await gw.store.get_delivery(delivery_id)
    if d is None:
        raise HTTPException(404, f"no delivery {delivery_id}")
    if d.state not in _REPLAYABLE:
        raise HTTPException(409, f"delivery {delivery_id} is {d.state}; it is still on its way, "
                                 "so a replay would deliver it twice")
    try:
        new = await gw.replay(delivery_id, f"operator:{p.name}", action.reason,
                              expect_state=action.expect_state or d.state)
    except KeyError:
        raise HTTPException(404, f"no delivery {delivery_id}") from None
    except ValueError as e:
        raise HTTPException(409, str(e)) from None
    return {"replayed": delivery_id, "new_delivery": new, "destination": d.destination}


@router.post("/api/v1/dead-letters/replay",
             summary="replay the dead letters of one destination, oldest first, each from its raw record",
             responses=answers(400, 401, 403))
async def replay_dead(request: Request, gw: GatewayDep, body: BulkReplay, p: OperatorKey) -> dict[str, Any]:
    """After a receiver's outage: every dead delivery to `destination`, up to `limit` per call, in the
    order they were first queued (so a case's records keep their order). Each replay is logged
    with the operator and the reason; a dead letter someone else handled meanwhile is skipped."""
    actor = f"operator:{p.name}"
    replayed: list[dict[str, str]] = []
    skipped: list[dict[str, str]] = []
    async with request.app.state.replaying:  # one bulk replay at a time
        for d in await gw.store.list_deliveries(state="dead", destination=body.destination, limit=body.limit):
            try:
                new = await gw.replay(d.id, actor, body.reason, expect_state="dead")
            except Exception as e:  # gone, handled meanwhile, or no longer mappable: said, not fatal
                why = str(e).strip("'") if not isinstance(e, KeyError) else "it no longer exists"
                skipped.append({"delivery": d.id, "case": d.case_number, "why": why})
                continue
            replayed.append({"delivery": d.id, "case": d.case_number, "new_delivery": new})
    left = sum(q.count for q in await gw.store.queue_depths()
               if q.destination == body.destination and q.state == "dead")
    return {"destination": body.destination, "replayed": replayed, "skipped": skipped, "dead_left": left}


@router.post("/api/v1/deliveries/{delivery_id}/discard", summary="give up a dead or waiting delivery",
             responses=answers(400, 401, 403, 404, 409))
async def discard(gw: GatewayDep, delivery_id: str, p: OperatorKey,
                  body: OperatorAction | None = None) -> dict[str, Any]:
    try:
        await gw.store.discard(delivery_id, f"operator:{p.name}", (body or OperatorAction()).reason)
    except KeyError:
        raise HTTPException(404, f"no delivery {delivery_id}") from None
    except ValueError as e:
        raise HTTPException(409, str(e)) from None
    return {"discarded": delivery_id}


@router.post("/api/v1/retention/run",
             summary="drop the payloads of exchanges finished longer ago than the retention policy says",
             responses=answers(401, 403, 409))
async def retention(gw: GatewayDep, p: OperatorKey,
                    days: Annotated[float | None, Query(gt=0, le=36500)] = None) -> dict[str, Any]:
    if days is None and gw.config.gateway.retention.payload_days is None:
        raise HTTPException(409, "no retention policy: set gateway.retention.payload_days, or pass days")
    report = await gw.retention(f"operator:{p.name}", days)
    if report is None:
        raise HTTPException(409, "a retention run is already going on; try again when it has finished")
    return {**vars(report), "summary": report.summary()}
