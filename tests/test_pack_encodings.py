"""A pack's `encoding:` is one the gateway reads back: checked at load, and proven on every one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from typer.testing import CliRunner

from gateway import xmlencoding, xmlsafe
from gateway.errors import ConfigError, InputRejected
from gateway.mapping import MappingPack
from gateway.mapping_cli import mapping_app
from gateway.packspec import load_spec

JUDGMENT = Path(__file__).resolve().parent.parent / "mappings" / "identity" / "samples" / "received" / "04-judgment.xml"
ENCODINGS = [name for name, _ in xmlencoding.SUPPORTED.values()]
# characters XML 1.0 allows in text, without the CR a parser turns into LF
XML_CHARS = st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | st.sampled_from(
    "\t\n 张三案件臺灣𠀀，、")


def _holds(name: str, encoding: str) -> bool:
    try:
        name.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def _pack(tmp: Path, encoding: str) -> Path:
    root = tmp / "legacy"
    root.mkdir(parents=True, exist_ok=True)
    (root / "pack.yaml").write_text(f"name: legacy\nencoding: {encoding}\n", encoding="utf-8")
    return root


def test_an_unknown_encoding_is_a_config_error_naming_file_key_and_choices(tmp_path: Path) -> None:
    root = _pack(tmp_path, "NOPE")
    (root / "samples" / "received").mkdir(parents=True)
    shutil.copy(JUDGMENT, root / "samples" / "received")  # written out in the pack's encoding
    res = CliRunner().invoke(mapping_app, ["test", "legacy", "--dir", str(tmp_path)])
    assert res.exit_code == 2, res.output
    out = " ".join(res.output.split())
    assert f"{root / 'pack.yaml'}: encoding: " in out and "'NOPE'" in out and "不支持" in out
    assert all(name in out for name in ENCODINGS)
    assert "Traceback" not in out and res.exception is None or isinstance(res.exception, SystemExit)


def test_encoding_names_are_read_case_blind_and_written_as_declared(tmp_path: Path) -> None:
    assert load_spec(_pack(tmp_path, "gb18030") / "pack.yaml").encoding == "GB18030"
    assert load_spec(_pack(tmp_path, "big5") / "pack.yaml").encoding == "Big5"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(encoding=st.sampled_from(ENCODINGS), text=st.text(XML_CHARS, max_size=40),
       attr=st.text(XML_CHARS, max_size=10), name=st.sampled_from(["Record", "记录", "記錄", "AJXX"]))
def test_what_a_pack_writes_in_any_supported_encoding_the_gateway_reads_back(
        tmp_path: Path, encoding: str, text: str, attr: str, name: str) -> None:
    root = _pack(tmp_path, encoding)
    pack = MappingPack(root, load_spec(root / "pack.yaml"))
    tree = etree.Element(name, BZ=attr)
    etree.SubElement(tree, "BZ").text = text
    if encoding in ("GB2312", "GBK", "Big5") and not _holds(name, encoding):
        with pytest.raises(InputRejected) as e:  # a name cannot be escaped: refused, never written malformed
            pack.from_standard(tree)
        assert e.value.rule == "mapping.encoding" and name in e.value.message and name in e.value.message_zh
        return
    written = pack.from_standard(tree)  # the call live delivery makes
    read = xmlsafe.parse(written, source=f"written in {encoding}")
    assert etree.tostring(read, method="c14n") == etree.tostring(tree, method="c14n")


def test_an_outbound_stylesheet_writing_names_the_encoding_lacks_is_refused_at_load(tmp_path: Path) -> None:
    root = _pack(tmp_path, "Big5")
    (root / "outbound.xsl").write_text(
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">\n'
        '  <xsl:template match="/*">\n    <记录 状态="1"><xsl:value-of select="."/></记录>\n  </xsl:template>\n'
        '</xsl:stylesheet>\n', encoding="utf-8")
    spec = root / "pack.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "outbound: outbound.xsl\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        MappingPack(root, load_spec(spec))
    assert "outbound.xsl: line 3" in str(e.value) and "<记录>" in str(e.value) and "Big5" in str(e.value)
    spec.write_text(spec.read_text(encoding="utf-8").replace("Big5", "GB2312"), encoding="utf-8")
    assert MappingPack(root, load_spec(spec)).encoding == "GB2312"  # 记录 and 状态 are GB2312 characters
