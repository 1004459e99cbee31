"""HTTP adapter: an endpoint per inbound channel, and delivery by POST with httpx.

Inbound answers a receipt (message id, content hash, status) as XML or JSON, by Accept.
Outbound sends an Idempotency-Key that stays the same on every attempt of a delivery, so a
receiver whose answer was lost to a timeout can recognise the retry instead of acting twice.
"""

from __future__ import annotations

import hmac
import ssl
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.base import InboundAdapter, Intake
from gateway.audit.chain import AuditEvent
from gateway.model import DeliveryResult, InboundRecord, MessageStatus, Receipt, sha256_hex
from gateway.secrets import SecretRef


class InboundSettings(BaseModel):
    """An HTTP endpoint a legacy system POSTs its XML to."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="URL path; default /inbound/CHANNEL")
    require_key: bool = Field(True, description="require the agency's API key (X-API-Key or Bearer)")


class OutboundSettings(BaseModel):
    """Where and how to POST records to a legacy system."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(description="the receiver's URL")
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    bearer_token: SecretRef | None = Field(None, description="sent as Authorization: Bearer")
    client_cert: str | None = Field(None, description="PEM client certificate file for mutual TLS")
    client_key: str | None = Field(None, description="PEM key file of the client certificate")
    ca_bundle: str | None = Field(None, description="CA bundle to verify the receiver; default system CAs")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (no secrets here)")
    max_connections: int = Field(32, ge=1)


_TRANSIENT_STATUS = {408, 425, 429}


class HttpOutbound:
    def __init__(self, settings: OutboundSettings, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        verify: Any = True
        if settings.ca_bundle or settings.client_cert:
            ctx = ssl.create_default_context(cafile=settings.ca_bundle)
            if settings.client_cert:
                ctx.load_cert_chain(settings.client_cert, settings.client_key)
            verify = ctx
        headers = dict(settings.headers)
        if settings.bearer_token:
            headers["Authorization"] = f"Bearer {settings.bearer_token.resolve()}"
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout),
            limits=httpx.Limits(max_connections=settings.max_connections,
                                max_keepalive_connections=settings.max_connections),
            headers=headers, verify=verify, transport=transport,
        )

    async def deliver(self, message: Any) -> DeliveryResult:
        headers = {
            "Content-Type": message.content_type,
            "Idempotency-Key": message.idempotency_key,
            "X-Message-Id": message.message_id,
            "X-Case-Number": message.case_number,
            "X-Delivery-Attempt": str(message.attempt),
        }
        try:
            resp = await self.client.post(self.settings.url, content=message.body, headers=headers)
        except httpx.TimeoutException as e:
            return DeliveryResult.transient(f"timed out talking to {self.settings.url} ({type(e).__name__})")
        except httpx.TransportError as e:
            return DeliveryResult.transient(f"could not reach {self.settings.url}: {e or type(e).__name__}")
        text = resp.text[:2000]
        if resp.is_success:
            return DeliveryResult.delivered(f"HTTP {resp.status_code}", resp.content[:65536])
        if resp.status_code >= 500 or resp.status_code in _TRANSIENT_STATUS:
            return DeliveryResult.transient(f"HTTP {resp.status_code} from receiver: {text}")
        return DeliveryResult.permanent(f"HTTP {resp.status_code} from receiver: {text}", resp.content[:65536])

    async def aclose(self) -> None:
        await self.client.aclose()


class HttpInbound(InboundAdapter):
    def __init__(self, settings: InboundSettings, channel: str, sender: str, gateway: Any) -> None:
        self.settings = settings
        self.channel = channel
        self.sender = sender
        self.gateway = gateway
        self.path = settings.path or f"/inbound/{channel}"

    def _key_ok(self, request: Request) -> bool:
        if not self.settings.require_key:
            return True
        agency = self.gateway.config.agency(self.sender)
        if agency.api_key is None:
            return True
        presented = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
            "Bearer ").strip()
        return bool(presented) and hmac.compare_digest(presented.encode(), agency.api_key.resolve().encode())

    def routes(self, intake: Intake) -> list[BaseRoute]:
        limit = self.gateway.config.gateway.max_message_bytes

        async def endpoint(request: Request) -> Response:
            want_xml = "xml" in request.headers.get("accept", "")
            if not self._key_ok(request):
                await self._log_refusal(request, "missing or wrong API key")
                return _error(401, "an API key of this agency is required (X-API-Key or Bearer)", want_xml)
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    await self._log_refusal(request, f"body over {limit} bytes")
                    return _error(413, f"the message is over the limit of {limit:,} bytes and was not accepted",
                                  want_xml)
            receipt = await intake(InboundRecord(
                channel=self.channel, sender=self.sender, body=bytes(body),
                sender_message_id=request.headers.get("x-message-id") or request.headers.get("idempotency-key"),
                file_name=request.headers.get("x-file-name"),
                content_type=request.headers.get("content-type", "application/xml"),
            ))
            return _receipt_response(receipt, want_xml)

        return [Route(self.path, endpoint, methods=["POST"], name=f"inbound-{self.channel}")]

    async def _log_refusal(self, request: Request, why: str) -> None:
        client = request.client.host if request.client else "?"
        await self.gateway.store.append_audit([AuditEvent(
            "refused", f"client {client}", detail={"channel": self.channel, "why": why})])


def _receipt_response(receipt: Receipt, want_xml: bool) -> Response:
    code = 200 if receipt.duplicate else (202 if receipt.status == MessageStatus.ACCEPTED else 422)
    if want_xml:
        return Response(receipt.to_xml(), status_code=code, media_type="application/xml")
    return JSONResponse(receipt.as_dict(), status_code=code)


def _error(code: int, text: str, want_xml: bool) -> Response:
    if want_xml:
        from lxml import etree

        root = etree.Element("{urn:case-exchange:receipt:1}Error", nsmap={None: "urn:case-exchange:receipt:1"})
        root.text = text
        return Response(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), status_code=code,
                        media_type="application/xml")
    return JSONResponse({"error": text}, status_code=code)


def outbound(settings: OutboundSettings, **_: Any) -> HttpOutbound:
    return HttpOutbound(settings)


def inbound(settings: InboundSettings, *, channel: str, sender: str, gateway: Any, **_: Any) -> HttpInbound:
    return HttpInbound(settings, channel, sender, gateway)


__all__ = ["HttpInbound", "HttpOutbound", "InboundSettings", "OutboundSettings", "sha256_hex"]
