"""Signed evidence of a message over REST: the list, and each document as issued (application/xml).

The record's sender, operators and auditors may read it; a receiving agency reads the record, not
what the gateway certified to its sender.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from gateway.api.auth import AnyKey, GatewayDep, Principal, refuse
from gateway.api.errors import answers
from gateway.evidence.service import documents
from gateway.runtime import Gateway

router = APIRouter(tags=["agencies"])


async def _readable(gw: Gateway, request: Request, message_id: str, p: Principal) -> None:
    m = await gw.store.get_message(message_id)
    if m is None:
        raise HTTPException(404, f"no message {message_id}")
    if p.role == "agency" and p.agency != m.sender:
        await refuse(request, p.name, f"evidence of message {message_id}, which agency {p.agency} did not send")
        raise HTTPException(403, f"the evidence of message {message_id} is its sender's; agency {p.agency} did "
                                 "not send it")


@router.get("/api/v1/messages/{message_id}/evidence", summary="the signed evidence issued about a message: "
            "submission (the gateway's decision) and each confirmed delivery", responses=answers(401, 403, 404))
async def evidence_list(request: Request, gw: GatewayDep, message_id: str, p: AnyKey) -> dict[str, Any]:
    await _readable(gw, request, message_id, p)
    docs = await documents(gw.store, message_id, with_bodies=False)
    return {"message_id": message_id, "certificate_href": "/api/v1/evidence/certificate", "evidence": [
        {"kind": d.kind, "sha256": d.sha256, "issued_at": d.issued_at, "destination": d.destination or None,
         "href": f"/api/v1/messages/{message_id}/evidence/{d.sha256}"} for d in docs]}


@router.get("/api/v1/messages/{message_id}/evidence/{sha256}", summary="one signed evidence document, as issued",
            responses={200: {"content": {"application/xml": {}}}, **answers(401, 403, 404)})
async def evidence_document(request: Request, gw: GatewayDep, message_id: str, sha256: str, p: AnyKey) -> Response:
    await _readable(gw, request, message_id, p)
    docs = await documents(gw.store, message_id, with_bodies=False)
    if not any(d.sha256 == sha256 for d in docs):
        raise HTTPException(404, f"message {message_id} has no evidence document {sha256}")
    body = await gw.store.get_blob(sha256)
    if body is None:
        raise HTTPException(404, f"evidence document {sha256} is not stored")
    return Response(body, media_type="application/xml")


@router.get("/api/v1/evidence/certificate", summary="the certificate that signs this node's evidence (PEM)",
            responses={200: {"content": {"application/x-pem-file": {}}}, **answers(401, 404)})
async def certificate(gw: GatewayDep, p: AnyKey) -> Response:
    if gw.evidence is None:
        raise HTTPException(404, "this node issues no signed evidence (gateway.evidence.enabled is false)")
    return Response(gw.evidence.signer.cert_pem(), media_type="application/x-pem-file")
