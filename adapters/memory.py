"""In-memory adapters for tests and examples, as httpx has MockTransport.

`MemoryOutbound` records what it was asked to deliver and answers with a handler you give it;
`MemoryInbound` lets a test push records straight into the pipeline.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, ConfigDict

from adapters.base import AdapterSpec, InboundAdapter, InboundContext, OutboundContext
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
    def __init__(self, context: InboundContext) -> None:
        self.channel = context.channel
        self.sender = context.agency
        self.context = context
        self.running = False

    async def run(self) -> None:
        self.running = True

    async def submit(self, body: bytes, **meta: object) -> Receipt:
        assert self.running, "the gateway is not running"
        return await self.context.intake(InboundRecord(channel=self.channel, sender=self.sender, body=body, **meta))  # type: ignore[arg-type]


def outbound(settings: OutboundSettings, context: OutboundContext, /) -> MemoryOutbound:
    return MemoryOutbound()


def inbound(settings: InboundSettings, context: InboundContext, /) -> MemoryInbound:
    return MemoryInbound(context)


SPEC = AdapterSpec(
    name="memory", summary="records handed over in memory, for tests and examples",
    inbound_settings=InboundSettings, inbound=inbound, outbound_settings=OutboundSettings, outbound=outbound)
