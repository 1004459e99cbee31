"""SOAP 1.1 / 1.2 envelopes: read one safely, write an answer or a fault in the caller's version.

Parsing goes through gateway.xmlsafe (no DTD, no entities, bounded size). Faults carry a
Client/Sender or Server/Receiver code, which is how a SOAP caller knows whether a resend can help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from gateway import xmllimits, xmlsafe
from gateway.errors import InputRejected

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
TNS = "urn:cn:justice:case-exchange:soap:1"
XOP = "http://www.w3.org/2004/08/xop/include"

_CONTENT_TYPE = {SOAP11: "text/xml; charset=utf-8", SOAP12: "application/soap+xml; charset=utf-8"}
_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9._\-]+)", re.IGNORECASE)
_PARAM = re.compile(r';\s*([A-Za-z-]+)\s*=\s*("([^"]*)"|[^;\s]+)')
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ASCII_COMPATIBLE = {"gbk", "gb2312", "gb18030", "iso-8859-1", "latin1", "us-ascii", "windows-1252", "big5"}


class SoapFault(Exception):
    """A request refused as a whole. `client`: the caller must change it; otherwise it may retry.

    `message_zh`, where the refusal has it, leads the fault's text (Chinese, then English).
    """

    def __init__(self, message: str, *, client: bool, rule: str, line: int | None = None,
                 message_zh: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.client = client
        self.rule = rule
        self.line = line
        self.message_zh = message_zh

    @classmethod
    def rejected(cls, e: InputRejected) -> SoapFault:
        return cls(e.message, client=True, rule=e.rule, line=e.line, message_zh=e.message_zh)


@dataclass
class SoapRequest:
    version: str  # the envelope namespace, SOAP11 or SOAP12
    header: etree._Element | None
    operation: etree._Element  # the single child of Body

    @property
    def name(self) -> str:
        return etree.QName(self.operation).localname


def content_type_params(content_type: str) -> dict[str, str]:
    """Parameters of a Content-Type (boundary, start, action...), names lower-cased, quotes removed."""
    return {
        m.group(1).lower(): (m.group(3) if m.group(3) is not None else m.group(2))
        for m in _PARAM.finditer(content_type)
    }


def soap_version_of(content_type: str) -> str:
    """The version a caller speaks, by Content-Type (used to answer a fault in kind)."""
    return SOAP12 if "application/soap+xml" in content_type.lower() else SOAP11


def with_declared_charset(body: bytes, content_type: str) -> bytes:
    """Legacy senders often name the charset only in Content-Type; make the XML say it too."""
    if xmlsafe.declared_encoding(body) is not None or body.lstrip()[:5] == b"<?xml":
        return body
    m = _CHARSET.search(content_type)
    if not m or m.group(1).lower() not in _ASCII_COMPATIBLE:
        return body
    return f'<?xml version="1.0" encoding="{m.group(1)}"?>'.encode("ascii") + body


def parse(body: bytes, *, max_bytes: int, source: str,
          limits: xmllimits.XmlLimits = xmllimits.DEFAULT) -> SoapRequest:
    try:
        root = xmlsafe.parse(body, source=source, max_bytes=max_bytes, limits=limits)
    except InputRejected as e:
        if e.rule == "xml.text-too-long":  # an inline field the endpoint could not lift out before parsing
            mb = limits.text_bytes / 1e6
            raise SoapFault(
                f"an inline field is over {mb:g} MB of text (base64: about {mb * 3 / 4:g} MB of data); send "
                "the record or dossier file as an MTOM attachment instead",
                client=True,
                rule="soap.inline-too-large",
                line=e.line,
                message_zh=f"请求中的内嵌字段超过 {mb:g} MB（base64 约 {mb * 3 / 4:g} MB 数据），"
                "请改用 MTOM 附件发送记录或卷宗文件",
            ) from None
        raise SoapFault.rejected(e) from None
    q = etree.QName(root)
    if q.localname != "Envelope" or q.namespace not in (SOAP11, SOAP12):
        raise SoapFault(
            f"the message is not a SOAP envelope (its root element is {{{q.namespace or ''}}}"
            f"{q.localname}); expected a SOAP 1.1 or 1.2 Envelope",
            client=True,
            rule="soap.envelope",
        )
    ns = q.namespace
    header = root.find(f"{{{ns}}}Header")
    body_el = root.find(f"{{{ns}}}Body")
    if body_el is None:
        raise SoapFault(
            "the SOAP envelope has no Body", client=True, rule="soap.envelope", line=root.sourceline
        )
    ops = [c for c in body_el if isinstance(c.tag, str)]
    if len(ops) != 1:
        raise SoapFault(
            f"the SOAP Body must hold exactly one operation element, it holds {len(ops)}",
            client=True,
            rule="soap.body",
            line=body_el.sourceline,
        )
    return SoapRequest(ns, header, ops[0])


def response(version: str, payload: etree._Element) -> tuple[bytes, str]:
    env = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
    etree.SubElement(env, f"{{{version}}}Body").append(payload)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8"), _CONTENT_TYPE[version]


def fault(version: str, f: SoapFault) -> tuple[bytes, str, int]:
    """(body, content type, HTTP status) of a fault in the caller's SOAP version.

    The message may quote the request (a cid decoded from %00, say): characters XML cannot carry
    become U+FFFD, so the fault can always be written."""
    message = _NOT_XML.sub("\ufffd", f.message)
    message_zh = _NOT_XML.sub("\ufffd", f.message_zh) if f.message_zh else ""
    env = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version, "cx": TNS})
    flt = etree.SubElement(etree.SubElement(env, f"{{{version}}}Body"), f"{{{version}}}Fault")
    if version == SOAP11:
        etree.SubElement(flt, "faultcode").text = "soap:Client" if f.client else "soap:Server"
        etree.SubElement(flt, "faultstring").text = f"{message_zh} / {message}" if message_zh else message
        detail = etree.SubElement(flt, "detail")
        status = 500
    else:
        code = etree.SubElement(flt, f"{{{version}}}Code")
        etree.SubElement(code, f"{{{version}}}Value").text = "soap:Sender" if f.client else "soap:Receiver"
        reason = etree.SubElement(flt, f"{{{version}}}Reason")
        if f.message_zh:
            zh = etree.SubElement(reason, f"{{{version}}}Text")
            zh.set("{http://www.w3.org/XML/1998/namespace}lang", "zh")
            zh.text = message_zh
        text = etree.SubElement(reason, f"{{{version}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = message
        detail = etree.SubElement(flt, f"{{{version}}}Detail")
        status = 400 if f.client else 500
    fd = etree.SubElement(detail, f"{{{TNS}}}FaultDetail")
    etree.SubElement(fd, f"{{{TNS}}}Rule").text = f.rule
    if f.line:
        etree.SubElement(fd, f"{{{TNS}}}Line").text = str(f.line)
    etree.SubElement(fd, f"{{{TNS}}}Retry").text = "false" if f.client else "true"
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8"), _CONTENT_TYPE[version], status
