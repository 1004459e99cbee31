"""What auditors do: read the exchange log by case, agency and time, and re-check it."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response

from gateway.api.auth import GatewayDep, ReaderKey
from gateway.api.errors import answers
from gateway.audit.signing import public_pem
from gateway.audit.verify import Policy, verify_store
from gateway.store.shared import iso_now

router = APIRouter(tags=["auditors"])


@router.get("/api/v1/audit", summary="exchange-log entries by case, message, agency, time",
            responses=answers(401, 403))
async def audit(
    gw: GatewayDep, p: ReaderKey, case: str | None = None, message_id: str | None = None, agency: str | None = None,
    since: str | None = None, until: str | None = None,
    after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    recent: Annotated[bool, Query(description="look only among the newest `limit` entries of the log "
                                              "(to follow it as it grows, then page on with after_seq)")] = False,
) -> Response:
    if recent:
        after_seq = max(after_seq, (await gw.store.audit_head())[0] - limit)
    entries = await gw.store.audit_entries(case_number=case, message_id=message_id, agency=agency,
                                           since=since, until=until, after_seq=after_seq, limit=limit)
    page = {"entries": [e.as_dict() for e in entries],
            "next_after_seq": entries[-1].seq if len(entries) == limit else None}
    # Written as JSONResponse writes it, without FastAPI's generic encoder walking 500 entries field by field
    # (plain strings and ints only); the page is the same bytes.
    return Response(json.dumps(page, ensure_ascii=False, separators=(",", ":")).encode(), media_type="application/json")


@router.get("/api/v1/audit/checkpoints", summary="signed checkpoints of the log's head", responses=answers(401, 403))
async def checkpoints(
    gw: GatewayDep, p: ReaderKey, after_seq: Annotated[int, Query(ge=0, le=2**63 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 100,
) -> dict[str, Any]:
    """Oldest first, a page at a time (a year's log holds thousands): go on with `next_after_seq`."""
    signer = gw.signer
    assert signer is not None  # set when the node starts, before the API serves
    page = await gw.store.checkpoints(after_seq, limit)
    return {"public_key": public_pem(signer.public).decode(), "key_id": signer.key_id,
            "checkpoints": [c.as_json() for c in page],
            "next_after_seq": page[-1].seq if len(page) == limit else None}


@router.get("/api/v1/audit/verify", summary="re-check the whole exchange log: chain, hashes and signed checkpoints",
            responses=answers(401, 403, 409))
async def verify(request: Request, gw: GatewayDep, p: ReaderKey) -> dict[str, Any]:
    verifying = request.app.state.verifying  # a verification reads the whole log: one at a time is enough
    if verifying.locked():
        raise HTTPException(409, "a verification of the log is already running; try again when it has finished")
    assert gw.signer is not None
    async with verifying:
        g = gw.config.gateway  # the node checks itself while running: its young unsigned tail is allowed
        v = await verify_store(gw.store, gw.signer.public,
                               policy=Policy(g.checkpoint_every, g.checkpoint_seconds, live=iso_now()))
    return {"ok": v.ok, "summary": v.summary(), "entries": v.entries, "first_seq": v.first_seq,
            "last_seq": v.last_seq, "checkpoints": v.checkpoints, "covered_to": v.covered_to,
            "uncovered": list(v.uncovered) if v.uncovered else None,
            "problem": {**vars(v.problem), "check": v.problem.check} if v.problem else None}
