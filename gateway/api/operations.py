"""Liveness, readiness, metrics and who-am-I: what load balancers, scrapers and the console ask first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gateway.api.auth import AnyKey, GatewayDep, ReaderKey
from gateway.api.errors import answers
from gateway.metrics import CONTENT_TYPE
from gateway.store.schema import SCHEMA_VERSION

router = APIRouter(tags=["operations"])


@router.get("/health", summary="the process is alive")
async def health(gw: GatewayDep) -> dict[str, Any]:
    return {"status": "alive", "node": gw.node}


@router.get("/ready", summary="database reachable, schema current, adapters connected",
            responses={503: {"description": "not ready: the checks say which part is not"}})
async def ready(gw: GatewayDep) -> JSONResponse:
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


@router.get("/metrics", summary="Prometheus metrics: queues, intake, delivery attempts "
            "(operator or auditor key, e.g. as the scrape's bearer token)",
            response_class=Response, responses={
                200: {"content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
                      "description": "Prometheus's text format"}, **answers(401, 403)})
async def metrics(gw: GatewayDep, p: ReaderKey) -> Response:
    return Response(await gw.metrics.render(gw.store), media_type=CONTENT_TYPE)


@router.get("/api/v1/me", tags=["agencies", "operators", "auditors"],
            summary="who this key belongs to and what it may do", responses=answers(401))
async def whoami(gw: GatewayDep, p: AnyKey) -> dict[str, Any]:
    return {"name": p.name, "role": p.role, "agency": p.agency, "node": gw.node}
