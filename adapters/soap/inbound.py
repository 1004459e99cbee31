"""The gateway's SOAP endpoint for one inbound channel: WSDL at ?wsdl, five operations.

Hand-written on lxml + Starlette: the contract is small and fixed (standards/soap/), and a SOAP
server framework would bring its own parser and HTTP stack past the gateway's safe-XML rules.
"""

from __future__ import annotations

import asyncio
import binascii
import copy
import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from lxml import etree
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from adapters.base import InboundAdapter, InboundContext, Intake, push_route
from adapters.soap import envelope, inline, mtom
from adapters.soap.answers import iso_time, receipt_element, tns, verdict_element
from adapters.soap.envelope import TNS, XOP, SoapFault, SoapRequest
from adapters.soap.wsse import NonceCache, replayed, verify_username_token
from gateway.errors import Busy
from gateway.model import Attachment, InboundRecord
from gateway.verdict import RateLimited

if TYPE_CHECKING:
    from adapters.soap import InboundSettings

log = logging.getLogger("gateway.soap")

WSDL_NAME = "case-exchange.wsdl"
XSD_NAME = "case-exchange-soap.xsd"
_PAGE_MAX = 500
_BINARY_TAGS = {f"{{{TNS}}}Record", f"{{{TNS}}}Attachment"}
# the X-Conformance-Run header of the request being handled (gateway.conformance), if any
_RUN: ContextVar[str | None] = ContextVar("soap_conformance_run", default=None)


@cache
def shipped(name: str) -> bytes:
    return (resources.files("standards") / "soap" / name).read_bytes()


class SoapInbound(InboundAdapter):
    def __init__(
        self,
        settings: InboundSettings,
        context: InboundContext,
        username: str | None,
        password: str | None,
    ) -> None:
        self.settings = settings
        self.context = context
        self.channel = channel = context.channel
        self.sender = context.agency
        self.path = settings.path or f"/soap/{channel}"
        self.username = username
        self.password = password
        self.nonces = NonceCache(settings.freshness_seconds)
        self.files = context.files
        self.pins = {p.lower().replace(":", "") for p in settings.client_cert_sha256}
        limit = settings.max_envelope_bytes or context.limits.max_message_bytes * 4 // 3 + 65536
        self.max_bytes: int = limit
        self.limits = context.limits.xml
        self._ops: dict[
            str, Callable[[SoapRequest, Intake, dict[str, memoryview]], Awaitable[etree._Element]]
        ] = {
            "SubmitCaseRecord": self._submit,
            "ValidateCaseRecord": self._validate,
            "GetReceipts": self._receipts,
            "GetNotices": self._notices,
            "Ping": self._ping,
        }

    # -- routes -----------------------------------------------------------------------
    def routes(self) -> list[BaseRoute]:
        intake = self.context.intake

        async def endpoint(request: Request) -> Response:
            if request.method == "GET":
                return self._describe(request)
            try:  # the slot is taken before the body is read: reading it is the first cost
                with self.context.admission.slot(self.channel):
                    return await self._handle(request, intake)
            except Busy as e:  # nothing was read or taken; the caller resends after Retry-After
                busy = SoapFault(e.message, client=False, rule=e.rule, message_zh=e.message_zh)
                data, media, status = envelope.fault(envelope.soap_version_of(request.headers.get("content-type", "")),
                                                     busy)
                return Response(data, status_code=status, media_type=media,
                                headers={"Retry-After": str(e.retry_after)})

        return [push_route(self.path, endpoint, ["GET", "POST"], f"soap-{self.channel}")]

    def _describe(self, request: Request) -> Response:
        query = {k.lower() for k in request.query_params}
        url = str(request.url.replace(query=""))
        if "wsdl" in query:
            text = shipped(WSDL_NAME).replace(b"http://localhost:8080/soap/CHANNEL", url.encode())
            text = text.replace(
                f'schemaLocation="{XSD_NAME}"'.encode(), f'schemaLocation="{url}?xsd"'.encode()
            )
            return Response(text, media_type="text/xml; charset=utf-8")
        if "xsd" in query:
            return Response(shipped(XSD_NAME), media_type="text/xml; charset=utf-8")
        return Response(
            f"Case Exchange SOAP endpoint of channel {self.channel}; its WSDL is at {url}?wsdl\n",
            media_type="text/plain; charset=utf-8",
        )

    async def _handle(self, request: Request, intake: Intake) -> Response:
        ctype = request.headers.get("content-type", "")
        version = envelope.soap_version_of(ctype)
        op = "?"
        client = request.client.host if request.client else "?"
        wait = self.context.refusals.retry_after(client)
        if wait is not None:  # too many failed logins from this address: answered without any work
            busy = SoapFault(f"too many requests with wrong credentials from {client}; try again in {wait:.0f} s",
                             client=False, rule="wsse.too-many-failures")
            data, media, _status = envelope.fault(version, busy)
            return Response(data, status_code=429, media_type=media, headers={"Retry-After": str(max(1, round(wait)))})
        try:
            body = await self._read(request)
            self._check_certificate(request)
            parts: dict[str, memoryview] = {}
            if mtom.is_multipart(ctype):
                body, root_type, parts = mtom.split(body, ctype)
                ctype = root_type or ctype
            req = self._parse(envelope.with_declared_charset(body, ctype), parts)
            del body
            version, op = req.version, req.name
            handler = self._ops.get(op)
            if handler is None or etree.QName(req.operation).namespace != TNS:
                raise SoapFault(
                    f"unknown operation {{{etree.QName(req.operation).namespace}}}{op}; this endpoint "
                    f"offers {', '.join(self._ops)} in namespace {TNS}",
                    client=True,
                    rule="soap.operation",
                )
            self._check_action(request, ctype, op)
            if self.password is not None:
                nonce = verify_username_token(
                    req.header,
                    username=self.username or "",
                    password=self.password,
                    nonces=self.nonces,
                    require_fresh=self.settings.require_fresh_tokens,
                )
                # this node's memory refuses its own replays; the store, one sent to another node
                expires = time.time() + 2 * self.nonces.window
                if nonce and not await self.context.claim_once(f"wsse:{self.channel}:{nonce}", expires):
                    raise replayed()
            token = _RUN.set(request.headers.get("x-conformance-run"))
            try:
                payload = await handler(req, intake, parts)
            finally:
                _RUN.reset(token)
        except SoapFault as f:
            if f.rule in ("wsse.credentials", "wsse.missing", "tls.client-cert"):
                self.context.refusals.failed_authentication(client)
            await self._refused(request, op, f)
            data, media, status = envelope.fault(version, f)
            return Response(data, status_code=status, media_type=media)
        except Busy:
            raise
        except Exception as e:  # a gateway defect or store outage: the caller keeps the record and retries
            log.exception("SOAP %s on channel %s failed", op, self.channel)
            internal = SoapFault(
                f"the gateway could not process the request ({type(e).__name__}); nothing was "
                "accepted, send it again later",
                client=False,
                rule="gateway.internal-error",
            )
            await self._refused(request, op, internal)  # one entry in the exchange log, as every refusal
            data, media, status = envelope.fault(version, internal)
            return Response(data, status_code=status, media_type=media)
        data, media = envelope.response(version, payload)
        return Response(data, media_type=media)

    def _parse(self, body: bytes, parts: dict[str, memoryview]) -> SoapRequest:
        """Parse with long base64 runs lifted out; they join `parts` and are decoded from the body."""
        source = f"SOAP request on channel {self.channel}"
        small, runs = inline.lift(body)
        req = envelope.parse(small, max_bytes=self.max_bytes, source=source, limits=self.limits)
        if not runs:
            return req
        if not inline.settle(req.operation.getroottree().getroot(), runs, _BINARY_TAGS):
            return envelope.parse(body, max_bytes=self.max_bytes, source=source, limits=self.limits)
        parts.update(runs)
        return req

    async def _read(self, request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise SoapFault(
                f"the request is {int(declared):,} bytes, over this endpoint's limit of "
                f"{self.max_bytes:,} bytes; send large dossier files as MTOM attachments",
                client=True,
                rule="soap.too-large",
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if size > self.max_bytes:
                raise SoapFault(
                    f"the request is over this endpoint's limit of {self.max_bytes:,} bytes",
                    client=True,
                    rule="soap.too-large",
                )
        return b"".join(chunks)  # one chunk is returned as is, not copied

    def _check_action(self, request: Request, ctype: str, op: str) -> None:
        action = request.headers.get("soapaction")
        if action is None:
            action = envelope.content_type_params(ctype).get("action")
        action = (action or "").strip().strip('"')
        if action and action not in (f"{TNS}/{op}", op):
            raise SoapFault(
                f"the SOAPAction '{action}' does not match the operation {op} in the Body "
                f"(expected '{TNS}/{op}' or none)",
                client=True,
                rule="soap.action",
            )

    def _check_certificate(self, request: Request) -> None:
        if not self.pins:
            return
        tls = request.scope.get("extensions", {}).get("tls", {})
        chain = tls.get("client_cert_chain") or []
        fingerprint = None
        if chain:
            from cryptography import x509

            cert = x509.load_pem_x509_certificate(chain[0].encode())
            fingerprint = hashlib.sha256(cert.public_bytes(_der())).hexdigest()
        elif request.client and request.client.host in self.settings.trusted_proxies:
            fingerprint = (
                request.headers.get(self.settings.client_cert_header, "").lower().replace(":", "") or None
            )
        if fingerprint is None or not any(hmac.compare_digest(fingerprint, p) for p in self.pins):
            raise SoapFault(
                "this endpoint requires a TLS client certificate registered for agency "
                f"{self.sender}; none or another was presented",
                client=True,
                rule="tls.client-cert",
            )

    async def _refused(self, request: Request, op: str, f: SoapFault) -> None:
        client = request.client.host if request.client else "?"
        log.warning(
            "SOAP request refused on channel %s from %s (%s): %s [%s]",
            self.channel,
            client,
            op,
            f.message,
            f.rule,
        )
        try:
            await self.context.refusals.refused(
                "refused", f"client {client}", client, f.rule,
                {"channel": self.channel, "operation": op, "why": f.message, "retry": not f.client})
        except Exception:
            log.exception("could not log a refused SOAP request")

    # -- operations -------------------------------------------------------------------
    async def _record(self, req: SoapRequest, parts: dict[str, memoryview], *, keep_files: bool) -> InboundRecord:
        """The record a SubmitCaseRecord or ValidateCaseRecord carries, with its dossier files (stored
        when `keep_files`, else only hashed: a record that is only checked leaves nothing behind)."""
        op = req.operation
        mid = (op.findtext(tns("MessageId")) or "").strip() or None
        file_name = (op.findtext(tns("FileName")) or "").strip() or None
        rec = op.find(tns("Record"))
        xml_rec = op.find(tns("RecordXml"))
        inline_records = [c for c in xml_rec if isinstance(c.tag, str)] if xml_rec is not None else []
        if rec is not None:
            data = _binary(rec, parts, "Record")
        elif len(inline_records) > 1:
            raise SoapFault(
                f"<RecordXml> holds {len(inline_records)} elements; it takes exactly one record",
                client=True, rule="soap.no-record", line=xml_rec.sourceline if xml_rec is not None else None,
            )
        elif inline_records:  # comments and processing instructions around the record are not part of it
            data = _standalone(inline_records[0])
        else:
            raise SoapFault(
                f"{req.name} carries no record: put the record in <Record> (base64) or <RecordXml>",
                client=True,
                rule="soap.no-record",
                line=op.sourceline,
            )
        attachments = []
        for a in op.findall(tns("Attachment")):
            content = _binary(a, parts, "Attachment")
            # dossier files live in the file store whatever brought them, so any outbound adapter
            # (an SFTP drop, a SOAP service) finds them there and retention counts them one way
            if keep_files:
                h, size = await asyncio.to_thread(self.files.put_stream, [content])
            else:
                h, size = hashlib.sha256(content).hexdigest(), len(content)
            attachments.append(
                Attachment(
                    a.get("name") or h, h, size, a.get("mediaType") or "application/octet-stream"
                )
            )
        return InboundRecord(
            channel=self.channel,
            sender=self.sender,
            body=data,
            sender_message_id=mid,
            file_name=file_name,
            operation=req.name,
            content_type="application/xml",
            attachments=tuple(attachments),
        )

    async def _submit(self, req: SoapRequest, intake: Intake, parts: dict[str, memoryview]) -> etree._Element:
        receipt = await intake(await self._record(req, parts, keep_files=True))
        resp = etree.Element(tns("SubmitCaseRecordResponse"), nsmap={None: TNS})
        resp.append(receipt_element(receipt))
        return resp

    async def _validate(self, req: SoapRequest, intake: Intake, parts: dict[str, memoryview]) -> etree._Element:
        """The findings SubmitCaseRecord would give this record, and where it would go; nothing is kept."""
        if self.context.validate is None:
            raise SoapFault("this node offers no validation service", client=False, rule="validate.unavailable")
        run = _RUN.get()
        test = run is not None
        if test and (self.context.conformance_run is None or not self.context.conformance_run(str(run))):
            raise SoapFault("this is not a conformance run under way on this node; the record was not checked",
                            client=True, rule="conformance.token")
        record = await self._record(req, parts, keep_files=False)
        try:
            verdict = await self.context.validate(record, test)
        except RateLimited as e:
            raise SoapFault(e.message, client=False, rule=e.rule, message_zh=e.message_zh) from None
        return verdict_element(verdict, with_outbound=test)

    async def _receipts(
        self, req: SoapRequest, intake: Intake, parts: dict[str, memoryview]
    ) -> etree._Element:
        return await self._page(req, "GetReceiptsResponse", only_rejected=False)

    async def _notices(
        self, req: SoapRequest, intake: Intake, parts: dict[str, memoryview]
    ) -> etree._Element:
        return await self._page(req, "GetNoticesResponse", only_rejected=True)

    async def _page(self, req: SoapRequest, name: str, *, only_rejected: bool) -> etree._Element:
        """The caller's own records, read from the exchange log by sequence number (a stable cursor)."""
        try:
            after = int(req.operation.findtext(tns("After")) or 0)
            limit = min(int(req.operation.findtext(tns("Limit")) or 100), _PAGE_MAX)
        except ValueError:
            raise SoapFault("After and Limit must be whole numbers", client=True, rule="soap.query") from None
        records, after = await self.context.sent_records(self.sender, after, limit, only_rejected=only_rejected)
        resp = etree.Element(tns(name), nsmap={None: TNS})
        for r in records:
            resp.append(receipt_element(r.receipt, r.deliveries, r.evidence))
        etree.SubElement(resp, tns("Next")).text = str(after)
        return resp

    async def _ping(self, req: SoapRequest, intake: Intake, parts: dict[str, memoryview]) -> etree._Element:
        resp = etree.Element(tns("PingResponse"), nsmap={None: TNS})
        echo = req.operation.findtext(tns("Echo"))
        if echo is not None:
            etree.SubElement(resp, tns("Echo")).text = echo
        etree.SubElement(resp, tns("Agency")).text = self.sender
        etree.SubElement(resp, tns("Node")).text = self.context.node
        etree.SubElement(resp, tns("Time")).text = iso_time(datetime.now(UTC).timestamp())
        return resp


def _binary(el: etree._Element, parts: dict[str, memoryview], what: str) -> bytes:
    """The bytes of a base64Binary element: an MTOM part by reference, or inline base64."""
    inc = el.find(f"{{{XOP}}}Include")
    if inc is not None:
        cid = mtom.cid_of(inc.get("href", ""))
        part = parts.get(cid)
        if part is None:
            raise SoapFault(
                f"<{what}> refers to MTOM part '{cid}', which the request does not contain",
                client=True,
                rule="mtom.missing-part",
                line=el.sourceline,
            )
        return bytes(part)
    text: str | memoryview = el.text or ""
    if text in parts:  # lifted out before parsing: decode straight from the request body
        text = parts[str(text)]
    el.text = None  # drop the tree's copy before decoding, so at most the text and the bytes coexist
    try:
        data = binascii.a2b_base64(text, strict_mode=False)
    except binascii.Error:
        raise SoapFault(
            f"<{what}> is not valid base64", client=True, rule="soap.base64", line=el.sourceline
        ) from None
    return data or _empty(el, what)


def _empty(el: etree._Element, what: str) -> bytes:
    raise SoapFault(f"<{what}> is empty", client=True, rule="soap.no-record", line=el.sourceline)


def _standalone(el: etree._Element) -> bytes:
    """An inline record as its own UTF-8 document, with only the namespaces it uses."""
    doc = copy.deepcopy(el)
    etree.cleanup_namespaces(doc)
    return bytes(etree.tostring(doc, xml_declaration=True, encoding="UTF-8"))


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER


__all__ = ["SoapInbound", "receipt_element", "shipped", "verdict_element"]
