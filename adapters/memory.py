"""In-memory adapters for tests and examples, as httpx has MockTransport.

`MemoryOutbound` records what it was asked to deliver and answers with a handler you give it;
`MemoryInbound` lets a test push records straight into the pipeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict

from adapters.base import InboundAdapter, Intake
from gateway.model import DeliveryResult, InboundRecord, OutboundMessage, Receipt


class InboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutboundSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


Handler = Callable[[OutboundMessage], Awaitable[DeliveryResult] | DeliveryResult]


class MemoryOutbound:
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler = handler
        self.received: list[OutboundMessage] = []

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        self.received.append(message)
        if self.handler is None:
            return DeliveryResult.delivered()
        out = self.handler(message)
        if isinstance(out, DeliveryResult):
            return out
        return await out

    async def aclose(self) -> None:
        return None


class MemoryInbound(InboundAdapter):
    def __init__(self, channel: str, sender: str) -> None:
        self.channel = channel
        self.sender = sender
        self._intake: Intake | None = None

    async def run(self, intake: Intake) -> None:
        self._intake = intake

    async def submit(self, body: bytes, **meta: object) -> Receipt:
        assert self._intake is not None, "the gateway is not running"
        return await self._intake(InboundRecord(channel=self.channel, sender=self.sender, body=body, **meta))  # type: ignore[arg-type]


def outbound(settings: OutboundSettings, **_: object) -> MemoryOutbound:
    return MemoryOutbound()


def inbound(settings: InboundSettings, *, channel: str, sender: str, **_: object) -> MemoryInbound:
    return MemoryInbound(channel, sender)
