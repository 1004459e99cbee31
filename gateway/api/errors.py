"""The refusals the API answers, described once for the OpenAPI schema."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.audit.chain import AuditEvent

RETRY_AFTER = {"Retry-After": "2"}  # a 503's advice: a database restart or failover is over in about that time


class Problem(BaseModel):
    """What every refusal carries: a sentence saying what was wrong and what to do."""

    detail: str


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of an operation: each refusal it may answer, with its meaning."""
    meaning = {
        400: "the request is malformed", 401: "no API key, or one the gateway does not know",
        403: "the key may not do this", 404: "no such message, delivery or case",
        409: "the state changed meanwhile, or the same work is already running",
        413: "the body is over the size limit", 422: "the parameters are not valid",
        429: "too many requests from this client; wait as Retry-After says",
        503: "the gateway cannot take this just now; send it again later (Retry-After)",
    }
    if 401 in codes:  # a client that keeps presenting wrong keys is slowed down before any key is read
        codes = (*codes, 429)
    return {c: {"model": Problem, "description": meaning[c]} for c in codes}


def _outage(exc: BaseException) -> bool:
    """The store or the disk is away (a passing fault): the caller should try again later."""
    if isinstance(exc, (OSError, sqlite3.OperationalError, TimeoutError)):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, (psycopg.OperationalError, psycopg.errors.AdminShutdown))


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Any error an endpoint did not answer itself: one entry in the exchange log (what was asked;
    the server logs the traceback in the node log), answered honestly and never with a traceback: 503
    with Retry-After when the store or the disk is away, else 500 saying nothing was changed by halves."""
    gw = request.app.state.gateway
    with contextlib.suppress(Exception):  # when the store is what failed, the node log has it
        await gw.store.append_audit([AuditEvent("internal-error", "gateway", detail={
            "path": request.url.path, "method": request.method, "error": type(exc).__name__})])
    if _outage(exc):
        return JSONResponse({"detail": "the gateway cannot reach its store just now; nothing was changed, "
                                       "try again in a moment"}, status_code=503, headers=RETRY_AFTER)
    return JSONResponse({"detail": f"the gateway failed on this request ({type(exc).__name__}); it is logged "
                                   "for the operators, and each change the gateway makes is whole or not made"},
                        status_code=500)
