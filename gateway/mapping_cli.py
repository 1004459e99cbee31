"""Agency IT tooling: test a mapping pack against its samples, scaffold a pack, explain one file.

    gateway mapping test police           # every sample, readable report
    gateway mapping test police --update  # (re)write expected outputs, then review them
    gateway mapping test police --update-received  # (re)write samples/received/*.expected.xml
    gateway mapping new tax-bureau        # scaffold mappings/tax-bureau/
    gateway validate FILE --agency POLICE [--config gateway.yaml]
    gateway mapping docs -o docs/pack-reference.md   # the pack.yaml reference

(`gateway` is the virtual environment's: `.venv/bin/gateway`, or `gateway` once `.venv` is active;
`python -m gateway.mapping_cli ...` with that environment's Python does the same.)

`mapping_app` is a typer sub-app so the main `gateway` command can mount it as `gateway mapping`;
`validate` is a plain command function it can register as `gateway validate`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer
import yaml
from lxml import etree
from rich.console import Console
from rich.markup import escape

from gateway.errors import GatewayError
from gateway.mapping import MappingPack, PackNotFound, load_pack, pack_for_agency
from gateway.packcheck import check_file, run_received, run_samples, split_records
from gateway.packspec import PackSpec, load_spec
from gateway.schemaload import SchemaNotCompiling

mapping_app = typer.Typer(
    help="Mapping packs: test them against their samples, scaffold new ones.", no_args_is_help=True
)
console = Console(highlight=False)


SCHEMA_FAILS = "旧系统 XSD 无法编译 / the legacy schema does not compile"


def _schema_fails(e: SchemaNotCompiling) -> None:
    """The schema's faults, each with its own file and line, under one plain headline."""
    console.print(f"[red]{SCHEMA_FAILS}[/red]")
    console.print(str(e), markup=False, soft_wrap=True)
    console.print("  see docs/connect-an-agency.md, \"When a vendor schema does not compile\"", markup=False)


def _pack(name: str, packs_dir: Path | None) -> MappingPack:
    try:
        return load_pack(name, (str(packs_dir),) if packs_dir else ())
    except SchemaNotCompiling as e:
        _schema_fails(e)
        raise typer.Exit(2) from None
    except GatewayError as e:
        console.print(str(e), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None


@mapping_app.command("test")
def mapping_test(
    pack: Annotated[str, typer.Argument(help="pack name (a folder under mappings/ or --dir)")],
    packs_dir: Annotated[
        Path | None, typer.Option("--dir", help="folder holding packs, searched first")
    ] = None,
    update: Annotated[
        bool, typer.Option(help="write the actual outputs as the expected ones (review with git diff)")
    ] = False,
    update_received: Annotated[
        bool, typer.Option(help="write what the agency would receive as samples/received/*.expected.xml "
                           "(after a deliberate change of the outbound mapping; review with git diff)")
    ] = False,
) -> None:
    """Both directions: samples the agency sends (legacy XSD -> mapping -> standard XSD -> rules -> outbound
    mapping) and standard records it receives (outbound mapping -> legacy XSD -> the exact bytes expected)."""
    p = _pack(pack, packs_dir)
    results = run_samples(p, update=update)
    received = run_received(p, update=update_received)
    if not results and not received:
        console.print(f"[yellow]pack {p.name} has no samples in {p.samples}/valid, /invalid or /received[/yellow]")
        raise typer.Exit(1)
    for r in results:
        kind = "valid  " if r.valid else "invalid"
        mark = "[green]PASS[/green]" if r.ok else "[red]FAIL[/red]"
        n = len(r.outcome.problems) if r.outcome else 0
        console.print(f"{mark} {kind} {r.name}  ({n} finding{'s' if n != 1 else ''})")
        for f in r.failures:
            console.print("     " + f.replace("\n", "\n     "), markup=False)
    for q in received:
        mark = "[green]PASS[/green]" if q.ok else "[red]FAIL[/red]"
        size = f"  ({len(q.output):,} bytes, {p.encoding})" if q.output is not None else ""
        console.print(f"{mark} received {q.name}{size}")
        if q.wrote:
            console.print(f"     wrote {q.wrote}", markup=False)
        for f in q.failures:
            console.print("     " + f.replace("\n", "\n     "), markup=False)
    bad = sum(not r.ok for r in results)
    bad_received = sum(not q.ok for q in received)
    console.print()
    if results:
        console.print(f"{len(results) - bad}/{len(results)} samples of pack {p.name} pass"
                      + (" (expected outputs written)" if update else ""))
    if received:
        wrote = sum(bool(q.wrote) for q in received)
        console.print(f"{len(received) - bad_received}/{len(received)} received samples of pack {p.name} pass"
                      + (f" ({wrote} expected file{'s' if wrote != 1 else ''} written)" if update_received else ""))
    else:
        console.print(f"[yellow]no received samples: what {p.name} receives is not tested "
                      f"(add standard records to {p.samples}/received)[/yellow]")
    raise typer.Exit(1 if bad or bad_received else 0)


_PACK_HEAD = """\
# {code}: describe the legacy system here (vendor, version, who to call).
# Every key, with its default: docs/pack-reference.md (`gateway mapping docs`).
"""
# examples for the keys the scaffold leaves commented out
_PACK_EXAMPLES: dict[str, object] = {"legacy_catalog": "schema/catalog.xml", "receive_schema": "legacy-receive.xsd",
                                     "batch": {"record": "/Export/Record", "inherit": ["/Export/Header"]}}


def _pack_yaml(code: str, agency: str) -> str:
    """pack.yaml listing every key the model knows, each with its meaning; the optional ones commented out."""
    values = {
        "name": code, "agency": agency, "description": "TODO one line on the legacy format",
        "standard": "1", "encoding": "UTF-8", "legacy_schema": "legacy.xsd", "inbound": "inbound.xsl",
        "outbound": "outbound.xsl",
    }
    out = [_PACK_HEAD.format(code=code).rstrip()]
    for key, f in PackSpec.model_fields.items():
        out.append("")
        out += textwrap.wrap(f.description or "", 104, initial_indent="# ", subsequent_indent="# ")
        if key in values:
            out.append(yaml.safe_dump({key: values[key]}, allow_unicode=True).rstrip())
        else:
            example = yaml.safe_dump({key: _PACK_EXAMPLES.get(key, f.default)}, allow_unicode=True, sort_keys=False)
            out += ["# " + line for line in example.rstrip().splitlines()]
    return "\n".join(out) + "\n"


_XSD = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- The legacy format as the {code} system writes it. Replace with the vendor's XSD. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:element name="Record">
    <xs:complexType><xs:sequence>
      <xs:element name="CaseNo" type="xs:token"/>
      <xs:element name="Stage" type="xs:token"/>
      <xs:element name="Action" type="xs:token"/>
      <xs:element name="From" type="xs:token"/>
      <xs:element name="To" type="xs:token" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence></xs:complexType>
  </xs:element>
  <xs:element name="Notice">
    <xs:complexType><xs:sequence>
      <xs:element name="MessageId" type="xs:token"/>
      <xs:element name="Problem" maxOccurs="unbounded" type="xs:string"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""
_IN = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- {code} -> Case Exchange standard v1. Codes: m:to-standard('TABLE', value) reads codes/TABLE.csv. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="m">
  <xsl:template match="/Record">
    <CaseRecord version="1.0">
      <CaseNumber><xsl:value-of select="CaseNo"/></CaseNumber>
      <Stage><xsl:value-of select="m:to-standard('stages', Stage)"/></Stage>
      <Action><xsl:value-of select="Action"/></Action>
      <Sender><xsl:value-of select="From"/></Sender>
      <xsl:for-each select="To"><Receiver><xsl:value-of select="."/></Receiver></xsl:for-each>
    </CaseRecord>
  </xsl:template>
</xsl:stylesheet>
"""
_OUT = """\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Case Exchange standard v1 -> {code}; DefectNotice -> the system's notice format. -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:c="urn:cn:justice:case-exchange:1" xmlns:m="urn:cn:justice:case-exchange:mapping"
    exclude-result-prefixes="c m">
  <xsl:template match="/c:CaseRecord">
    <Record>
      <CaseNo><xsl:value-of select="c:CaseNumber"/></CaseNo>
      <Stage><xsl:value-of select="m:to-legacy('stages', c:Stage)"/></Stage>
      <Action><xsl:value-of select="c:Action"/></Action>
      <From><xsl:value-of select="c:Sender"/></From>
      <xsl:for-each select="c:Receiver"><To><xsl:value-of select="."/></To></xsl:for-each>
    </Record>
  </xsl:template>
  <xsl:template match="/c:DefectNotice">
    <Notice>
      <MessageId><xsl:value-of select="c:OriginalMessageId"/></MessageId>
      <xsl:for-each select="c:Defect">
        <Problem><xsl:value-of
          select="concat(c:Rule, ' ', c:MessageZh, ' / ', c:MessageEn, ' @ ', c:Location)"/></Problem>
      </xsl:for-each>
    </Notice>
  </xsl:template>
</xsl:stylesheet>
"""
_STAGES = (
    "legacy,standard\nZC,investigation\nPB,arrest-review\nQS,prosecution-review\nSP,trial\nZX,execution\n"
)
_SAMPLE = """\
<?xml version="1.0" encoding="UTF-8"?>
<Record><CaseNo>A2026000001</CaseNo><Stage>SP</Stage><Action>accept-case</Action><From>{agency}</From></Record>
"""
# a file the agency's system might write that must be refused: no case number (the legacy XSD requires one)
_INVALID = """\
<?xml version="1.0" encoding="UTF-8"?>
<Record><Stage>SP</Stage><Action>accept-case</Action><From>{agency}</From></Record>
"""
# a defect notice the agency receives when the gateway refuses a record it sent: the outbound mapping's
# DefectNotice template renders it; `new` writes the file the system is given beside it
_NOTICE = """\
<?xml version="1.0" encoding="UTF-8"?>
<DefectNotice xmlns="urn:cn:justice:case-exchange:1" version="1.0">
  <OriginalMessageId>sample:no-case-number.xml</OriginalMessageId>
  <CaseNumber>A2026000001</CaseNumber>
  <Stage>trial</Stage>
  <Action>accept-case</Action>
  <Receiver>{agency}</Receiver>
  <IssuedAt>2026-01-01T00:00:00+00:00</IssuedAt>
  <Defect>
    <Rule>legacy.schema</Rule>
    <Severity>block</Severity>
    <MessageZh>文件缺少案件编号 CaseNo</MessageZh>
    <MessageEn>the file has no case number (CaseNo)</MessageEn>
    <Location>/Record</Location>
    <Line>2</Line>
  </Defect>
</DefectNotice>
"""
# a standard record the agency receives; `new` writes what the outbound mapping makes of it beside it
_RECEIVED = """\
<?xml version="1.0" encoding="UTF-8"?>
<CaseRecord xmlns="urn:cn:justice:case-exchange:1" version="1.0">
  <CaseNumber>A2026000001</CaseNumber>
  <Stage>trial</Stage>
  <Action>judgment</Action>
  <Sender>COURT</Sender>
  <Receiver>{agency}</Receiver>
</CaseRecord>
"""


@mapping_app.command("new")
def mapping_new(
    code: Annotated[str, typer.Argument(help="pack name, e.g. the agency's code in lower case")],
    packs_dir: Annotated[Path, typer.Option("--dir", help="where packs live")] = Path("mappings"),
    agency: Annotated[
        str, typer.Option(help="agency code its records are sent as (default: CODE upper-cased)")
    ] = "",
) -> None:
    """Scaffold a pack: pack.yaml, legacy XSD, both XSLTs, a code table, samples it sends (valid and invalid) and
    it receives (a record and a defect notice)."""
    root = packs_dir / code
    if root.exists():
        console.print(f"[red]{root} already exists; not touching it[/red]")
        raise typer.Exit(2)
    fields = {"code": code, "agency": agency or code.upper()}
    files = {
        "pack.yaml": _pack_yaml(code, fields["agency"]).replace("{", "{{").replace("}", "}}"),
        "legacy.xsd": _XSD,
        "inbound.xsl": _IN,
        "outbound.xsl": _OUT,
        "codes/stages.csv": _STAGES,
        "samples/valid/accept-case.xml": _SAMPLE,
        "samples/invalid/no-case-number.xml": _INVALID,
        "samples/received/judgment.xml": _RECEIVED,
        "samples/received/defect-notice.xml": _NOTICE,
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.format(**fields), encoding="utf-8")
    # the expected bytes come from the pack's own outbound mapping, as live delivery writes them
    run_received(MappingPack(root, load_spec(root / "pack.yaml")), update=True)
    console.print(
        f"created {root}; next: edit legacy.xsd and the XSLTs, add samples, then\n"
        f"  gateway mapping test {code} --dir {packs_dir} --update",
        markup=False,
    )


def _pack_for_agency(agency: str, config: Path | None, packs_dir: Path | None, name: str) -> MappingPack:
    """The pack named, else the agency's inbound pack in the gateway config, else the pack whose `agency:` it is."""
    search: tuple[str, ...] = (str(packs_dir),) if packs_dir else ()
    if config is not None:
        from gateway.config import load_config

        cfg = load_config(config)
        search = (*search, *cfg.gateway.mapping_dirs)
        if not name:
            try:
                a = cfg.agency(agency)
            except KeyError:
                raise PackNotFound(f"{config} defines no agency {agency}") from None
            name = a.inbound[0].mapping if a.inbound else (a.outbound.mapping if a.outbound else "")
    return load_pack(name, search) if name else pack_for_agency(agency, search)


def validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the file a legacy system wrote")],
    agency: Annotated[str, typer.Option("--agency", help="agency code of the sender, e.g. POLICE")],
    config: Annotated[
        Path | None, typer.Option(help="gateway config naming the agency's mapping pack")
    ] = None,
    packs_dir: Annotated[
        Path | None, typer.Option("--dir", help="folder holding packs, searched first")
    ] = None,
    pack_name: Annotated[
        str, typer.Option("--pack", help="the pack to use (default: the one whose agency: is --agency)")
    ] = "",
    show_standard: Annotated[
        bool, typer.Option(help="print the record in the standard form, with line numbers")
    ] = False,
) -> None:
    """Explain every problem in one file at once: encoding, legacy schema, mapping, standard schema, rules.

    Each finding names the file's own element or attribute and line it came from, with the
    record's standard form (what the gateway stores; --show-standard prints it with line numbers)
    as secondary detail. A finding whose source the mapping does not show stays at /c:... there.
    """
    try:
        pack = _pack_for_agency(agency, config, packs_dir, pack_name)
    except SchemaNotCompiling as e:
        _schema_fails(e)
        raise typer.Exit(2) from None
    except PackNotFound as e:
        console.print(f"[red]没有机构 {escape(agency)} 的映射包 / no mapping pack for agency {escape(agency)}[/red]")
        console.print(f"  {e}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except GatewayError as e:
        console.print(f"[red]机构 {escape(agency)} 的映射包无法加载 / the mapping pack for agency {escape(agency)} "
                      "cannot be loaded[/red]")
        console.print(f"  {e}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    parts = split_records(pack, file.read_bytes(), str(file))
    blocked = [_explain(body, pack, agency, f"{file}" + (f" record {n} of {len(parts)}" if len(parts) > 1 else ""),
                        show_standard) for n, body in enumerate(parts, 1)]
    if any(blocked):
        raise typer.Exit(1)


def _explain(body: bytes, pack: MappingPack, agency: str, what: str, show_standard: bool) -> bool:
    """Print one record's findings and verdict; True when the gateway would not forward it."""
    out = check_file(body, pack, sender=agency, source=what)
    console.print(f"{what} (agency {agency}, pack {pack.name})")
    for p in out.problems:
        colour = "red" if p.severity == "block" else "yellow"
        where = (f" at {p.location}" if p.location else "") + (f", line {p.line}" if p.line else "")
        console.print(f"  [{colour}]{p.severity:5}[/{colour}] {escape(f'[{p.rule}]')}{escape(where)}")
        if p.message_zh:
            console.print(f"        {p.message_zh}", markup=False)
        console.print(f"        {p.message}", markup=False)
        if p.hint_zh or p.hint_en:
            console.print(f"        处理建议 / what to do: {p.hint_zh} / {p.hint_en}", markup=False)
        if p.standard_location and p.standard_location != p.location:
            line = f", line {p.standard_line}" if p.standard_line else ""
            console.print(f"        标准 / standard: {p.standard_location}{line}", markup=False)
    if show_standard and out.standard is not None:
        text = etree.tostring(out.standard, encoding="unicode", pretty_print=True)
        for n, line in enumerate(text.splitlines(), 1):
            console.print(f"{n:5}  {line}", markup=False)
    if out.blocked:
        console.print(
            "[red]BLOCKED[/red]: the gateway would not forward this file; the sender gets a defect notice"
        )
        return True
    console.print(
        "[green]ACCEPTED[/green]" + (" with warnings the receiver will see" if out.problems else "")
    )
    return False


@mapping_app.command("docs")
def mapping_docs(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to this file")] = None,
) -> None:
    """Print the pack.yaml reference (Markdown), generated from the model that reads pack.yaml."""
    from gateway.docs import publish
    from gateway.packdocs import render

    problem = publish(render(), output)
    if problem:
        console.print(problem, style="red", markup=False)
        raise typer.Exit(2)
    if output is not None:
        console.print(f"wrote {output}", markup=False)


def main() -> None:
    app = typer.Typer(no_args_is_help=True, help="Case exchange gateway: mapping packs and file validation.")
    app.add_typer(mapping_app, name="mapping")
    app.command("validate")(validate)
    # `python -m gateway.mapping_cli test PACK` and `... mapping test PACK` both work
    for cmd in mapping_app.registered_commands:
        app.registered_commands.append(cmd)
    app()


if __name__ == "__main__":
    main()
