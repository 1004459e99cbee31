"""API keys: one per agency (submit as itself, read its own messages), operators, auditors.

Keys are compared by their SHA-256 only. A wrong or missing key is answered 401/403 and logged.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.audit.chain import AuditEvent

_header = APIKeyHeader(name="X-API-Key", auto_error=False)
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    role: str  # agency | operator | auditor
    name: str
    agency: str | None = None

    def can_read_message(self, sender: str, destinations: list[str]) -> bool:
        if self.role in ("operator", "auditor"):
            return True
        return self.agency == sender or self.agency in destinations


async def principal(
    request: Request,
    key: str | None = Depends(_header),
    bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    from gateway.runtime import hash_key

    gw = request.app.state.gateway
    presented = key or (bearer.credentials if bearer else None)
    if not presented:
        await _refused(gw, request, "no API key presented")
        raise HTTPException(401, "an API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})
    row = await gw.store.find_api_key(hash_key(presented))
    if row is None:
        await _refused(gw, request, "unknown API key")
        raise HTTPException(401, "this API key is not known", headers={"WWW-Authenticate": "Bearer"})
    return Principal(row["role"], row["name"], row["agency"])


async def _refused(gw: object, request: Request, why: str) -> None:
    client = request.client.host if request.client else "?"
    await gw.store.append_audit([AuditEvent(  # type: ignore[attr-defined]
        "access-refused", f"client {client}", detail={"path": request.url.path, "method": request.method, "why": why})])


def require(*roles: str):  # type: ignore[no-untyped-def]
    async def dep(request: Request, p: Principal = Depends(principal)) -> Principal:
        if p.role not in roles:
            gw = request.app.state.gateway
            await gw.store.append_audit([AuditEvent(
                "access-refused", p.name, detail={"path": request.url.path, "why": f"role {p.role} not allowed"})])
            raise HTTPException(403, f"a {p.role} key may not do this; it needs one of: {', '.join(roles)}")
        return p

    return dep
