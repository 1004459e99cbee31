"""What agency IT meets first: a vendor schema that does not compile, pack.yaml's keys, finding the
pack for an agency, and the limits the standard puts on every field."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import typer
from lxml import etree
from typer.testing import CliRunner, Result

from gateway.errors import ConfigError
from gateway.mapping import load_pack
from gateway.mapping_cli import mapping_app, validate

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
VENDOR = FIXTURES / "vendor-nondeterministic"
EXT = "ext/ProsecutionDecisionReport_Ext.xsd"
XS = "{http://www.w3.org/2001/XMLSchema}"


def _validate(*args: str) -> Result:
    app = typer.Typer()
    app.command()(validate)
    return CliRunner().invoke(app, list(args))


def _mapping(*args: str) -> Result:
    return CliRunner().invoke(mapping_app, list(args))


def _flat(text: str) -> str:
    return " ".join(text.split())


# 1. a schema that does not compile names the file and line the fault is in


def test_a_fault_in_an_imported_schema_names_that_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_pack("vendor-nondeterministic", (str(FIXTURES),))
    said = str(caught.value)
    assert f"{EXT}, line 7" in said and "not deterministic" in said and "substitution group" in said
    assert "legacy.xsd, line" not in said  # not shown as if it were in the entry schema

    # a malformed imported file is named the same way, by the file it is in
    pack = tmp_path / "broken"
    shutil.copytree(VENDOR, pack)
    (pack / EXT).write_text('<?xml version="1.0"?>\n<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n'
                            '<xs:element name="A">\n</xs:schema>\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{EXT}, line 4: Opening and ending tag mismatch")):
        load_pack("broken", (str(tmp_path),))


def test_validate_and_mapping_test_say_the_legacy_schema_does_not_compile() -> None:
    sample = VENDOR / "samples" / "valid" / "report.xml"
    for res in (_validate(str(sample), "--agency", "VENDOR", "--dir", str(FIXTURES)),
                _mapping("test", "vendor-nondeterministic", "--dir", str(FIXTURES))):
        out = _flat(res.output)
        assert res.exit_code == 2, res.output
        assert "旧系统 XSD 无法编译 / the legacy schema does not compile" in out
        assert f"{EXT}, line 7" in out and "not deterministic" in out
        assert "no mapping pack" not in out and "Traceback" not in out


def test_the_guide_says_what_to_do_with_a_vendor_schema_libxml2_refuses() -> None:
    guide = (ROOT / "docs" / "connect-an-agency.md").read_text(encoding="utf-8")
    section = guide.split("### When a vendor schema does not compile", 1)[1].split("\n## ", 1)[0]
    for advice in ("Report it to the vendor", "smallest patch in the pack", "Validate only the root"):
        assert advice in section
    # the root-only schema the guide shows does what it says: the root is checked, its content is not
    xsd = section.split("```xml", 1)[1].split("```", 1)[0]
    schema = etree.XMLSchema(etree.fromstring(xsd.encode()))
    assert schema.validate(etree.fromstring(b'<Report xmlns="urn:vendor:report" x="1"><Any><More/></Any></Report>'))
    assert not schema.validate(etree.fromstring(b'<Other xmlns="urn:vendor:report"/>'))


# 2. pack.yaml has a reference, generated from the model that reads it


def test_pack_reference_is_generated_from_the_pack_model() -> None:
    from gateway.packdocs import render
    from gateway.packspec import PackSpec

    committed = (ROOT / "docs" / "pack-reference.md").read_text(encoding="utf-8")
    assert committed == render(), "stale: run `gateway mapping docs -o docs/pack-reference.md`"
    for key in PackSpec.model_fields:
        assert f"| `{key}` |" in committed, key
    row = next(line for line in committed.splitlines() if line.startswith("| `legacy_schema` |"))
    assert "Leave it out" in row
    res = _mapping("docs")
    assert res.exit_code == 0 and res.output == committed


def test_scaffold_lists_every_pack_key_and_loads(tmp_path: Path) -> None:
    from gateway.packspec import PackSpec, load_spec

    assert _mapping("new", "tax-bureau", "--dir", str(tmp_path), "--agency", "TAX").exit_code == 0
    text = (tmp_path / "tax-bureau" / "pack.yaml").read_text(encoding="utf-8")
    for key in PackSpec.model_fields:
        assert re.search(rf"^(# )?{key}:", text, re.MULTILINE), key
    assert "\n# legacy_catalog:" in text and "\nlegacy_schema: legacy.xsd" in text
    spec = load_spec(tmp_path / "tax-bureau" / "pack.yaml")
    assert (spec.agency, spec.legacy_schema, spec.legacy_catalog) == ("TAX", "legacy.xsd", None)


def test_a_misspelt_pack_key_is_refused_naming_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "pack.yaml").write_text("name: p\nlegacy_catalogue: catalog.xml\nstandard: 1\n")
    with pytest.raises(ConfigError) as caught:
        load_pack("p", (str(tmp_path),))
    assert f"{tmp_path / 'p' / 'pack.yaml'}: legacy_catalogue: unknown key" in str(caught.value)
    (tmp_path / "p" / "pack.yaml").write_text("name: [p\n")
    with pytest.raises(ConfigError, match=r"pack.yaml, line 2: not valid YAML"):
        load_pack("p", (str(tmp_path),))
    (tmp_path / "p" / "pack.yaml").write_text("name: p\nstandard: 1\n")  # a YAML number means the same
    assert load_pack("p", (str(tmp_path),)).standard == "1"


# 3. --agency finds the pack whose agency: it is


def test_validate_finds_the_pack_by_its_agency_field(tmp_path: Path) -> None:
    assert _mapping("new", "tax-bureau", "--dir", str(tmp_path), "--agency", "TAX").exit_code == 0
    assert _mapping("test", "tax-bureau", "--dir", str(tmp_path), "--update").exit_code == 0
    sample = tmp_path / "tax-bureau" / "samples" / "valid" / "accept-case.xml"
    res = _validate(str(sample), "--agency", "TAX", "--dir", str(tmp_path))
    assert res.exit_code == 0 and "pack tax-bureau" in res.output and "ACCEPTED" in res.output, res.output

    assert _mapping("new", "tax-copy", "--dir", str(tmp_path), "--agency", "TAX").exit_code == 0
    res = _validate(str(sample), "--agency", "TAX", "--dir", str(tmp_path))
    out = _flat(res.output)
    assert res.exit_code == 2 and "several mapping packs have agency: TAX" in out, res.output
    assert "tax-bureau (" in out and "tax-copy (" in out and "--pack" in out
    res = _validate(str(sample), "--agency", "TAX", "--dir", str(tmp_path), "--pack", "tax-bureau")
    assert res.exit_code == 0 and "ACCEPTED" in res.output, res.output

    res = _validate(str(sample), "--agency", "NOBODY", "--dir", str(tmp_path))
    assert res.exit_code == 2 and "no mapping pack has agency: NOBODY" in _flat(res.output), res.output


# 4. the standard's reference shows every limit the XSD enforces


def _fields(xsd: etree._Element) -> list[tuple[str, str]]:
    """(path, named type) of every element and attribute of the standard, walked independently of the page."""
    complex_types = {t.get("name"): t for t in xsd.findall(f"{XS}complexType")}

    def walk(el: etree._Element, prefix: str) -> list[tuple[str, str]]:
        path = f"{prefix}/{el.get('name')}"
        ct = el.find(f"{XS}complexType")
        ct = ct if ct is not None else complex_types.get(el.get("type") or "")
        if ct is None:
            return [(path, el.get("type") or "")]
        ext = ct.find(f"{XS}simpleContent/{XS}extension")
        out = [(path, ext.get("base") or "")] if ext is not None else []
        holder = ext if ext is not None else ct
        out += [(f"{path}/@{a.get('name')}", a.get("type") or "") for a in holder.findall(f"{XS}attribute")]
        for child in ct.findall(f"{XS}sequence/{XS}element"):
            out += walk(child, path)
        return out

    return [f for top in xsd.findall(f"{XS}element") for f in walk(top, "")]


def _facet_values(xsd: etree._Element, type_name: str) -> list[str]:
    simple = {t.get("name"): t for t in xsd.findall(f"{XS}simpleType")}
    values: list[str] = []
    while type_name in simple:
        if simple[type_name].find(f"{XS}union") is not None:  # a union of built-in types has no facets
            break
        r = simple[type_name].find(f"{XS}restriction")
        assert r is not None
        values += [str(f.get("value")) for f in r if isinstance(f.tag, str) and f.get("value") is not None]
        type_name = r.get("base") or ""
    return values


def test_standard_reference_shows_every_facet_of_every_field() -> None:
    page = (ROOT / "standards" / "README.md").read_text(encoding="utf-8")
    types = {}
    for line in page.splitlines():
        cells = [c.replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 4 and cells[0].strip().startswith("`/"):
            types[cells[0].strip().strip("`")] = cells[2]
    xsd = etree.parse(str(ROOT / "standards" / "case-exchange" / "v1" / "case-exchange.xsd")).getroot()
    fields = _fields(xsd)
    assert len(fields) > 60
    for path, type_name in fields:
        assert path in types, f"{path} is not in standards/README.md"
        for value in _facet_values(xsd, type_name):
            assert value in types[path], f"{path}: limit {value!r} of {type_name} missing from {types[path]!r}"
    assert "4 to 64 characters" in types["/CaseRecord/CaseNumber"]
    assert "1 to 100 characters" in types["/CaseRecord/Persons/Person/Name"]
    assert "one of `male`, `female`, `unknown`" in types["/CaseRecord/Persons/Person/Gender"]


# 5. what the agency receives is tested too: exact bytes, a readable diff, the legacy schema


def _scaffold(tmp_path: Path) -> Path:
    load_pack.cache_clear()  # each step below edits the pack on disk
    assert _mapping("new", "tax", "--dir", str(tmp_path), "--agency", "TAX").exit_code == 0
    assert _mapping("test", "tax", "--dir", str(tmp_path), "--update").exit_code == 0  # the sent sample's outputs
    return tmp_path / "tax"


def _test(tmp_path: Path, *more: str) -> Result:
    load_pack.cache_clear()
    return _mapping("test", "tax", "--dir", str(tmp_path), *more)


def test_scaffold_comes_with_a_received_sample_that_passes(tmp_path: Path) -> None:
    pack = _scaffold(tmp_path)
    received = pack / "samples" / "received"
    assert sorted(f.name for f in received.iterdir()) == [
        "defect-notice.expected.xml", "defect-notice.xml", "judgment.expected.xml", "judgment.xml"]
    res = _test(tmp_path)
    assert res.exit_code == 0 and "PASS received judgment.xml" in res.output, res.output
    assert "PASS received defect-notice.xml" in res.output and "2/2 received samples of pack tax pass" in res.output
    assert (received / "judgment.expected.xml").read_bytes() == (
        b"<?xml version='1.0' encoding='UTF-8'?>\n<Record><CaseNo>A2026000001</CaseNo><Stage>SP</Stage>"
        b"<Action>judgment</Action><From>COURT</From><To>TAX</To></Record>")


def test_a_changed_outbound_mapping_shows_a_diff_in_the_packs_encoding_until_updated(tmp_path: Path) -> None:
    pack = _scaffold(tmp_path)
    expected = pack / "samples" / "received" / "judgment.expected.xml"
    xsl = pack / "outbound.xsl"
    xsl.write_text(xsl.read_text(encoding="utf-8").replace(
        '<Action><xsl:value-of select="c:Action"/></Action>',
        '<Action>判决:<xsl:value-of select="c:Action"/></Action>'), encoding="utf-8")
    spec = pack / "pack.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("encoding: UTF-8", "encoding: GB18030"),
                    encoding="utf-8")
    res = _test(tmp_path)
    out = res.output
    assert res.exit_code == 1 and "FAIL received judgment.xml" in out, out
    assert "received/judgment.expected.xml: the tax system would be given other bytes" in _flat(out)
    assert "-<?xml version='1.0' encoding='UTF-8'?>" in out and "+<?xml version='1.0' encoding='GB18030'?>" in out
    assert "-<Action>judgment</Action>" in out and "+<Action>判决:judgment</Action>" in out
    assert "0/2 received samples of pack tax pass" in out  # the defect notice's encoding changed too

    res = _test(tmp_path, "--update", "--update-received")  # the sent sample's outbound changed as well
    assert res.exit_code == 0 and "wrote received/judgment.expected.xml" in res.output, res.output
    assert "(2 expected files written)" in res.output
    assert "判决:judgment".encode("gb18030") in expected.read_bytes()
    res = _test(tmp_path, "--update-received")  # nothing changed: nothing written
    assert res.exit_code == 0 and "wrote" not in res.output and "(0 expected files written)" in res.output
    assert _test(tmp_path).exit_code == 0

    expected.write_bytes(b"\xef\xbb\xbf" + expected.read_bytes())  # a byte order mark the system never gets
    res = _test(tmp_path)
    assert res.exit_code == 1 and "first difference at byte 0" in res.output, res.output
    assert "the file starts with a UTF-8 byte order mark, the other does not" in _flat(res.output)


def test_received_output_the_legacy_schema_refuses_is_reported_with_file_and_line(tmp_path: Path) -> None:
    pack = _scaffold(tmp_path)
    xsl = pack / "outbound.xsl"
    xsl.write_text(xsl.read_text(encoding="utf-8").replace("<From>", "<Frm>").replace("</From>", "</Frm>"),
                   encoding="utf-8")
    for update in ((), ("--update-received",)):  # writing the expected file does not hide the refusal
        res = _test(tmp_path, *update)
        out = _flat(res.output)
        assert res.exit_code == 1 and "FAIL received judgment.xml" in out, res.output
        assert "received/judgment.expected.xml, line 2: what the outbound mapping wrote for received/judgment.xml " \
               "does not follow the tax legacy schema: Frm is not expected here" in out and "at /Record/Frm" in out

    sample = pack / "samples" / "received" / "judgment.xml"
    sample.write_text(sample.read_text(encoding="utf-8").replace("<Stage>trial</Stage>", ""), encoding="utf-8")
    res = _test(tmp_path)
    assert "received/judgment.xml, line 5: not a valid Case Exchange record: Element" in _flat(res.output), res.output
