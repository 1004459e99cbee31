"""The four agency packs: every sample against its expected outputs; the tooling around them."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree
from typer.testing import CliRunner

from gateway.errors import ConfigError, InputRejected
from gateway.mapping import MappingPack, load_pack
from gateway.mapping_cli import mapping_app, validate
from gateway.model import InboundRecord, sha256_hex
from gateway.packcheck import check_file, expected_for, received_samples, run_received, run_samples
from gateway.pipeline import Context, MapForDestinations, MapToStandard, Parse
from gateway.xmlsafe import DEFAULT_MAX_BYTES

PACKS = ("police", "procuratorate", "court", "justice")


@pytest.mark.parametrize("name", PACKS)
def test_every_sample_matches_its_expected_outputs(name: str) -> None:
    results = run_samples(load_pack(name))
    assert len([r for r in results if r.valid]) >= 1 and len([r for r in results if not r.valid]) >= 2
    failures = {r.name: r.failures for r in results if not r.ok}
    assert not failures


def test_invalid_sample_gives_exactly_its_defect_list() -> None:
    pack = load_pack("police")
    body = (pack.samples / "invalid" / "evidence-and-id-defects.xml").read_bytes()
    out = check_file(body, pack, sender="POLICE", source="x.xml")
    assert out.blocked
    assert out.defect_lines() == [
        "ID-01 block /AJXX/RY/SFZH",
        "EV-DD-02 block /AJXX/ZJ[1]",
        "EV-DD-05 block /AJXX",
    ]
    assert [p.standard_location for p in out.problems] == [
        "/c:CaseRecord/c:Persons/c:Person/c:ResidentId", "/c:CaseRecord/c:Evidence/c:Item[1]", "/c:CaseRecord"]
    notice = etree.fromstring(out.notice or b"")
    assert notice.tag == "THTZ" and [w.findtext("GZBH") for w in notice.iter("WT")] == [
        "ID-01",
        "EV-DD-02",
        "EV-DD-05",
    ]


def test_a_file_whose_declared_encoding_lies_is_refused_clearly() -> None:
    pack = load_pack("police")
    body = (pack.samples / "invalid" / "encoding-lie.xml").read_bytes()
    out = check_file(body, pack, sender="POLICE", source="lie.xml")
    [p] = out.problems
    assert p.rule == "xml.encoding-mismatch" and p.line
    assert "says 'utf-8'" in p.message and "refused rather than mangled" in p.message


def test_a_code_without_translation_names_the_table() -> None:
    pack = load_pack("police")
    tree = etree.fromstring((pack.samples / "invalid" / "unknown-offence-code.xml").read_bytes())
    with pytest.raises(InputRejected, match=r"'999999'.*offences \(police/codes/offences.csv\)"):
        pack.to_standard(tree)


def test_mapping_cli_reports_and_fails_on_a_broken_expectation(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(mapping_app, ["new", "tax", "--dir", str(tmp_path)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(mapping_app, ["test", "tax", "--dir", str(tmp_path), "--update"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(mapping_app, ["test", "tax", "--dir", str(tmp_path)])
    assert res.exit_code == 0 and "2/2 samples of pack tax pass" in res.output, res.output
    expected = tmp_path / "tax" / "samples" / "expected" / "accept-case.standard.xml"
    expected.write_text(
        expected.read_text(encoding="utf-8").replace("accept-case", "ruling"), encoding="utf-8"
    )
    res = runner.invoke(mapping_app, ["test", "tax", "--dir", str(tmp_path)])
    assert res.exit_code == 1 and "FAIL" in res.output and "standard record differs" in res.output
    assert "-  <Action>ruling</Action>" in res.output and "+  <Action>accept-case</Action>" in res.output


def test_validate_explains_every_problem_of_one_file() -> None:
    import typer

    app = typer.Typer()
    app.command()(validate)
    pack = load_pack("police")
    res = CliRunner().invoke(
        app, [str(pack.samples / "invalid" / "evidence-and-id-defects.xml"), "--agency", "POLICE"]
    )
    assert res.exit_code == 1
    for text in ("ID-01", "EV-DD-02", "EV-DD-05", "校验位", "line", "BLOCKED"):
        assert text in res.output
    res = CliRunner().invoke(
        app, [str(pack.samples / "valid" / "01-request-arrest-approval.xml"), "--agency", "POLICE"]
    )
    assert res.exit_code == 0 and "ACCEPTED" in res.output


def _write_pack(folder: Path, name: str, files: dict[str, str]) -> MappingPack:
    (folder / name).mkdir()
    for rel, text in files.items():
        (folder / name / rel).write_text(text, encoding="utf-8")
    return load_pack(name, (str(folder),))


def test_pack_without_a_table_it_uses_is_refused_when_run(tmp_path: Path) -> None:
    xsl = (
        '<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" '
        'xmlns:m="urn:cn:justice:case-exchange:mapping"><xsl:template match="/"><r>'
        "<xsl:value-of select=\"m:to-standard('nope', 'x')\"/></r></xsl:template></xsl:stylesheet>"
    )
    pack = _write_pack(tmp_path, "p", {"pack.yaml": "name: p\ninbound: in.xsl\n", "in.xsl": xsl})
    with pytest.raises(InputRejected, match="code table 'nope'"):
        pack.to_standard(etree.fromstring(b"<a/>"))


def test_legacy_schema_may_not_reach_outside_the_pack(tmp_path: Path) -> None:
    xsd = (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">'
        '<xs:import namespace="urn:x" schemaLocation="http://example.invalid/x.xsd"/>'
        '<xs:include schemaLocation="../../../etc/other.xsd"/></xs:schema>'
    )
    with pytest.raises(ConfigError, match="example.invalid"):
        _write_pack(tmp_path, "q", {"pack.yaml": "name: q\nlegacy_schema: s.xsd\n", "s.xsd": xsd})


# what each agency receives: standard records through its outbound mapping, byte for byte

RECEIVERS = {"police": "POLICE", "procuratorate": "PROC", "court": "COURT", "justice": "JUSTICE"}


@pytest.mark.parametrize("name", [*PACKS, "identity"])
def test_every_pack_tests_what_its_agency_receives(name: str) -> None:
    pack = load_pack(name)
    results = run_received(pack)
    assert results and not {r.name: r.failures for r in results if not r.ok}
    for r in results:
        expected = (pack.samples / "received" / r.name.replace(".xml", ".expected.xml")).read_bytes()
        assert r.output == expected
        assert expected.startswith(f"<?xml version='1.0' encoding='{pack.encoding}'?>".encode())
        expected.decode(pack.encoding)  # every byte is text in the encoding the system reads


def test_received_samples_are_the_bytes_live_delivery_writes() -> None:
    """A standard record arriving on a channel is mapped out for each destination by MapForDestinations."""
    identity = load_pack("identity")
    for name, agency in RECEIVERS.items():
        pack = load_pack(name)
        for sample in received_samples(pack):
            body = sample.read_bytes()
            record = InboundRecord(channel="std", sender="COURT", body=body)
            ctx = Context(record, "m1", sha256_hex(body), sample.name, identity, destinations=[agency])
            for step in (Parse(DEFAULT_MAX_BYTES), MapToStandard(), MapForDestinations({agency: pack}.__getitem__)):
                step(ctx)
            assert ctx.outbound[agency] == expected_for(sample).read_bytes(), sample


def test_police_receives_gb18030_with_its_chinese_intact() -> None:
    folder = load_pack("police").samples / "received"
    judgment = (folder / "04-judgment.expected.xml").read_bytes()
    assert judgment.startswith(b"<?xml version='1.0' encoding='GB18030'?>")
    text = judgment.decode("gb18030")
    assert "王建国" in text and "王建国".encode("gb18030") in judgment and "王建国".encode() not in judgment
    notice = etree.fromstring((folder / "defect-notice.expected.xml").read_bytes())
    assert notice.tag == "THTZ" and [w.findtext("GZBH") for w in notice.iter("WT")] == ["ID-01", "EV-DD-02", "EV-DD-05"]
