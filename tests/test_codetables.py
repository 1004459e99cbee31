"""Code tables written into the XSLT: same translations and refusals as the Python lookup, no calls."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway import xmlsafe
from gateway.codetables import rewrite
from gateway.errors import InputRejected
from gateway.mapping import MappingPack, load_pack

PACKS = ["police", "procuratorate", "court", "justice"]


def _counting(pack: MappingPack, monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, ...]]:
    calls: list[tuple[object, ...]] = []
    real = pack._lookup

    def lookup(*a: object) -> str:
        calls.append(a)
        return real(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(pack, "_lookup", lookup)
    return calls


@pytest.mark.parametrize("name", PACKS)
def test_valid_samples_map_as_the_written_stylesheet_does_without_calling_python(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pack = load_pack(name)
    samples = sorted((pack.samples / "valid").glob("*.xml"))
    assert samples
    for f in samples:
        tree = xmlsafe.parse(f.read_bytes())
        assert pack._inbound_exact is not None and pack.inbound is not pack._inbound_exact
        exact = pack._inbound_exact(tree).getroot()
        out_exact = pack._outbound_exact(exact).getroot()  # type: ignore[misc]
        calls = _counting(pack, monkeypatch)
        fast = pack.to_standard(tree)
        assert etree.tostring(fast) == etree.tostring(exact), f.name
        written = etree.tostring(out_exact, xml_declaration=True, encoding=pack.encoding)
        assert pack.from_standard(fast) == written
        assert calls == [], f"{f.name}: the inlined stylesheets called back into Python"
        monkeypatch.undo()


def _police_sample() -> etree._Element:
    pack = load_pack("police")
    return xmlsafe.parse((pack.samples / "valid" / "02-transfer-for-prosecution.xml").read_bytes())


def test_untranslated_code_still_refuses_naming_the_table() -> None:
    tree = _police_sample()
    tree.find("JD").text = "77"  # type: ignore[union-attr]
    with pytest.raises(InputRejected, match=r"code '77' has no translation in code table stages "
                                            r"\(police/codes/stages.csv\)"):
        load_pack("police").to_standard(tree)


def test_padding_python_strips_but_xpath_does_not_still_translates() -> None:
    """U+3000 is white space to Python's lookup, not to XPath: the record is mapped as before."""
    tree = _police_sample()
    tree.find("JD").text = "\u300003\u3000"  # type: ignore[union-attr]
    out = load_pack("police").to_standard(tree)
    assert out.findtext("{urn:cn:justice:case-exchange:1}Stage") == "prosecution-review"


def test_empty_code_stays_empty_and_xml_white_space_is_ignored() -> None:
    pack = load_pack("police")
    tree = _police_sample()
    tree.find("JD").text = "  "  # type: ignore[union-attr]
    assert pack.to_standard(tree).findtext("{urn:cn:justice:case-exchange:1}Stage") == ""
    tree.find("JD").text = "\n 03\t"  # type: ignore[union-attr]
    assert pack.to_standard(tree).findtext("{urn:cn:justice:case-exchange:1}Stage") == "prosecution-review"


def test_a_value_cannot_match_across_entries() -> None:
    """Keys are matched whole: a value made of one entry's tail and the next one's head misses."""
    tree = _police_sample()
    tree.find("JD").text = "03 04"  # type: ignore[union-attr]
    with pytest.raises(InputRejected, match="code table stages"):
        load_pack("police").to_standard(tree)


def test_rewrite_handles_nesting_avts_and_leaves_the_unknown_alone() -> None:
    tables = {"to-standard:t": "$T", "to-legacy:t": "$L"}
    out = rewrite("{m:to-legacy('t', c:a[f(x, 'y)')])}", {"m"}, tables)
    assert out.startswith("{concat(") and "$L" in out and "c:a[f(x, 'y)')]" in out and out.endswith(")}")
    assert rewrite("m:to-standard('u', x)", {"m"}, tables) == "m:to-standard('u', x)"  # no such table
    assert rewrite("m:to-standard($t, x)", {"m"}, tables) == "m:to-standard($t, x)"  # table not literal
    assert rewrite("q:to-standard('t', x)", {"m"}, tables) == "q:to-standard('t', x)"  # other namespace
    nested = rewrite("m:to-standard('t', m:to-legacy('t', x))", {"m"}, tables)
    assert "to-legacy" not in nested.replace("untranslated('t', x, 1)", "")


def _pack(tmp_path: Path, body: str, table: str, rows: str) -> MappingPack:
    """A pack whose inbound XSLT template is `body`, with one code table."""
    xsl = (
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" '
        f'xmlns:m="urn:cn:justice:case-exchange:mapping"><xsl:template match="/">{body}'
        "</xsl:template></xsl:stylesheet>"
    )
    (tmp_path / "p" / "codes").mkdir(parents=True)
    (tmp_path / "p" / "pack.yaml").write_text("name: p\ninbound: in.xsl\n", encoding="utf-8")
    (tmp_path / "p" / "in.xsl").write_text(xsl, encoding="utf-8")
    (tmp_path / "p" / "codes" / f"{table}.csv").write_text(f"legacy,standard\n{rows}", encoding="utf-8")
    return load_pack("p", (str(tmp_path),))


def test_pack_with_a_key_the_literal_cannot_hold_falls_back_to_python(tmp_path: Path) -> None:
    body = "<r a=\"{m:to-standard('t', /a/@v)}\"><xsl:value-of select=\"m:to-standard('t', /a)\"/></r>"
    pack = _pack(tmp_path, body, "t", "it's,quoted\nplain,ok\n")
    out = pack.to_standard(etree.fromstring(b"<a v='plain'>it's</a>"))
    assert (out.get("a"), out.text) == ("ok", "quoted")
    with pytest.raises(InputRejected, match="code table t"):
        pack.to_standard(etree.fromstring(b"<a v='nope'>plain</a>"))


def test_table_whose_name_cannot_be_a_variable_stays_with_python(tmp_path: Path) -> None:
    body = "<r><xsl:value-of select=\"m:to-standard('odd name', /a)\"/></r>"
    pack = _pack(tmp_path, body, "odd name", "1,one\n")
    assert pack.to_standard(etree.fromstring(b"<a>1</a>")).text == "one"
    with pytest.raises(InputRejected, match="code table odd name"):
        pack.to_standard(etree.fromstring(b"<a>2</a>"))
