"""GB18030 text is decoded once, by Python, and must read exactly as libxml2 read it before."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway import xmlsafe
from gateway.errors import InputRejected
from gateway.mapping import load_pack

DECL = b'<?xml version="1.0" encoding="GB18030"?>\n'


def _as_libxml2_reads_it(body: bytes) -> etree._Element:
    return etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))


def _same(a: etree._Element, b: etree._Element) -> None:
    assert etree.tostring(a, method="c14n") == etree.tostring(b, method="c14n")
    assert [(e.tag, e.sourceline) for e in a.iter()] == [(e.tag, e.sourceline) for e in b.iter()]


@pytest.mark.parametrize("sample", sorted(Path(load_pack("police").samples).glob("valid/*.xml")), ids=str)
def test_police_samples_read_as_libxml2_reads_them(sample: Path) -> None:
    body = sample.read_bytes()
    _same(xmlsafe.parse(body), _as_libxml2_reads_it(body))


@pytest.mark.parametrize("chars", [
    b"\xa6\xd9\xfe\x51",  # GB18030-2005 remappings: Python and iconv read these differently
    "\u1e3f".encode("gb18030"),
    "中文 ，全角\u3000空格".encode("gb18030"),
    "𠀀".encode("gb18030"),  # four-byte sequence, outside the BMP
])
def test_characters_read_as_libxml2_reads_them(chars: bytes) -> None:
    body = DECL + b"<AJXX>\n  <BZ>" + chars + b"</BZ>\n</AJXX>\n"
    _same(xmlsafe.parse(body), _as_libxml2_reads_it(body))


def test_malformed_gb18030_is_refused_as_before() -> None:
    body = DECL + "<AJXX>\n  <BZ>中文</B>\n</AJXX>\n".encode("gb18030")
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(body)
    with pytest.raises(etree.XMLSyntaxError) as raw:
        _as_libxml2_reads_it(body)
    assert e.value.rule == "xml.malformed" and e.value.line == 3 == raw.value.lineno
    assert raw.value.msg in e.value.message
