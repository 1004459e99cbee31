"""Bounds on what one XML file may cost: refused on its bytes, before libxml2 builds a tree, in plain words."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from lxml import etree

from gateway import xmllimits, xmlsafe
from gateway.errors import InputRejected
from gateway.xmllimits import XmlLimits

from .support.records import record

ROOT = Path(__file__).resolve().parent.parent


def bomb(attributes: int = 200_000, width: int = 1) -> bytes:
    """A standard record whose CaseNumber carries `attributes` attributes (the standard allows none there)."""
    attrs = " ".join(f'a{i}="{"x" * width}"' for i in range(attributes))
    return record().replace(b"<CaseNumber>", f"<CaseNumber {attrs}>".encode(), 1)


def refused(body: bytes, limits: XmlLimits = xmllimits.DEFAULT) -> InputRejected:
    with pytest.raises(InputRejected) as e:
        xmlsafe.parse(body, source="test", limits=limits)
    said = f"{e.value} {e.value.message} {e.value.message_zh}"
    assert "XML_PARSE_HUGE" not in said and "libxml" not in said, said
    assert e.value.message_zh, "the refusal has its Chinese words"
    return e.value


@pytest.fixture
def no_tree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build a tree fails the test: the file must be refused before that."""
    def forbidden(*a: object, **k: object) -> None:
        raise AssertionError("a tree was built for a file that should have been refused on its bytes")

    monkeypatch.setattr(xmlsafe.etree, "fromstring", forbidden)


def test_attribute_bomb_is_refused_before_a_tree_is_built(no_tree: None) -> None:
    e = refused(bomb())
    assert e.rule == "xml.too-many-attributes" and e.line == 2
    assert "<CaseNumber> has more than 100 attributes" in e.message and "100" in e.message_zh


def test_attributes_spread_over_elements_are_bounded_in_all(no_tree: None) -> None:
    person = "<Person id='p1' " + " ".join(f'a{i}="x"' for i in range(50)) + "/>"
    body = record().replace(b"<Persons>", ("<Persons>" + person * 100).encode())
    e = refused(body, XmlLimits(attributes_total=1000))
    assert e.rule == "xml.too-many-attributes" and "1,000 attributes in all" in e.message


def test_attribute_bomb_parse_stays_small_in_memory() -> None:
    """A fresh process reads the 200,000-attribute bomb of 8 MB: past the peak of writing it, its peak grows
    by nothing like the 80 MB its tree took."""
    script = textwrap.dedent("""
        import resource, sys
        from gateway import xmlsafe
        from gateway.errors import InputRejected
        from tests.test_xml_limits import bomb
        body = bomb(width=30)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            xmlsafe.parse(body, max_bytes=32 * 1024 * 1024)
            print("accepted")
        except InputRejected as e:
            print(e.rule)
        print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    rule, grown_mb = out.stdout.split()
    assert rule == "xml.too-many-attributes"
    assert int(grown_mb) < 30, f"parsing the bomb grew the process by {grown_mb} MB"


def test_deep_nesting_is_refused_in_plain_words() -> None:
    e = refused(b"<a>" * 300 + b"</a>" * 300)  # libxml2's own bound (256), put in plain words
    assert e.rule == "xml.too-deep" and "256 levels" in e.message and e.line == 1


DEEP = b'<?xml version="1.0"?>\n<a>\n' + b"<b>" * 40 + b"\n" + b"</b>" * 40 + b"</a>"


def test_depth_below_the_parsers_own_is_checked_on_the_bytes(no_tree: None) -> None:
    e = refused(DEEP, XmlLimits(depth=32))
    assert e.rule == "xml.too-deep" and "32 levels" in e.message and e.line == 3


def test_within_a_lower_depth_and_count_a_file_is_read() -> None:
    assert xmlsafe.parse(DEEP, limits=XmlLimits(depth=41)) is not None
    commented = b"<a><!-- <b><b><b> -->" + b"<b/>" * 50 + b"</a>"  # markup in a comment is no element
    assert xmlsafe.parse(commented, limits=XmlLimits(depth=8, elements=100)) is not None


def test_huge_text_node_is_refused_in_plain_words(no_tree: None) -> None:
    e = refused(b"<a>\n" + b"x" * 10_000_001 + b"</a>")
    assert e.rule == "xml.text-too-long" and "10,000,000 bytes" in e.message and e.line == 1
    e = refused(b"<a><b>" + b"x" * 70_000 + b"</b></a>", XmlLimits(text_bytes=65_536))
    assert e.rule == "xml.text-too-long" and "65,536 bytes" in e.message


def test_too_many_elements_are_refused_with_the_line(no_tree: None) -> None:
    body = b"<a>\n" + b"<b>x</b>\n" * 2_000 + b"</a>"
    e = refused(body, XmlLimits(elements=1_000))
    assert e.rule == "xml.too-many-elements" and "1,000 elements" in e.message and e.line == 1_001


@pytest.mark.parametrize("message, rule", [
    ("Excessive depth in document: 256 use XML_PARSE_HUGE option", "xml.too-deep"),
    ("Resource limit exceeded: Buffer size limit exceeded, try XML_PARSE_HUGE\n", "xml.text-too-long"),
    ("Resource limit exceeded: Text node too long, try XML_PARSE_HUGE", "xml.text-too-long"),
    ("AttValue length too long", "xml.text-too-long"),
    ("Name too long: NCName", "xml.name-too-long"),
    ("Maximum number of attributes exceeded", "xml.too-many-attributes"),
    ("Memory allocation failed", "xml.too-large"),
])
def test_libxml2_limit_messages_become_plain_words(message: str, rule: str) -> None:
    e = xmllimits.plain(message, xmllimits.DEFAULT, "test", 7)
    assert e is not None and e.rule == rule and e.line == 7 and e.message_zh
    assert "XML_PARSE_HUGE" not in e.message and "NCName" not in e.message


def test_other_libxml2_messages_stay_as_they_are() -> None:
    assert xmllimits.plain("Opening and ending tag mismatch: a line 1 and b", xmllimits.DEFAULT, "t", 1) is None


def test_the_scan_is_not_fooled_by_what_looks_like_markup(no_tree: None) -> None:
    """Markup inside CDATA, comments and PIs is text; it neither counts nor hides what follows it."""
    limits = XmlLimits(elements=100, depth=8)
    hidden = b"<a><![CDATA[" + b"<b>" * 200 + b"]]><?pi <c><c> ?>" + b"<b>" * 9 + b"</b>" * 9 + b"</a>"
    assert refused(hidden, limits).rule == "xml.too-deep"


def test_records_within_the_limits_read_as_before() -> None:
    for body in (record(), bomb(100), b"<a>" * 255 + b"</a>" * 255):
        expected = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
        assert etree.tostring(xmlsafe.parse(body)) == etree.tostring(expected)
