"""Statutory time-limit clocks for people: which are running, approaching their end, overdue or stopped.

Operators and auditors see every clock; an agency sees the clocks it is responsible for. The
console's panel reads the same answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from gateway.api.auth import AnyKey, GatewayDep
from gateway.api.errors import answers

router = APIRouter(tags=["clocks"])

State = Literal["pending", "running", "approaching", "overdue", "stopped"]


@router.get("/api/v1/clocks", summary="statutory time-limit clocks (an agency: its own)", responses=answers(401))
async def clocks(gw: GatewayDep, p: AnyKey, state: State | None = None, agency: str | None = None,
                 case: str | None = None, after: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=1000, description="at most this many rows")] = 100,
                 ) -> dict[str, Any]:
    if p.role == "agency":
        agency = p.agency  # an agency's key reads the clocks it is responsible for, whatever it asks
    now = gw.clock_now()
    rows = await gw.store.list_clocks(state=state, agency=agency, case=case, now=now, after=after, limit=limit)
    return {"now": now, "clocks": [r.as_json(now) for r in rows]}
