"""HTTP adapter: an endpoint per inbound channel, and delivery by POST with httpx.

Inbound answers a receipt (message id, content hash, status) as XML or JSON, by Accept. A
record comes as the body itself, or with its dossier files as multipart/form-data (adapters/
multipart.py), which outbound sends too when the channel says `dossier: multipart`.
Outbound sends an Idempotency-Key that stays the same on every attempt of a delivery, so a
receiver whose answer was lost to a timeout can recognise the retry instead of acting twice.
One pooled client per destination keeps connections open between deliveries.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Literal

import certifi
import httpx
from pydantic import BaseModel, ConfigDict, Field
from python_multipart.multipart import parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute

from adapters import multipart
from adapters.base import AdapterSpec, InboundAdapter, InboundContext, OutboundContext, push_route
from adapters.http11 import KeepAliveTransport
from gateway.errors import Busy, ConfigError, PartlyTaken
from gateway.files import FileStore
from gateway.model import Attachment, DeliveryResult, InboundRecord, MessageStatus, OutboundMessage, Receipt
from gateway.secrets import SecretRef, UrlWithoutSecrets

log = logging.getLogger("adapters.http")

_RECEIPT_NS = "urn:case-exchange:receipt:1"
CONFORMANCE_HEADER = "x-conformance-run"  # a conformance run's token (gateway.conformance)
_KEEP = 65536  # bytes of a receiver's answer kept with the delivery


class InboundSettings(BaseModel):
    """An HTTP endpoint a legacy system POSTs its XML to."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="URL path; default /inbound/CHANNEL")
    require_key: bool = Field(True, description="require the agency's API key (X-API-Key or Bearer)")
    max_dossier_bytes: int = Field(4 * 1024**3, ge=0, description=(
        "total size of the dossier files one multipart/form-data POST may carry (part 'record' plus "
        "parts 'file'); they are written to the file store as they arrive"))


class OutboundSettings(BaseModel):
    """Where and how to POST records to a legacy system."""

    model_config = ConfigDict(extra="forbid")
    url: UrlWithoutSecrets = Field(description="the receiver's URL (no credentials in it)")
    connect_timeout: float = Field(5.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(30.0, gt=0, description="seconds to wait for the receiver's answer")
    bearer_token: SecretRef | None = Field(None, description="sent as Authorization: Bearer")
    client_cert: str | None = Field(None, description="PEM client certificate file for mutual TLS")
    client_key: str | None = Field(None, description="PEM key file of the client certificate")
    ca_bundle: str | None = Field(None, description="CA bundle to verify the receiver; default system CAs")
    headers: dict[str, str] = Field(default_factory=dict, description="extra headers (no secrets here)")
    max_connections: int = Field(32, ge=1, description="connections kept open to the receiver")
    proxy: UrlWithoutSecrets | None = Field(None, description=(
        "HTTP proxy URL to reach the receiver through (http://host:port; no credentials here); environment "
        "proxy variables are not read"))
    dossier: Literal["omit", "multipart"] = Field("omit", description=(
        "what to do with a record's dossier files: 'multipart' POSTs multipart/form-data with part 'record' "
        "and one part 'file' per dossier file, streamed from the file store; 'omit' POSTs the record alone "
        "and says in the delivery's detail how many files stayed behind"))


# what a 503 tells the sender to wait: a database restart or failover is over in about that time
_RETRY_AFTER = 2  # seconds a 503 asks a sender to wait: a database restart or failover is over by then

# 4xx answers that mean "not now" rather than "not this record"
_TRANSIENT_STATUS = frozenset({408, 425, 429})


def tls_context(settings: OutboundSettings) -> ssl.SSLContext:
    """The TLS setup for the receiver, built once and shared by every connection (loading CA files
    is slow); a broken certificate file is a configuration error, named."""
    try:
        ctx = ssl.create_default_context(cafile=settings.ca_bundle or certifi.where())
        if settings.client_cert:
            ctx.load_cert_chain(settings.client_cert, settings.client_key)
    except (OSError, ssl.SSLError) as e:
        files = ", ".join(f for f in (settings.client_cert, settings.client_key, settings.ca_bundle) if f)
        raise ConfigError(f"HTTP outbound to {settings.url}: cannot load the TLS files ({files}): "
                          f"{getattr(e, 'strerror', None) or e}") from None
    return ctx


class HttpOutbound:
    """POSTs records to one receiver over kept-alive connections.

    Each delivery goes straight to an httpx transport (`handle_async_request`): a gateway POST
    needs no redirects, cookies or auth flows. The transport is KeepAliveTransport (one kept
    connection on asyncio streams, see adapters/http11.py); up to `max_connections` of them are
    lent out, the most recently used first (its connection is the warmest). A transport handed in
    (a mock in tests, or httpx's own) is used for every request instead.
    """

    def __init__(self, settings: OutboundSettings, transport: httpx.AsyncBaseTransport | None = None,
                 files: FileStore | None = None) -> None:
        self.settings = settings
        self.files = files
        self._url = httpx.URL(settings.url)
        self._headers = {"User-Agent": "case-exchange-gateway", **settings.headers}
        if settings.bearer_token:
            self._headers["Authorization"] = f"Bearer {settings.bearer_token.resolve()}"
        # honoured by a handed-in transport; KeepAliveTransport takes the two values itself
        self._timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout).as_dict()
        self._verify = tls_context(settings)
        self._given = transport  # tests hand in a mock transport; it is shared, not pooled
        self._idle: list[httpx.AsyncBaseTransport] = []
        self._transports: list[httpx.AsyncBaseTransport] = []
        self._slots = asyncio.Semaphore(settings.max_connections)

    def _transport(self) -> httpx.AsyncBaseTransport:  # one request at a time on what it returns
        if self._given is not None:
            return self._given
        if self._idle:
            return self._idle.pop()
        t: httpx.AsyncBaseTransport
        if self.settings.proxy:  # httpx's transport speaks to proxies (CONNECT for https); ours does not
            t = httpx.AsyncHTTPTransport(verify=self._verify, proxy=self.settings.proxy,
                                         limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        else:
            t = KeepAliveTransport(self._verify, self.settings.connect_timeout, self.settings.read_timeout)
        self._transports.append(t)
        return t

    async def deliver(self, message: OutboundMessage) -> DeliveryResult:
        url = self.settings.url
        headers = {
            **self._headers,
            "Content-Type": message.content_type,
            "Idempotency-Key": message.idempotency_key,
            "X-Message-Id": message.message_id,
            "X-Case-Number": message.case_number,
            "X-Delivery-Attempt": str(message.attempt),
        }
        if message.file_name:
            headers["X-File-Name"] = message.file_name
        if message.replay_of:  # an operator's replay: a new key, and the delivery it replays
            headers["X-Replay-Of"] = message.replay_of
        form = None
        if message.attachments and self.settings.dossier == "multipart":
            if self.files is None:
                return DeliveryResult.permanent("this HTTP channel has no file store to send dossier files from")
            try:
                form = multipart.encode(message.body, message.file_name or f"{message.case_number}.xml",
                                        message.content_type, message.attachments, self.files)
            except FileNotFoundError as e:
                return DeliveryResult.permanent(f"dossier file {e} is not in the gateway's file store "
                                                "(removed by retention, or the store is not shared between nodes)")
            headers["Content-Type"] = form.content_type
            headers["Content-Length"] = str(form.length)
        request = httpx.Request("POST", self._url, headers=headers,
                                content=message.body if form is None else form.stream(),
                                extensions={"timeout": self._timeout})
        async with self._slots:
            transport = self._transport()
            try:
                resp = await transport.handle_async_request(request)
                try:
                    body = await resp.aread()
                finally:
                    await resp.aclose()
            except httpx.TimeoutException as e:
                return DeliveryResult.transient(f"no answer from {url} in time ({type(e).__name__})")
            except httpx.TransportError as e:
                return DeliveryResult.transient(f"could not reach {url}: {e or type(e).__name__}")
            finally:
                if transport is not self._given:
                    self._idle.append(transport)
        if resp.is_success:
            if form is not None:
                return DeliveryResult.delivered(
                    f"HTTP {resp.status_code}; record and {len(message.attachments)} dossier file(s) sent "
                    f"({form.length:,} bytes)", body[:_KEEP])
            if message.attachments:  # said in the delivery's detail, never dropped unseen
                return DeliveryResult.delivered(
                    f"HTTP {resp.status_code}; {len(message.attachments)} dossier file(s) not sent: this channel "
                    "sends the record only (set dossier: multipart to send them)", body[:_KEEP])
            return DeliveryResult.delivered(f"HTTP {resp.status_code}", body[:_KEEP])
        text = resp.text[:2000].strip()
        if resp.status_code >= 500 or resp.status_code in _TRANSIENT_STATUS:
            return DeliveryResult.transient(f"HTTP {resp.status_code} from {url}: {text}")
        return DeliveryResult.permanent(f"HTTP {resp.status_code} from {url}: {text}", body[:_KEEP])

    async def aclose(self) -> None:
        for t in self._transports:
            await t.aclose()
        self._transports.clear()
        self._idle.clear()


_QVALUE = re.compile(r"0(\.[0-9]{0,3})?|1(\.0{0,3})?")  # RFC 9110 section 12.4.2


def wants_xml(accept: str) -> bool:
    """True when the Accept header prefers an XML media type to JSON (RFC 9110 q-values; JSON when
    equal, absent or unreadable). Each media range is read by python-multipart's header parser
    (quotes, case, spacing); neither it nor Starlette weighs q-values, which is this function's part."""
    xml = json = 0.0
    for media_range in accept.split(","):
        media, params = parse_options_header(media_range)
        q = params.get(b"q", b"1").decode("latin-1")
        weight = float(q) if _QVALUE.fullmatch(q) else 0.0
        if media.endswith((b"/xml", b"+xml")):
            xml = max(xml, weight)
        elif media.endswith((b"/json", b"+json")) or media in (b"*/*", b"application/*"):
            json = max(json, weight)
    return xml > json


class HttpInbound(InboundAdapter):
    def __init__(self, settings: InboundSettings, context: InboundContext) -> None:
        self.settings = settings
        self.context = context
        self.channel = context.channel
        self.sender = context.agency
        self.path = settings.path or f"/inbound/{self.channel}"
        self.files = context.files  # where a form's files go

    def _key_ok(self, request: Request) -> bool:
        if not self.settings.require_key:
            return True
        presented = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix(
            "Bearer ").strip()
        return self.context.check_key(presented)

    def routes(self) -> list[BaseRoute]:
        intake = self.context.intake
        limit = self.context.limits.max_message_bytes

        async def endpoint(request: Request) -> Response:
            try:  # the slot is taken before the body is read: reading it is the first cost
                with self.context.admission.slot(self.channel):
                    return await take(request)
            except Busy as e:  # nothing was read or taken; the sender resends after Retry-After
                return _error(503, e.message, e.rule, wants_xml(request.headers.get("accept", "")),
                              retry_after=e.retry_after)

        async def take(request: Request) -> Response:
            want_xml = wants_xml(request.headers.get("accept", ""))
            client = request.client.host if request.client else "?"
            wait = self.context.refusals.retry_after(client)
            if wait is not None:
                await self._log_refusal(request, "too many failed logins", "http.rate-limited")
                return _error(429, f"too many requests with a missing or wrong API key from {client}; try again in "
                                   f"{wait:.0f} s", "http.auth", want_xml, retry_after=max(1, round(wait)))
            if not self._key_ok(request):
                self.context.refusals.failed_authentication(client)
                await self._log_refusal(request, "missing or wrong API key", "http.auth")
                return _error(401, "an API key of this agency is required (X-API-Key or Bearer)", "http.auth",
                              want_xml)
            headers = request.headers
            try:
                body = await read_body(request, self.files, limit, self.settings.max_dossier_bytes)
            except BodyRefused as e:
                await self._log_refusal(request, e.why, e.rule)
                return _error(e.status, e.text, e.rule, want_xml, retry_after=e.retry_after)
            except ClientDisconnect:
                return await self._cut_off(request)
            data, attachments, file_name, content_type = body.data, body.attachments, body.file_name, body.content_type
            del body  # not held beside its copy while the record is taken in
            record = InboundRecord(
                channel=self.channel, sender=self.sender, body=data,
                sender_message_id=headers.get("x-message-id") or headers.get("idempotency-key"),
                file_name=file_name, content_type=content_type, attachments=attachments,
            )
            run = headers.get(CONFORMANCE_HEADER)
            if run is not None:
                return await self._conformance(request, record, run, want_xml)
            try:
                receipt = await intake(record)
            except Busy:
                raise
            except Exception as e:  # the store is down or similar: nothing was accepted, the sender must resend
                log.exception("channel %s: the record could not be taken in", self.channel)
                await self._log_refusal(request, f"the record could not be stored ({type(e).__name__})",
                                        "gateway.unavailable")
                why = (f"{e.message_zh} / {e}" if isinstance(e, PartlyTaken) else
                       "the gateway could not store the record just now; nothing was accepted, send it again")
                return _error(503, why, "gateway.unavailable", want_xml, retry_after=_RETRY_AFTER)
            return _receipt_response(receipt, want_xml)

        return [push_route(self.path, endpoint, ["POST"], f"inbound-{self.channel}")]

    async def _conformance(self, request: Request, record: InboundRecord, token: str, want_xml: bool) -> Response:
        """A record of a conformance run: judged, mapped and routed in test mode, delivered nowhere, and
        answered with the verdict and the bytes each destination would get. Only the node's own run
        token opens this door."""
        check, validate = self.context.conformance_run, self.context.validate
        if check is None or validate is None or not check(token):
            await self._log_refusal(request, "a conformance-run header without a run under way", "conformance.token")
            return _error(403, "this is not a conformance run under way on this node; the record was not taken",
                          "conformance.token", want_xml)
        verdict = await validate(record, True)
        return JSONResponse({**verdict.as_json(with_outbound=True), "conformance": True})

    async def _cut_off(self, request: Request) -> Response:
        """The sender closed the connection before its body was complete: nothing was taken in, and the
        log says so (the answer reaches nobody)."""
        await self._log_refusal(request, "the connection closed before the body was complete; nothing was "
                                         "accepted", "http.incomplete-body")
        return Response(status_code=400)

    async def _log_refusal(self, request: Request, why: str, rule: str) -> None:
        client = request.client.host if request.client else "?"
        try:
            await self.context.refusals.refused("refused", f"client {client}", client, rule,
                                                {"channel": self.channel, "why": why})
        except Exception:  # the store is down: the node log keeps it
            log.exception("channel %s: could not log a refusal (%s) from %s", self.channel, why, client)


@dataclass(frozen=True)
class Body:
    """A record as an HTTP request brought it: the bytes, its dossier files, its name and type."""

    data: bytes
    attachments: tuple[Attachment, ...] = ()
    file_name: str | None = None
    content_type: str = "application/xml"


class BodyRefused(Exception):
    """The body cannot be taken (too large, a broken form): `status`, `text` for the sender, `why` for the log."""

    def __init__(self, status: int, text: str, rule: str, why: str = "", retry_after: int | None = None) -> None:
        super().__init__(text)
        self.status, self.text, self.rule, self.why, self.retry_after = status, text, rule, why or text, retry_after


async def read_body(request: Request, files: FileStore, limit: int, max_dossier_bytes: int, *,
                    keep_files: bool = True) -> Body:
    """The record of a POST, as the body itself or as multipart/form-data with dossier files, bounded as
    every record is: over `limit` (the record) or `max_dossier_bytes` (the files) it is refused before more
    is read. A form's files go to the file store as they arrive; with `keep_files` False (a record only
    checked, never taken in) they are hashed there and removed. ClientDisconnect: the body broke off."""
    headers = request.headers
    content_type = headers.get("content-type", "application/xml")
    with_files = content_type.lower().startswith("multipart/form-data")
    declared = headers.get("content-length", "")
    bound = limit + max_dossier_bytes + 1024 * 1024 if with_files else limit  # + part heads
    too_large = f"the message is over the limit of {limit:,} bytes and was not accepted"
    if declared.isdigit() and int(declared) > bound:  # refused before a byte of it is read
        raise BodyRefused(413, too_large if not with_files else
                          f"the record and its dossier files are over the limit of {bound:,} bytes and were "
                          "not accepted", "xml.too-large", f"declared body of {declared} bytes, over {bound}")
    file_name = headers.get("x-file-name")
    if with_files:
        try:
            reader = multipart.FormReader(content_type, files, limit, max_dossier_bytes)
        except multipart.FormError as e:  # a Content-Type that names no boundary: nothing to read it by
            raise BodyRefused(e.status, f"{e}; nothing was accepted", e.rule, str(e)) from None
        try:
            async for chunk in request.stream():
                await asyncio.to_thread(reader.feed, chunk)
            record, attachments = reader.finish(keep=keep_files)
        except multipart.FormError as e:
            reader.discard()
            raise BodyRefused(e.status, f"{e}; nothing was accepted", e.rule, str(e),
                              _RETRY_AFTER if e.status == 503 else None) from None
        except BaseException:
            reader.discard()
            raise
        return Body(record, tuple(attachments), reader.record_name, reader.record_type)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyRefused(413, too_large, "xml.too-large", f"body over {limit} bytes")
    return Body(bytes(body), (), file_name, content_type)


# JSONResponse's own rendering (json.dumps with these options), without an encoder built per receipt
_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))


def _receipt_response(receipt: Receipt, want_xml: bool) -> Response:
    code = 200 if receipt.duplicate else (202 if receipt.status == MessageStatus.ACCEPTED else 422)
    if want_xml:
        return Response(receipt.to_xml(), status_code=code, media_type="application/xml")
    return Response(_JSON.encode(receipt.as_dict()).encode("utf-8"), status_code=code, media_type="application/json")


def _error(code: int, text: str, rule: str, want_xml: bool, retry_after: int | None = None) -> Response:
    """A refusal before the pipeline ran, with the rule that refused it."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    if want_xml:
        from lxml import etree

        root = etree.Element(f"{{{_RECEIPT_NS}}}Error", nsmap={None: _RECEIPT_NS})
        etree.SubElement(root, "Rule").text = rule
        etree.SubElement(root, "Reason").text = text
        return Response(etree.tostring(root, xml_declaration=True, encoding="UTF-8"), status_code=code,
                        media_type="application/xml", headers=headers)
    return JSONResponse({"error": text, "rule": rule}, status_code=code, headers=headers)


def outbound(settings: OutboundSettings, context: OutboundContext, /) -> HttpOutbound:
    return HttpOutbound(settings, files=context.files)


SPEC = AdapterSpec(
    name="http", summary="records pushed by POST (XML, or multipart with dossier files) and delivered by POST",
    inbound_settings=InboundSettings, inbound=HttpInbound, outbound_settings=OutboundSettings, outbound=outbound)


__all__ = ["SPEC", "Body", "BodyRefused", "HttpInbound", "HttpOutbound", "InboundSettings", "OutboundSettings",
           "read_body", "tls_context", "wants_xml"]
