"""docs/connect-an-agency.md as a newcomer follows it: its commands run as written, the scaffold is what
it lists, and `gateway mapping test` checks the bytes the agency's system would really be given."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from gateway.errors import ConfigError
from gateway.mapping import MappingPack, load_pack
from gateway.mapping_cli import mapping_app
from gateway.packspec import load_spec

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "connect-an-agency.md"
SHIPPED = ["police", "procuratorate", "court", "justice"]


def _mapping(*args: str) -> Result:
    return CliRunner().invoke(mapping_app, list(args))


def _scaffold(tmp: Path, encoding: str = "UTF-8") -> Path:
    assert _mapping("new", "tax-bureau", "--dir", str(tmp), "--agency", "TAX").exit_code == 0
    root = tmp / "tax-bureau"
    if encoding != "UTF-8":
        spec = root / "pack.yaml"
        spec.write_text(spec.read_text(encoding="utf-8").replace("encoding: UTF-8", f"encoding: {encoding}"),
                        encoding="utf-8")
    return root


def _load(root: Path) -> MappingPack:
    return MappingPack(root, load_spec(root / "pack.yaml"))


def test_the_guides_commands_run_as_written_after_the_readme_setup(tmp_path: Path) -> None:
    """Every ```sh block, in order, in a fresh folder holding the environment as `.venv` (as after `make venv`)."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    script = "".join(blocks)
    assert "python -m gateway" not in script and ". .venv/bin/activate" in script
    assert "gateway mapping new" in script and "gateway validate" in script
    activate = Path(sys.prefix) / "bin" / "activate"
    assert activate.is_file(), "the tests run in the virtual environment the README's setup creates"
    (tmp_path / ".venv").symlink_to(sys.prefix)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8", "COLUMNS": "200"}
    run = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2/2 samples of pack tax-bureau pass" in run.stdout and "ACCEPTED" in run.stdout
    assert (tmp_path / "mappings" / "tax-bureau" / "samples" / "expected" / "accept-case.out.xml").is_file()


def test_the_scaffold_holds_what_the_guide_lists(tmp_path: Path) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    listing = guide.split("This creates:", 1)[1].split("```", 2)[1]
    listed = [m.group(1) for m in re.finditer(r"^  (\S+)", listing, re.M)]
    listed += [f"samples/{kind}/{name}" for kind, name in re.findall(r"samples/(\w+)/ .*?\((\S+\.xml)", listing)]
    listed += ["samples/received/" + n for n in re.findall(r"\((\S+\.xml)\) and a defect", listing)]
    listed += ["samples/received/" + n for n in re.findall(r"^\s+notice \((\S+\.xml)\)", listing, re.M)]
    assert {"samples/valid/", "samples/invalid/", "samples/invalid/no-case-number.xml",
            "samples/received/defect-notice.xml"} <= set(listed), listed
    root = _scaffold(tmp_path)
    for rel in listed:
        assert (root / rel).exists(), rel
    assert any((root / "samples" / "invalid").glob("*.xml")), "an empty invalid/ tests nothing"
    assert (root / "samples" / "received" / "defect-notice.expected.xml").is_file()  # the notice as rendered


def test_the_pack_test_compares_the_exact_bytes_delivery_writes(tmp_path: Path) -> None:
    for name in SHIPPED:
        pack = load_pack(name)
        head = f"<?xml version='1.0' encoding='{pack.encoding}'?>".encode()
        written = sorted(Path(pack.samples, "expected").glob("*.out.xml")) + sorted(
            Path(pack.samples, "expected").glob("*.notice.xml"))
        assert written and all(f.read_bytes().startswith(head) for f in written), name
    root = _scaffold(tmp_path, "UTF-16")
    assert _mapping("test", "tax-bureau", "--dir", str(tmp_path), "--update", "--update-received").exit_code == 0
    out = root / "samples" / "expected" / "accept-case.out.xml"
    data = out.read_bytes()
    assert data.startswith(b"\xff\xfe<\x00?\x00x\x00m\x00l\x00") and "encoding='UTF-16'" in data.decode("utf-16")
    assert _mapping("test", "tax-bureau", "--dir", str(tmp_path)).exit_code == 0
    out.write_bytes(data.decode("utf-16").encode("utf-8"))  # the same XML, as the test used to keep it
    res = _mapping("test", "tax-bureau", "--dir", str(tmp_path))
    assert res.exit_code == 1 and "expected/accept-case.out.xml" in res.output and "first difference at byte 0" \
        in res.output, res.output


def test_a_pack_names_a_separate_schema_for_what_the_agency_receives(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    legacy = (root / "legacy.xsd").read_text(encoding="utf-8")
    # the vendor's import schema knows records but not the notice element the outbound mapping writes
    receive = re.sub(r'  <xs:element name="Notice">.*?</xs:element>\n(?=</xs:schema>)', "", legacy, flags=re.S)
    assert "Notice" not in receive
    (root / "receive.xsd").write_text(receive, encoding="utf-8")
    assert _mapping("test", "tax-bureau", "--dir", str(tmp_path), "--update").exit_code == 0
    spec = root / "pack.yaml"
    spec.write_text(spec.read_text(encoding="utf-8") + "receive_schema: receive.xsd\n", encoding="utf-8")
    assert _load(root).spec.receive_schema == "receive.xsd"
    load_pack.cache_clear()  # the pack changed since the command above loaded it
    res = _mapping("test", "tax-bureau", "--dir", str(tmp_path))
    assert res.exit_code == 1
    out = " ".join(res.output.split())
    assert "receive_schema refuses" in out and "no-case-number.xml" in out and "defect-notice.expected.xml" in out
    assert "FAIL valid" not in out  # what the agency sends is still judged by legacy_schema


def test_an_outbound_xsl_output_encoding_other_than_the_packs_is_refused(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    xsl = root / "outbound.xsl"
    text = xsl.read_text(encoding="utf-8")
    xsl.write_text(text.replace('exclude-result-prefixes="c m">', 'exclude-result-prefixes="c m">\n'
                                '  <xsl:output method="xml" encoding="GB18030"/>'), encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        _load(root)
    assert "outbound.xsl" in str(e.value) and 'encoding="GB18030"' in str(e.value) and "UTF-8" in str(e.value)
    xsl.write_text(text.replace('exclude-result-prefixes="c m">', 'exclude-result-prefixes="c m">\n'
                                '  <xsl:output method="xml" encoding="utf-8" indent="yes"/>'), encoding="utf-8")
    assert _load(root).encoding == "UTF-8"


def test_two_templates_matching_the_same_root_are_refused_naming_both(tmp_path: Path) -> None:
    root = _scaffold(tmp_path)
    xsl = root / "outbound.xsl"
    text = xsl.read_text(encoding="utf-8")
    copy = '  <xsl:template match="c:CaseRecord"><Record/></xsl:template>\n</xsl:stylesheet>'
    xsl.write_text(text.replace("</xsl:stylesheet>", copy), encoding="utf-8")
    lines = xsl.read_text(encoding="utf-8").splitlines()
    first = next(i for i, x in enumerate(lines, 1) if 'match="/c:CaseRecord"' in x)
    second = next(i for i, x in enumerate(lines, 1) if 'match="c:CaseRecord"' in x)
    with pytest.raises(ConfigError) as e:
        _load(root)
    msg = str(e.value)
    assert "outbound.xsl" in msg and f"line {first}" in msg and f"line {second}" in msg and "CaseRecord" in msg
    res = _mapping("test", "tax-bureau", "--dir", str(tmp_path))
    assert res.exit_code == 2 and "Traceback" not in res.output


def test_the_shipped_packs_load_without_shadowed_templates() -> None:
    for name in SHIPPED:
        assert load_pack(name).outbound is not None
