"""What agencies do through the API: submit a record as themselves, follow their own messages."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from gateway.api import views
from gateway.api.auth import AgencyKey, AnyKey, GatewayDep, Principal, own_inbound, refuse
from gateway.api.errors import RETRY_AFTER, answers
from gateway.errors import Busy
from gateway.model import EvidenceDoc, InboundRecord, MessageStatus
from gateway.queries import PAGE_MAX
from gateway.runtime import Gateway

log = logging.getLogger("gateway.api")
router = APIRouter(tags=["agencies"])

_RECORD_BODY = {"requestBody": {"required": True, "description": "the record, in the agency's own format", "content": {
    media: {"schema": {"type": "string", "format": "binary"}} for media in ("application/xml", "text/xml")}}}


@router.post("/api/v1/messages", summary="submit a record as the calling agency", status_code=202,
             openapi_extra=_RECORD_BODY, responses={
                 200: {"description": "a resend: the original receipt"},
                 422: {"description": "refused: the receipt lists the reasons"}, **answers(400, 401, 403, 413, 503)})
async def submit(request: Request, gw: GatewayDep, p: AgencyKey, channel: str | None = None,
                 agency_code: Annotated[str | None, Query(alias="agency")] = None) -> Response:
    if agency_code is not None and agency_code != p.agency:
        await refuse(request, p.name, f"agency key of {p.agency} used to submit as {agency_code}")
        raise HTTPException(403, f"this is a key of agency {p.agency}; it cannot submit as {agency_code}")
    agency, inbound = await own_inbound(request, gw, p, channel)
    ch = inbound.name
    limit = gw.config.gateway.max_message_bytes
    body = bytearray()
    async for chunk in request.stream():  # never buffer more than the limit
        body += chunk
        if len(body) > limit:
            await refuse(request, p.name, f"body over {limit} bytes")
            raise HTTPException(413, f"the record is over the limit of {limit:,} bytes; not accepted")
    try:
        assert gw.pipeline is not None
        with gw.pipeline.admission.slot(ch):  # a pushed record: refused as busy, never left waiting
            receipt = await gw.intake(InboundRecord(
                channel=ch, sender=agency.code, body=bytes(body),
                sender_message_id=request.headers.get("x-message-id") or request.headers.get("idempotency-key")))
    except Busy as e:  # nothing was taken; the sender resends after Retry-After
        raise HTTPException(503, e.message, headers={"Retry-After": str(e.retry_after)}) from None
    except Exception as e:  # the store is down: nothing was accepted, the sender must resend
        log.exception("agency %s: the record could not be taken in", agency.code)
        raise HTTPException(503, "the gateway could not store the record just now; nothing was accepted, send it "
                                 "again", headers=RETRY_AFTER) from e
    code = 200 if receipt.duplicate else (202 if receipt.status == MessageStatus.ACCEPTED else 422)
    return JSONResponse(receipt.as_dict(), status_code=code)


async def message_for(gw: Gateway, request: Request, message_id: str, p: Principal) -> dict[str, Any]:
    """A message with its deliveries, if the caller may read it (else 403, logged, or 404)."""
    m = await gw.store.get_message(message_id)
    if m is None:
        raise HTTPException(404, f"no message {message_id}")
    deliveries = await gw.store.get_deliveries(message_id)
    if not p.can_read_message(m.sender, [d.destination for d in deliveries]):
        await refuse(request, p.name, f"message {message_id} is not one of agency {p.agency}'s")
        raise HTTPException(403, f"message {message_id} was neither sent by nor to agency {p.agency}")
    return {**m.as_json(), "deliveries": [d.as_json() for d in deliveries]}


@router.get("/api/v1/messages/{message_id}", tags=["operators"], summary="status of one message",
            responses=answers(401, 403, 404))
async def message(request: Request, gw: GatewayDep, message_id: str, p: AnyKey) -> dict[str, Any]:
    m = await message_for(gw, request, message_id, p)
    return views.message_for_agency(p.agency, m) if p.role == "agency" and p.agency else m


@router.get("/api/v1/messages/{message_id}/history", tags=["operators"],
            summary="every step of one message: time, actor, action, details", responses=answers(401, 403, 404))
async def history(request: Request, gw: GatewayDep, message_id: str, p: AnyKey) -> dict[str, Any]:
    m = await message_for(gw, request, message_id, p)
    entries = await gw.store.audit_entries(message_id=message_id, limit=10_000)
    attempts = {d["id"]: [a.as_json() for a in await gw.store.get_attempts(d["id"])] for d in m["deliveries"]}
    steps = [e.as_dict() for e in entries]
    if p.role == "agency" and p.agency:
        return views.history_for_agency(p.agency, m, steps, attempts)
    return {"message": m, "steps": steps, "attempts": attempts}


@router.get("/api/v1/receipts", summary="the calling agency's own records with their receipts, oldest first "
            "(the same pages as SOAP's GetReceipts and GetNotices)", responses=answers(401, 403))
async def receipts(
    gw: GatewayDep, p: AgencyKey,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="go on after this cursor (the answer's next)")] = 0,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = 100,
    rejected: Annotated[bool, Query(description="only records that were refused (defect notices)")] = False,
) -> dict[str, Any]:
    records, cursor = await gw.queries.sent_records(str(p.agency), after, limit, only_rejected=rejected)
    return {"receipts": [{**r.receipt.as_dict(), "deliveries": [vars(d) for d in r.deliveries],
                          "evidence": [_evidence_ref(r.receipt.message_id, e) for e in r.evidence]} for r in records],
            "next": cursor}


def _evidence_ref(message_id: str, e: EvidenceDoc) -> dict[str, Any]:
    return {"kind": e.kind, "sha256": e.sha256, "issued_at": e.issued_at, "destination": e.destination or None,
            "href": f"/api/v1/messages/{message_id}/evidence/{e.sha256}"}
