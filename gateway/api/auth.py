"""API keys: one per agency (submit as itself, read its own messages), operators, auditors.

Keys are compared by their SHA-256 only. A wrong or missing key is answered 401/403 and logged.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from gateway.api.errors import RETRY_AFTER
from gateway.config import Agency, GatewayConfig, InboundChannel
from gateway.keys import resolved_keys
from gateway.runtime import Gateway


def hash_key(key: str) -> str:
    """API keys are kept as SHA-256 only; a stolen database does not reveal them."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def gateway_of(request: Request) -> Gateway:
    """The node this API serves (set by create_app)."""
    gw: Gateway = request.app.state.gateway
    return gw

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
    gw = gateway_of(request)
    client = _client(request)
    wait = gw.refusals.retry_after(client)
    if wait is not None:  # answered without a key lookup, and counted in memory: a flood costs the node little
        await refuse(request, f"client {client}", "too many failed logins", "api.rate-limited")
        raise HTTPException(429, f"too many requests with a missing or unknown API key from {client}; "
                                 f"try again in {wait:.0f} s", headers={"Retry-After": str(max(1, round(wait)))})
    presented = key or (bearer.credentials if bearer else None)
    if not presented:
        gw.refusals.failed_authentication(client)
        await refuse(request, f"client {client}", "no API key presented", "api.no-key")
        raise HTTPException(401, "an API key is required (header X-API-Key or Authorization: Bearer)",
                            headers={"WWW-Authenticate": "Bearer"})
    digest = hash_key(presented)
    current = await keys_in_force(request)
    try:
        row = await gw.store.find_api_key(digest) if digest in current else None
    except Exception as e:  # the store is down: a key that cannot be checked now is not a wrong key
        raise HTTPException(503, "the gateway cannot check API keys just now; try again", headers=RETRY_AFTER) from e
    if row is None:
        gw.refusals.failed_authentication(client)
        await refuse(request, f"client {client}", "unknown API key", "api.unknown-key")
        raise HTTPException(401, "this API key is not known", headers={"WWW-Authenticate": "Bearer"})
    return Principal(row.role, row.name, row.agency)


async def register_keys(gw: Gateway) -> None:
    """Store the hash of every key the configuration names, with its role (once the keys are checked:
    a shared key would admit as whichever holder came last)."""
    for holder, key in resolved_keys(gw.config):
        await gw.store.put_api_key(hash_key(key), holder.role, holder.name, holder.agency)


async def keys_in_force(request: Request) -> set[str]:
    """The configured keys' hashes, registered in the store on first use (by the app's start-up, or
    the first request when the app is served without a lifespan, as in-process test clients do)."""
    state = request.app.state
    if getattr(state, "key_hashes", None) is None:
        async with state.registering:
            if getattr(state, "key_hashes", None) is None:
                await register_keys(gateway_of(request))
                state.key_hashes = configured_key_hashes(gateway_of(request).config)
    hashes: set[str] = state.key_hashes
    return hashes


def configured_key_hashes(config: GatewayConfig) -> set[str]:
    """Hashes of the keys the configuration names now: a key removed or rotated out stops working
    at the next start, although the store still holds its hash."""
    return {hash_key(key) for _holder, key in resolved_keys(config)}


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def refuse(request: Request, actor: str, why: str, rule: str | None = None) -> None:
    """Log a refused request in the exchange log: who tried what, from where, and why it was refused
    (repeats of the same refusal within an interval are counted into one entry)."""
    client = _client(request)
    await gateway_of(request).refusals.refused("access-refused", actor, client, rule or why, {
        "path": request.url.path, "method": request.method, "client": client, "why": why})



async def own_inbound(request: Request, gw: Gateway, p: Principal,
                      channel: str | None) -> tuple[Agency, InboundChannel]:
    """The caller's agency and the inbound channel it names (default its first); 403 for a channel of
    another agency (logged) or an agency no longer configured, 400 for one with no inbound channel."""
    try:
        agency = gw.config.agency(str(p.agency))
    except KeyError:
        raise HTTPException(403, f"agency {p.agency} is no longer configured") from None
    if not agency.inbound:
        raise HTTPException(400, f"agency {p.agency} has no inbound channel configured")
    ch = next((c for c in agency.inbound if c.name == channel), None) if channel else agency.inbound[0]
    if ch is None:
        await refuse(request, p.name, f"channel {channel} is not one of agency {p.agency}'s")
        raise HTTPException(403, f"channel {channel} does not belong to agency {p.agency}")
    return agency, ch


def require(*roles: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting only keys of the given roles; any other key is refused (403) and logged."""

    async def dep(request: Request, p: Annotated[Principal, Depends(principal)]) -> Principal:
        if p.role not in roles:
            await refuse(request, p.name, f"role {p.role} not allowed")
            raise HTTPException(403, f"a {p.role} key may not do this; it needs one of: {', '.join(roles)}")
        return p

    return dep


# Parameter types for endpoints: which keys may call them.
AnyKey = Annotated[Principal, Depends(principal)]
AgencyKey = Annotated[Principal, Depends(require("agency"))]
OperatorKey = Annotated[Principal, Depends(require("operator"))]
ReaderKey = Annotated[Principal, Depends(require("operator", "auditor"))]
GatewayDep = Annotated[Gateway, Depends(gateway_of)]
