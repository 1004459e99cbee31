"""Safe XML parsing: no external entities, no network, no entity expansion, bounded size and shape.

Every inbound path parses through here so that a hostile or broken file gets a clear refusal
(file, line, rule) instead of a traceback or an exhausted process. The encoding is told from the
bytes and the declaration as XML 1.0 Appendix F says (gateway/xmlencoding.py); UTF-16 is read as
UTF-8 from there on, so the scans below see its markup. The file's elements,
attributes, depth and text are bounded (gateway/xmllimits.py) before libxml2 builds anything.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway import xmlencoding, xmllimits
from gateway.errors import InputRejected
from gateway.xmllimits import XmlLimits

DEFAULT_MAX_BYTES = 32 * 1024 * 1024

_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def _parser(encoding: str | None = None) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
        encoding=encoding,
    )


# Encodings whose text Python has already decoded while checking it: libxml2 would decode it once
# more through iconv, which costs more than the rest of the parse, so it is given Python's text
# as UTF-8 instead (same characters, same lines). Only where Python's codec and iconv agree on
# what is valid; GBK and GB2312 differ at the edges, so they stay with libxml2. For GB18030 the
# two differ on 26 characters only (the GB18030-2005 remappings: Python reads A6D9, FE51... as
# private-use U+E78D..U+E864, iconv as U+FE10, U+20087...; U+1E3F the other way round): text
# holding one of those (UTF-8 EE.. for U+E000-U+EFFF, E1 B8 BF) is left to libxml2 as before.
_DECODED_HERE = frozenset({"gb18030"})
_CODECS_DIFFER = (b"\xee", b"\xe1\xb8\xbf")


declared_encoding = xmlencoding.declared_encoding  # what an ASCII-compatible file's declaration names


def parse(body: bytes, *, source: str = "input", max_bytes: int = DEFAULT_MAX_BYTES,
          limits: XmlLimits = xmllimits.DEFAULT) -> etree._Element:
    """Parse untrusted XML bytes or raise InputRejected naming the problem."""
    if not body or not body.strip():
        raise InputRejected("the message is empty", rule="xml.empty", source=source)
    if len(body) > max_bytes:
        raise InputRejected(
            f"the message is {len(body):,} bytes, over the limit of {max_bytes:,} bytes",
            rule="xml.too-large",
            source=source,
        )
    body, reads_as, declared = xmlencoding.prepare(body, source)
    if declared is None and not body.removeprefix(xmlencoding.BOM_UTF8).lstrip().startswith(b"<"):
        raise InputRejected("the message is not XML (it does not start with '<')", rule="xml.not-xml", source=source,
                            message_zh="该消息不是 XML（不以“<”开头）")
    head = body[:4096]
    # both start with "<!": a plain search (memchr) spares the case-blind scans of most records
    if b"<!" in body and (_DOCTYPE.search(head) or _ENTITY.search(body)):
        line = body[: (_DOCTYPE.search(body) or _ENTITY.search(body)).start()].count(b"\n") + 1  # type: ignore[union-attr]
        raise InputRejected(
            "the message declares a DOCTYPE or entities; these are refused because they can read "
            "files or expand without bound",
            rule="xml.doctype-forbidden",
            line=line,
            source=source,
        )
    xmllimits.check(body, limits, source)
    enc = declared if reads_as is None else None  # UTF-16 was decoded (and checked) by xmlencoding
    text: str | None = None
    if enc:
        if enc in xmlencoding.CHINESE and _is_utf8_chinese(body):
            line = body[: next(i for i, b in enumerate(body) if b > 0x7F)].count(b"\n") + 1
            raise InputRejected(
                f"the XML declaration says '{enc}' but the file is written in UTF-8; read as {enc} its "
                "Chinese text would be garbled, so it is refused rather than mangled",
                rule="xml.encoding-mismatch",
                line=line,
                source=source,
                message_zh=f"XML 声明的编码为“{enc}”，但文件实为 UTF-8 编码；按 {enc} 读取中文会成乱码，予以拒收",
            )
        try:
            text = body.decode(xmlencoding.codec(enc))
        except UnicodeDecodeError as e:
            line = body[: e.start].count(b"\n") + 1
            raise InputRejected(
                f"the XML declaration says '{enc}' but byte {e.start} is not valid {enc}; the file's real "
                "encoding differs from what it declares, so it is refused rather than mangled",
                rule="xml.encoding-mismatch",
                line=line,
                source=source,
                message_zh=f"XML 声明的编码为“{enc}”，但第 {e.start} 字节不是有效的 {enc}；文件实际编码与声明不符，"
                           "为免乱码，予以拒收",
            ) from None
    elif not reads_as:
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as e:
            line = body[: e.start].count(b"\n") + 1
            raise InputRejected(
                "the file declares no encoding, so it must be UTF-8, but it is not; add an XML "
                "declaration naming its encoding (for example GB18030)",
                rule="xml.encoding-mismatch",
                line=line,
                source=source,
                message_zh="文件未声明编码，应为 UTF-8，但实际不是；请在 XML 声明中写明其编码（例如 GB18030）",
            ) from None
    if text is not None and enc in _DECODED_HERE:
        utf8 = text.encode("utf-8")
        if not any(b in utf8 for b in _CODECS_DIFFER):
            try:
                return etree.fromstring(utf8, _parser("utf-8"))
            except etree.XMLSyntaxError:
                pass  # parsed again as sent, so the refusal reads exactly as it always has
    try:
        return etree.fromstring(body, _parser(reads_as))
    except etree.XMLSyntaxError as e:
        msg = e.msg or str(e)
        limit = xmllimits.plain(msg, limits, source, e.lineno or None)
        if limit is not None:  # one of libxml2's own bounds, which the scan let through
            raise limit from None
        raise InputRejected(f"the XML is not well-formed: {msg}", rule="xml.malformed", line=e.lineno or None,
                            source=source) from None


def _is_utf8_chinese(body: bytes) -> bool:
    """True when bytes are valid UTF-8 whose non-ASCII text is Chinese.

    GB18030 bytes misread as UTF-8 either fail to decode or yield Latin/Greek/Cyrillic letters
    mixed into the text, so this does not mistake real GB18030 files for UTF-8 ones.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    wide = [ord(c) for c in text if ord(c) > 0x7F]
    return (any(0x4E00 <= c <= 0x9FFF for c in wide)
            and all(c >= 0x2E80 or 0x2000 <= c <= 0x206F or c == 0xB7 for c in wide))
