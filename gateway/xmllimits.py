"""Bounds on the work one untrusted XML file may cost, checked on its bytes before it is parsed.

libxml2 makes every element and attribute a node of a few hundred bytes, and the pipeline holds
several trees of a record at once (parsed, mapped, validated): a 10 MB start tag with 200,000
attributes cost a node over a gigabyte. So the raw bytes are read first (counts at C speed, a
token pass only where the counts cannot rule a limit out) and such a file is refused before
libxml2 allocates anything for it. libxml2's own bounds (depth 256, 10,000,000 bytes of text)
stay behind as a backstop; `plain` puts their messages in words an officer understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

from gateway.errors import InputRejected

LIBXML2_DEPTH = 256  # libxml2's limits without XML_PARSE_HUGE, which the gateway never sets
LIBXML2_TEXT = 10_000_000
LIBXML2_NAME = 50_000


@dataclass(frozen=True)
class XmlLimits:
    """What one XML file may hold; each is at most libxml2's own bound where it has one."""

    elements: int = 100_000
    attributes: int = 100  # on one element
    attributes_total: int = 200_000
    depth: int = LIBXML2_DEPTH  # libxml2 checks its own as it parses; a lower one is checked by the scan
    text_bytes: int = LIBXML2_TEXT


DEFAULT = XmlLimits()

# A start tag, an end tag, or the "/>" closing an empty element (attribute values hold no "<").
_TAGS = re.compile(rb"</|<|/>")
_STEP = {b"<": 1, b"</": -1, b"/>": -1}
# Comments, CDATA sections and processing instructions, whose text may look like markup.
_OPAQUE = re.compile(rb"<!--|<!\[CDATA\[|<\?")
_CLOSER = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
_MARKUP = re.compile(rb"<!--|<!\[CDATA\[|<\?|</|<|/>")
# One attribute, in a start tag. The possessive quantifiers never give back what they took, so each
# byte is looked at a bounded number of times whatever the file holds.
_ATTR = rb"\s++[^\s=<>/\"']++\s*+=\s*+(?:\"[^\"<]*+\"|'[^'<]*+')"
# Every attribute's "=" and opening quote (and any such pair in text): at least as many as attributes.
# The empty group makes findall list b"" per match, copying nothing.
_QUOTED = re.compile(rb"=\s*+[\"']()")


@lru_cache(maxsize=8)
def _crowded(limit: int) -> re.Pattern[bytes]:
    """A start tag with more than `limit` attributes."""
    return re.compile(rb"<([^\s/>!?<]++)(?:" + _ATTR + rb"){%d}" % (limit + 1))


def _line(body: bytes | None, pos: int) -> int | None:
    return body.count(b"\n", 0, pos) + 1 if body is not None and pos >= 0 else None


def _refuse(rule: str, en: str, zh: str, source: str, line: int | None) -> InputRejected:
    return InputRejected(en, rule=rule, line=line, source=source, message_zh=zh)


def too_many_elements(limit: int, source: str, line: int | None = None) -> InputRejected:
    return _refuse("xml.too-many-elements",
                   f"the file has more than {limit:,} elements, the most one record may hold; it was refused "
                   "before it was read",
                   f"文件中的元素超过 {limit:,} 个（每份记录的上限），未予读取", source, line)


def too_deep(limit: int, source: str, line: int | None = None) -> InputRejected:
    return _refuse("xml.too-deep",
                   f"elements are nested more than {limit} levels deep, the most a record may have; it was "
                   "refused before it was read",
                   f"元素嵌套超过 {limit} 层（记录的上限），未予读取", source, line)


def text_too_long(limit: int, source: str, line: int | None = None) -> InputRejected:
    return _refuse("xml.text-too-long",
                   f"a piece of the file (a text, an attribute value, or a tag with its attributes) is over "
                   f"{limit:,} bytes, the most one may have; send large content as a dossier file",
                   f"文件中有一段内容（文字、属性值或带属性的标签）超过 {limit:,} 字节（单段上限），"
                   "大的内容请作为卷宗文件附送", source, line)


def too_many_attributes(limit: int, source: str, line: int | None = None, element: str = "") -> InputRejected:
    en, zh = (f"element <{element}>", f"元素 <{element}> ") if element else ("an element", "某个元素")
    return _refuse("xml.too-many-attributes",
                   f"{en} has more than {limit:,} attributes, the most one element may have; it was refused "
                   "before it was read",
                   f"{zh}的属性超过 {limit:,} 个（每个元素的上限），未予读取", source, line)


def check(body: bytes, limits: XmlLimits, source: str) -> None:
    """Raise InputRejected naming the first limit the file is over; cheap for a file within them."""
    if len(body) > limits.text_bytes:
        _check_text(body, limits.text_bytes, source)
    tags = body.count(b"<")  # start tags and more (end tags, comments...): a bound on elements and depth
    if tags > limits.elements:
        tags -= body.count(b"</")
    if tags > limits.elements or (limits.depth < LIBXML2_DEPTH and tags > limits.depth):
        _check_tree(body, limits, source)
    if body.count(b"=") > limits.attributes:  # every attribute has its "="
        _check_attributes(body, limits, source)


def _check_text(body: bytes, limit: int, source: str) -> None:
    last = 0
    while True:
        pos = body.find(b"<", last + 1)
        end = len(body) if pos < 0 else pos
        if end - last > limit:
            raise text_too_long(limit, source, _line(body, last))
        if pos < 0:
            return
        last = pos


def _check_tree(body: bytes, limits: XmlLimits, source: str) -> None:
    declared = body[:16].lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<?xml")
    start = body.find(b"?>") + 2 if declared else 0
    if _OPAQUE.search(body, start) is None:  # the common case, at C speed: a token list and a running sum
        tokens = _TAGS.findall(body, start)
        depth = max(accumulate(map(_STEP.__getitem__, tokens)), default=0)
        if tokens.count(b"<") <= limits.elements and depth <= limits.depth:
            return
    _walk(body, start, limits, source)


def _walk(body: bytes, pos: int, limits: XmlLimits, source: str) -> None:
    """Token by token, skipping comments, CDATA and PIs: finds where a limit is passed."""
    elements = depth = 0
    while (m := _MARKUP.search(body, pos)) is not None:
        token = m.group()
        pos = m.end()
        closer = _CLOSER.get(token)
        if closer is not None:
            end = body.find(closer, pos)
            if end < 0:
                return  # never closed: libxml2 refuses the file as malformed
            pos = end + len(closer)
            continue
        depth += _STEP[token]
        if token == b"<":
            elements += 1
            if elements > limits.elements:
                raise too_many_elements(limits.elements, source, _line(body, m.start()))
            if depth > limits.depth:
                raise too_deep(limits.depth, source, _line(body, m.start()))


def _check_attributes(body: bytes, limits: XmlLimits, source: str) -> None:
    m = _crowded(limits.attributes).search(body)
    if m is not None:
        name = m.group(1).decode("utf-8", "replace")[:100]
        raise too_many_attributes(limits.attributes, source, _line(body, m.start()), name)
    if body.count(b"=") > limits.attributes_total and len(_QUOTED.findall(body)) > limits.attributes_total:
        raise _refuse("xml.too-many-attributes",
                      f"the file has more than {limits.attributes_total:,} attributes in all, the most one record "
                      "may hold; it was refused before it was read",
                      f"文件中的属性总数超过 {limits.attributes_total:,} 个（每份记录的上限），未予读取", source, None)


# libxml2's messages about its own limits, by what they mean to the sender
_LIBXML2 = (
    (("Excessive depth in document", "too deep"), "depth"),
    (("Text node too long", "Buffer size limit exceeded", "CData section too big", "Comment too big",
      "AttValue length too long", "too big found", "huge text node", "Huge input lookup", "huge input lookup"),
     "text"),
    (("Name too long",), "name"),
    (("Maximum number of attributes exceeded",), "attributes"),
    (("Memory allocation failed", "Resource limit exceeded", "Operation limit exceeded", "XML_PARSE_HUGE"),
     "size"),
)


def plain(message: str, limits: XmlLimits, source: str, line: int | None) -> InputRejected | None:
    """The refusal for a libxml2 message about one of its limits, in plain words; None for other messages."""
    kind = next((k for needles, k in _LIBXML2 if any(n in message for n in needles)), None)
    if kind is None:
        return None
    if kind == "depth":
        return too_deep(min(limits.depth, LIBXML2_DEPTH), source, line)
    if kind == "text":
        return text_too_long(min(limits.text_bytes, LIBXML2_TEXT), source, line)
    if kind == "name":
        return _refuse("xml.name-too-long",
                       f"an element or attribute name is over {LIBXML2_NAME:,} characters, the most one may have",
                       f"元素名或属性名超过 {LIBXML2_NAME:,} 个字符（上限）", source, line)
    if kind == "attributes":
        return too_many_attributes(limits.attributes, source, line)
    return _refuse("xml.too-large", "the file is too large or too complex for the gateway to read; send it in "
                                    "smaller records",
                   "文件过大或结构过于复杂，网关无法读取，请拆分为较小的记录后重新发送", source, line)
