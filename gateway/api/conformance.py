"""Conformance runs for operators: start one for an agency, and see which agencies are conformant."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request

from gateway.api.auth import GatewayDep, OperatorKey, ReaderKey
from gateway.api.errors import answers
from gateway.conformance import ConformanceError

router = APIRouter(tags=["operators"])


@router.post("/api/v1/conformance/{agency}", summary="send each sample of the agency's pack through its channel "
             "on this node in test mode (delivered nowhere, never counted) and report per sample: as expected or "
             "not, the bytes each destination would get, the time taken", responses=answers(400, 401, 403, 404))
async def run(request: Request, gw: GatewayDep, p: OperatorKey, agency: str) -> dict[str, Any]:
    try:
        gw.config.agency(agency)
    except KeyError:
        raise HTTPException(404, f"没有机构 {agency} / no agency {agency} is configured") from None
    try:
        report = await gw.conformance.run(agency, str(request.base_url), p.name)
    except ConformanceError as e:
        raise HTTPException(400, str(e)) from None
    return report.as_json()


@router.get("/api/v1/conformance", summary="each agency's last conformance run: conformant, not conformant, or "
            "never run; and whether its channels are closed to live records until it passes",
            responses=answers(401, 403))
async def status(gw: GatewayDep, p: ReaderKey) -> list[dict[str, Any]]:
    return gw.conformance.status()
