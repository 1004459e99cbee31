"""A real-world schema set: FBI NIBRS 4.2 (NIEM 3.0), 18 files, cross-folder imports, an XML catalog.

The fixture is a copy of the published IEPD (Apache-2.0, LICENSE inside); the pack in
fixtures/nibrs-pack imports its entry schema (with the catalog) and maps a NIBRS report to a standard
police record and back, with data only: docs/nibrs.md says what the standard could not hold.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import MappingPack, load_pack
from gateway.packcheck import check_file, run_received, run_samples
from gateway.schemaload import load_schema

FIXTURES = Path(__file__).parent / "fixtures"
NIBRS = FIXTURES / "nibrs-4.2"
SAMPLES = sorted((NIBRS / "iep-sample").glob("*.xml"))


@pytest.fixture(scope="module")
def pack() -> MappingPack:
    return load_pack("nibrs-pack", (str(FIXTURES),))


def test_fixture_is_complete() -> None:
    assert (NIBRS / "LICENSE-Apache-2.0.txt").is_file()
    assert len(list((NIBRS / "base-xsd").rglob("*.xsd"))) >= 15
    assert len(SAMPLES) == 7


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.stem)
def test_every_published_sample_validates(pack: MappingPack, sample: Path) -> None:
    from gateway.xmlsafe import parse

    assert pack.check_legacy(parse(sample.read_bytes(), source=sample.name)) == []


def test_a_broken_sample_is_rejected_with_file_and_line(pack: MappingPack) -> None:
    src = (NIBRS / "iep-sample" / "nibrs_GroupBArrest_Sample.xml").read_text(encoding="utf-8")
    lines = src.splitlines(keepends=True)
    line_no = next(i for i, line in enumerate(lines, 1) if "<nc:Date>" in line)
    lines[line_no - 1] = lines[line_no - 1].replace("<nc:Date>2016-02-28", "<nc:Date>28.02.2016")
    out = check_file("".join(lines).encode(), pack, sender="NIBRS", source="broken_GroupBArrest.xml")
    assert out.blocked
    # every problem at once: the schema's finding about the date, then whatever the rules say of the rest
    [p] = [p for p in out.problems if p.rule == "legacy.schema"]
    assert p.rule == "legacy.schema" and p.line == line_no and "28.02.2016" in p.message
    assert "nc:Date" in p.location or "Date" in p.location


def test_catalog_resolves_imports_by_namespace_uri_and_nothing_else_is_fetched(tmp_path: Path) -> None:
    # The published catalog sits in base-xsd/ but its entries are relative to base-xsd/niem/;
    # an xml:base (as OASIS catalogs allow) puts it right without editing the entries.
    shipped = NIBRS / "base-xsd" / "xml-catalog.xml"
    catalog = tmp_path / "catalog.xml"
    text = shipped.read_text(encoding="ascii").split("?>", 1)[1]
    text = text[text.index("<catalog") :].replace(
        "<catalog ", f'<catalog xml:base="{(NIBRS / "base-xsd" / "niem").as_uri()}/" ', 1
    )
    catalog.write_text(text, encoding="utf-8")
    wrapper = tmp_path / "wrapper.xsd"
    wrapper.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:nc="http://release.niem.gov/niem/niem-core/3.0/"'
        ' targetNamespace="urn:test" xmlns="urn:test" elementFormDefault="qualified">'
        '<xs:import namespace="http://release.niem.gov/niem/niem-core/3.0/"'
        ' schemaLocation="http://release.niem.gov/niem/niem-core/3.0/"/>'
        '<xs:element name="Who" type="nc:PersonType"/></xs:schema>',
        encoding="utf-8",
    )
    schema = load_schema(wrapper, root=tmp_path, catalog=catalog)
    nc = b'xmlns:nc="http://release.niem.gov/niem/niem-core/3.0/"'
    assert schema.validate(etree.fromstring(b'<Who xmlns="urn:test" ' + nc + b"/>")), schema.error_log
    assert not schema.validate(etree.fromstring(b'<Who xmlns="urn:test" ' + nc + b"><nc:Bogus/></Who>"))
    with pytest.raises(ConfigError, match="no-such-thing"):
        load_schema(
            _importing(tmp_path, "http://example.org/no-such-thing.xsd"), root=tmp_path, catalog=catalog
        )
    with pytest.raises(ConfigError, match="does not exist"):
        load_schema(wrapper, root=tmp_path, catalog=shipped)
    with pytest.raises(ConfigError, match="only files inside the pack"):
        load_schema(_importing(tmp_path, str(NIBRS.parent / "nibrs-pack" / "pack.yaml")), root=tmp_path)


def _importing(folder: Path, location: str) -> Path:
    p = folder / "bad.xsd"
    p.write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        f'<xs:import namespace="urn:x" schemaLocation="{location}"/>'
        '<xs:element name="a" type="xs:string"/><xs:element name="b" type="x:T" xmlns:x="urn:x"/>'
        "</xs:schema>",
        encoding="utf-8",
    )
    return p


def test_the_nibrs_pack_passes_its_mapping_test_with_data_only(pack: MappingPack) -> None:
    results = run_samples(pack)
    assert len(results) == 7 and all(r.ok for r in results), [f for r in results for f in r.failures]
    assert sorted(r.name for r in results if r.outcome and not r.outcome.blocked) == [
        "GroupAIncident.xml", "GroupAReplace.xml", "GroupBArrest-DUI.xml"]
    assert all(r.ok for r in run_received(pack))
    assert not list((FIXTURES / "nibrs-pack").rglob("*.py"))


def test_nibrs_offence_codes_are_translated_by_the_packs_table(pack: MappingPack) -> None:
    import csv

    table = {r["legacy"]: r["standard"] for r in csv.DictReader(
        (FIXTURES / "nibrs-pack" / "codes" / "offences.csv").read_text(encoding="utf-8").splitlines())}
    out = check_file((NIBRS / "iep-sample" / "nibrs_GroupAIncident_Sample.xml").read_bytes(), pack,
                     sender="NIBRS", source="GroupAIncident.xml")
    assert not out.blocked and out.standard is not None
    ns = {"c": "urn:cn:justice:case-exchange:1"}
    assert out.standard.xpath("c:Offences/c:Offence/c:Code/text()", namespaces=ns) == [table["13A"]]
    assert out.standard.xpath("c:Events/c:Event/c:Time/text()", namespaces=ns) == ["10:00:00"]
    refused = check_file((NIBRS / "iep-sample" / "nibrs_GroupBArrest_Sample.xml").read_bytes(), pack,
                         sender="NIBRS", source="GroupBArrest.xml")
    assert refused.blocked and "64A" not in table
    assert [p.rule for p in refused.problems] == ["mapping.code"] and "'64A'" in refused.problems[0].message
