"""Encodings as XML 1.0 Appendix F tells them: what the gateway reads, and what it refuses and why."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway import xmlsafe
from gateway.errors import InputRejected
from gateway.mapping import load_pack
from gateway.packcheck import check_file
from gateway.xmllimits import XmlLimits

TEXT = "张三 涉嫌危险驾驶 臺灣"  # simplified and traditional: GB2312 and Big5 get one script only
DOC = '<?xml version="1.0" encoding="{enc}"?>\n<案件>\n  <BZ a="{t}">{t}</BZ>\n</案件>\n'


def _doc(enc: str, codec: str, bom: bytes = b"", text: str = TEXT) -> bytes:
    return bom + DOC.format(enc=enc, t=text).encode(codec)


READABLE = {
    "UTF-8": _doc("UTF-8", "utf-8"),
    "UTF-8 with BOM": _doc("UTF-8", "utf-8", b"\xef\xbb\xbf"),
    "UTF-8 with BOM, no declaration": b"\xef\xbb\xbf" + DOC.split("\n", 1)[1].format(t=TEXT).encode(),
    "UTF-16 LE with BOM": _doc("UTF-16", "utf-16-le", b"\xff\xfe"),
    "UTF-16 BE with BOM": _doc("UTF-16", "utf-16-be", b"\xfe\xff"),
    "UTF-16 LE, no BOM": _doc("UTF-16", "utf-16-le"),
    "UTF-16 BE, no BOM": _doc("UTF-16", "utf-16-be"),
    "UTF-16LE declared, no BOM": _doc("UTF-16LE", "utf-16-le"),
    "GB18030": _doc("GB18030", "gb18030"),
    "GBK": _doc("GBK", "gbk"),
    "GB2312": _doc("GB2312", "gb2312", text="张三 涉嫌危险驾驶 台湾"),
    "Big5": _doc("Big5", "big5", text="張三 涉嫌危險駕駛 臺灣"),
}


@pytest.mark.parametrize("name", list(READABLE))
def test_every_supported_encoding_is_read(name: str) -> None:
    root = xmlsafe.parse(READABLE[name], source=name)
    bz = root[0]
    assert root.tag == "案件" and bz.sourceline == (2 if "no declaration" in name else 3)
    assert bz.text == bz.get("a") and bz.text in (TEXT, "张三 涉嫌危险驾驶 台湾", "張三 涉嫌危險駕駛 臺灣")


@pytest.mark.parametrize(("body", "declared", "bytes_are"), [
    (_doc("UTF-8", "utf-16-le", b"\xff\xfe"), "utf-8", "UTF-16LE with a byte order mark"),
    (_doc("GB18030", "utf-16-be", b"\xfe\xff"), "gb18030", "UTF-16BE with a byte order mark"),
    (_doc("UTF-16BE", "utf-16-le"), "utf-16be", "UTF-16LE without a byte order mark"),
    (_doc("UTF-16", "utf-8"), "utf-16", "8-bit text"),
    (_doc("UTF-16", "gb18030"), "utf-16", "8-bit text"),
    (_doc("GB18030", "utf-8", b"\xef\xbb\xbf"), "gb18030", "UTF-8 with a byte order mark"),
])
def test_a_declaration_contradicting_the_bytes_says_both(body: bytes, declared: str, bytes_are: str) -> None:
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(body, source="f.xml")
    assert e.value.rule == "xml.encoding-mismatch"
    assert f"says '{declared}'" in e.value.message and bytes_are in e.value.message
    assert declared in e.value.message_zh and "声明" in e.value.message_zh


def test_utf16_without_bom_or_declared_encoding_is_refused_saying_what_to_declare() -> None:
    body = '<?xml version="1.0"?>\n<a>字</a>'.encode("utf-16-le")
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(body)
    assert e.value.rule == "xml.encoding-mismatch"
    assert "UTF-16LE without a byte order mark" in e.value.message and 'encoding="UTF-16"' in e.value.message
    assert "BOM" in e.value.message_zh


def test_an_unsupported_encoding_is_refused_naming_the_supported_ones() -> None:
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(b'<?xml version="1.0" encoding="Shift_JIS"?><a/>')
    assert e.value.rule == "xml.encoding" and "shift_jis" in e.value.message
    assert "UTF-16" in e.value.message and "Big5" in e.value.message and "不支持" in e.value.message_zh


def test_utf16_markup_is_scanned_for_doctype_and_limits() -> None:
    """The scans before parsing read UTF-16 as the characters it holds, not as ASCII bytes."""
    doctype = '<?xml version="1.0" encoding="UTF-16"?>\n<!DOCTYPE a [<!ENTITY x "y">]>\n<a>&x;</a>'
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(b"\xff\xfe" + doctype.encode("utf-16-le"))
    assert e.value.rule == "xml.doctype-forbidden" and e.value.line == 2
    many = '<?xml version="1.0" encoding="UTF-16"?>\n<a>' + "<b/>" * 200 + "</a>"
    body = b"\xff\xfe" + many.encode("utf-16-le")
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(body, limits=XmlLimits(elements=100))
    assert e.value.rule == "xml.too-many-elements"
    assert len(xmlsafe.parse(body, limits=XmlLimits(elements=201))) == 200


def test_a_utf16_file_is_judged_on_its_content_not_refused_as_not_xml() -> None:
    """The police's own invalid sample, re-encoded as a Windows-era export writes it: the same findings."""
    pack = load_pack("police")
    sample = Path(pack.samples) / "invalid" / "date-not-yyyymmdd.xml"
    gb = sample.read_bytes()
    text = gb.decode("gb18030").replace("GB18030", "UTF-16", 1)
    utf16 = b"\xff\xfe" + text.encode("utf-16-le")
    want = check_file(gb, pack, sender=pack.agency, source=sample.name)
    got = check_file(utf16, pack, sender=pack.agency, source=sample.name)
    assert got.blocked and [p.rule for p in got.problems] == [p.rule for p in want.problems]
    assert "xml.not-xml" not in [p.rule for p in got.problems]
    assert got.notice is not None and b"not XML" not in etree.tostring(etree.fromstring(got.notice))


def _utf16(body: bytes) -> bytes:
    return b"\xff\xfe" + body.decode("gb18030").replace("GB18030", "UTF-16", 1).encode("utf-16-le")


async def test_a_live_gateway_takes_utf16_records_and_judges_them_on_their_content(tmp_path: Path) -> None:
    """Through the inbound channel, XML limits and the pipeline, as a Windows-era export arrives."""
    from gateway.model import MessageStatus

    from .test_exchange_flow import _gateway, _received, _sample

    gw, outs = await _gateway(tmp_path)
    try:
        good = _utf16(_sample("police", "valid", "02-transfer-for-prosecution.xml"))
        r = await gw.inbound["police-in"].submit(good)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.ACCEPTED and r.destinations == ("PROC",), r
        await _received(outs["PROC"])
        bad = _utf16(_sample("police", "invalid", "evidence-and-id-defects.xml"))
        r = await gw.inbound["police-in"].submit(bad)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED
        await _received(outs["POLICE"])
        notice = outs["POLICE"].received[0].body.decode("gb18030")
        assert "ID-01" in notice and "EV-DD-05" in notice and "not XML" not in notice and "xml." not in notice
    finally:
        await gw.stop()
