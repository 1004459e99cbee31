"""The adapter contract, kept as small as httpx's transport.

An outbound adapter has one method, `deliver`, taking and returning plain values. An inbound
adapter hands each raw record to an `Intake` (the pipeline's entry) and gets a Receipt back;
push adapters (HTTP, SOAP) contribute ASGI routes, pull adapters (SFTP, folder) run a loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from starlette.routing import BaseRoute

from gateway.model import DeliveryResult, InboundRecord, OutboundMessage, Receipt

Intake = Callable[[InboundRecord], Awaitable[Receipt]]


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
