"""API keys: one per agency (submit as itself, read its own messages), operators, auditors.

Keys are compared by their SHA-256 only. A wrong or missing key is answered 401/403 and logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

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
    key: Annotated[str | None, Depends(_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    from gateway.runtime import hash_key

    gw = request.app.state.gateway
    presented = key or (bearer.credentials if bearer else None)
    if not presented:
        await refuse(gw, request, f"client {_client(request)}", "no API key presented")
        raise HTTPException(401, "an API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})
    digest = hash_key(presented)
    current = getattr(request.app.state, "key_hashes", None)
    row = await gw.store.find_api_key(digest) if current is None or digest in current else None
    if row is None:
        await refuse(gw, request, f"client {_client(request)}", "unknown API key")
        raise HTTPException(401, "this API key is not known", headers={"WWW-Authenticate": "Bearer"})
    return Principal(row.role, row.name, row.agency)


def configured_key_hashes(config: Any) -> set[str]:
    """Hashes of the keys the configuration names now: a key removed or rotated out stops working
    at the next start, although the store still holds its hash."""
    from gateway.runtime import hash_key

    refs = [a.api_key for a in config.agencies if a.api_key]
    refs += [p.key for p in [*config.access.operators, *config.access.auditors]]
    return {hash_key(ref.resolve()) for ref in refs}


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def refuse(gw: Any, request: Request, actor: str, why: str) -> None:
    """Log a refused request in the exchange log: who tried what, from where, and why it was refused."""
    await gw.store.append_audit([AuditEvent("access-refused", actor, detail={
        "path": request.url.path, "method": request.method, "client": _client(request), "why": why})])


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only keys of the given roles; any other key is refused (403) and logged."""

    async def dep(request: Request, p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in roles:
            await refuse(request.app.state.gateway, request, p.name, f"role {p.role} not allowed")
            raise HTTPException(403, f"a {p.role} key may not do this; it needs one of: {', '.join(roles)}")
        return p

    return dep


# Parameter types for endpoints: which keys may call them.
AnyKey = Annotated[Principal, Depends(principal)]
AgencyKey = Annotated[Principal, Depends(require("agency"))]
OperatorKey = Annotated[Principal, Depends(require("operator"))]
ReaderKey = Annotated[Principal, Depends(require("operator", "auditor"))]
