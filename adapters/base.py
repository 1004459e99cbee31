"""The adapter contract, kept as small as httpx's transport.

An outbound adapter has one method, `deliver`, taking and returning plain values. An inbound
adapter hands each raw record to an `Intake` (the pipeline's entry) and gets a Receipt back;
push adapters (HTTP, SOAP) contribute ASGI routes, pull adapters (SFTP, folder) run a loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from gateway.model import DeliveryResult, InboundRecord, OutboundMessage, Receipt

Intake = Callable[[InboundRecord], Awaitable[Receipt]]
Endpoint = Callable[[Request], Awaitable[Response]]


class _Answering:
    """An endpoint as a bare ASGI app: request in, response out, nothing wrapped around it.

    Starlette wraps a function endpoint in per-request exception handling for HTTPException and
    friends; a push endpoint answers every error itself, so that wrapper is pure cost on the
    path every record takes.
    """

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


def push_route(path: str, endpoint: Endpoint, methods: list[str], name: str) -> Route:
    """The route of a push adapter's endpoint, which must answer every error with a Response."""
    return Route(path, _Answering(endpoint), methods=methods, name=name)


class OutboundAdapter(Protocol):
    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        """Send one record; never raise for a network or receiver problem, answer it instead."""
        ...

    async def aclose(self) -> None: ...


class InboundAdapter:
    """Base for inbound adapters: override `routes` (push) or `run` (pull), or both."""

    channel: str
    sender: str

    def routes(self, intake: Intake) -> list[BaseRoute]:
        return []

    async def run(self, intake: Intake) -> None:
        return None

    def health(self) -> dict[str, object]:
        return {"ok": True}

    async def aclose(self) -> None:
        return None
