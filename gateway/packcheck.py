"""Checking files and mapping packs offline, with the very steps the running gateway uses.

`check_file` runs one legacy file through Parse -> MapToStandard -> ValidateStandard -> Rules
(the pipeline's own step classes, so a file that passes here passes there) and renders either
the record in the pack's outbound format or the defect notice the sender would get.
`run_samples` does that for every sample of a pack and compares with the expected outputs; what
the agency's system would be given (the record in its format, or the defect notice) is compared
byte for byte, as delivery writes it.
`run_received` tests the other direction: standard records the agency receives, mapped out by
`MappingPack.from_standard` (the call live delivery makes) and compared byte for byte with what
the agency's system must be given, declaration, encoding and byte order mark included.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from gateway import notice, standard, xmlsafe
from gateway.errors import GatewayError, InputRejected
from gateway.mapping import MappingPack, Problem
from gateway.model import Attachment, InboundRecord, sha256_hex
from gateway.pipeline import Context, MapToStandard, Parse, Rules, Step, ValidateStandard, judge
from gateway.xmlsafe import DEFAULT_MAX_BYTES

# Fixed identity and time for notices rendered from samples, so expected outputs are stable.
SAMPLE_TIME = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass
class Outcome:
    problems: list[Problem]
    blocked: bool
    standard: etree._Element | None = None
    legacy_out: bytes | None = None  # the standard record written back in the pack's format
    notice: bytes | None = None  # the defect notice in the pack's format, when blocked
    destinations: list[str] = field(default_factory=list)  # when judged with the node's Route step
    outbound: dict[str, bytes] = field(default_factory=dict)  # what each destination would be given

    def defect_lines(self) -> list[str]:
        return [f"{p.rule} {p.severity} {p.location}".rstrip() for p in self.problems]


def offline_steps(versions: Sequence[str] = ("1",)) -> list[Step]:
    """The steps a file is judged by without a node: no deployment's rule adaptations, no routes."""
    return [Parse(DEFAULT_MAX_BYTES), MapToStandard(), ValidateStandard(versions), Rules()]


def check_file(
    body: bytes,
    pack: MappingPack,
    *,
    sender: str,
    source: str,
    message_id: str = "",
    attachments: tuple[Attachment, ...] = (),
    versions: tuple[str, ...] = ("1",),
    channel: str = "",
    steps: Sequence[Step] | None = None,
    render: bool = True,
) -> Outcome:
    """Judge one file as the gateway would. A running node passes its own `steps` (adapted rules,
    routes, outbound mappings) and `channel`; `render` adds the notice or the pack's own rendering."""
    record = InboundRecord(
        channel=channel or pack.name, sender=sender, body=body, file_name=source, attachments=attachments
    )
    ctx = Context(record, message_id or f"sample:{Path(source).name}", sha256_hex(body), source, pack)
    blocked = judge(ctx, offline_steps(versions) if steps is None else steps)
    out = Outcome(ctx.problems, blocked, ctx.canonical)
    if not blocked:
        out.destinations, out.outbound = ctx.destinations, ctx.outbound
    if not render:
        return out
    try:
        if blocked:
            doc = notice.defect_notice(
                ctx.message_id, sender, ctx.problems, envelope=ctx.envelope, issued_at=SAMPLE_TIME
            )
            out.notice = pack.from_standard(doc)
        elif ctx.canonical is not None:
            out.legacy_out = pack.from_standard(ctx.canonical)
    except (GatewayError, etree.XSLTApplyError) as e:
        out.problems.append(Problem("mapping.outbound", f"the {pack.name} outbound mapping failed: {e}"))
        out.blocked = True
    return out


def normalized(data: bytes | etree._Element) -> str:
    """Pretty XML text without insignificant whitespace, for comparing and readable diffs."""
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    tree = etree.fromstring(etree.tostring(data) if isinstance(data, etree._Element) else data, parser)
    return etree.tostring(tree, pretty_print=True, encoding="unicode")


@dataclass
class SampleResult:
    name: str
    valid: bool  # from samples/valid (must pass) or samples/invalid (must be blocked)
    failures: list[str] = field(default_factory=list)
    outcome: Outcome | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


def _compare(what: str, expected_path: Path, actual: str, update: bool) -> list[str]:
    if update:
        expected_path.write_text(actual, encoding="utf-8")
        return []
    if not expected_path.is_file():
        return [
            f"{what}: no expected file {expected_path.name} (run with --update to create it, then review it)"
        ]
    expected = expected_path.read_text(encoding="utf-8")
    if expected == actual:
        return []
    diff = difflib.unified_diff(
        expected.splitlines(),
        actual.splitlines(),
        f"expected {expected_path.name}",
        "actual",
        lineterm="",
        n=1,
    )
    return [f"{what} differs:\n" + "\n".join(diff)]


def _samples(pack: MappingPack) -> Iterator[tuple[Path, bool]]:
    for kind, valid in (("valid", True), ("invalid", False)):
        for f in sorted((pack.samples / kind).glob("*.xml")):
            yield f, valid


def run_samples(pack: MappingPack, *, update: bool = False) -> list[SampleResult]:
    """Every sample: legacy XSD -> inbound -> standard XSD -> rules -> outbound, against expected/."""
    expected = pack.samples / "expected"
    expected.mkdir(exist_ok=True) if update else None
    results = []
    for path, valid in _samples(pack):
        parts = split_records(pack, path.read_bytes(), str(path))
        blocked = []
        for n, body in enumerate(parts, 1):
            stem, name = (f"{path.stem}.{n}", f"{path.name} record {n}") if len(parts) > 1 else (path.stem, path.name)
            r = _check_sample(pack, path, body, stem, name, valid, expected, update)
            blocked.append(bool(r.outcome and r.outcome.blocked))
            results.append(r)
        if not valid and not any(blocked):
            results[-1].failures.append("an invalid sample was accepted")
    return results


def split_records(pack: MappingPack, body: bytes, source: str) -> list[bytes]:
    """A file as the gateway takes it in: split into its records when the pack has `batch:` (a file
    that is not XML, or has no record, stays whole, to be refused with the reason)."""
    if pack.batch is None:
        return [body]
    try:
        return pack.batch.split(xmlsafe.parse(body, source=source)) or [body]
    except InputRejected:
        return [body]


def _check_sample(pack: MappingPack, path: Path, body: bytes, stem: str, name: str, valid: bool,
                  expected: Path, update: bool) -> SampleResult:
    """One record of a sample against its expected outputs; a valid sample's records must all pass."""
    out = check_file(body, pack, sender=pack.agency, source=f"{path.parent.name}/{path.name}")
    r = SampleResult(name, valid, outcome=out)
    if valid and out.blocked:
        r.failures.append(
            "a valid sample was blocked:\n" + "\n".join("  " + p.explain() for p in out.problems)
        )
    r.failures += _compare(
        "defect list",
        expected / f"{stem}.defects.txt",
        "".join(line + "\n" for line in out.defect_lines()),
        update,
    )
    if out.standard is not None and not out.blocked:
        r.failures += _compare(
            "standard record", expected / f"{stem}.standard.xml", normalized(out.standard), update
        )
    # what the agency's system is given, byte for byte, as live delivery writes it
    for written, suffix in ((out.legacy_out, "out"), (out.notice, "notice")):
        if written is not None:
            r.failures += _legacy_valid(pack, written)
            r.failures += _delivered(pack, expected / f"{stem}.{suffix}.xml", written, update)
    return r


def _legacy_valid(pack: MappingPack, data: bytes) -> list[str]:
    """What the pack writes must itself follow the legacy schema the agency's system reads."""
    problems = pack.check_received(etree.fromstring(data))
    which = "receive_schema" if pack.spec.receive_schema else "legacy schema"
    return [
        f"the outbound mapping wrote a file its own {which} refuses: {p.explain()}" for p in problems
    ]


def _delivered(pack: MappingPack, expected: Path, actual: bytes, update: bool) -> list[str]:
    """Compare with (or, updating, write) the exact bytes in samples/expected/."""
    if update:
        expected.write_bytes(actual)
        return []
    return _compare_bytes(pack, expected, actual, f"expected/{expected.name}", "--update")


RECEIVED = "received"
EXPECTED_SUFFIX = ".expected.xml"
BOM = b"\xef\xbb\xbf"


@dataclass
class ReceivedResult:
    """One standard record of `samples/received/` and what the agency's system would be given for it."""

    name: str
    failures: list[str] = field(default_factory=list)
    output: bytes | None = None
    wrote: str = ""  # the expected file (re)written by an update, relative to the samples folder

    @property
    def ok(self) -> bool:
        return not self.failures


def received_samples(pack: MappingPack) -> list[Path]:
    folder = pack.samples / RECEIVED
    return sorted(f for f in folder.glob("*.xml") if not f.name.endswith(EXPECTED_SUFFIX))


def expected_for(sample: Path) -> Path:
    return sample.with_name(sample.stem + EXPECTED_SUFFIX)


def run_received(pack: MappingPack, *, update: bool = False) -> list[ReceivedResult]:
    """Every received sample: standard XSD -> outbound mapping -> legacy XSD, bytes against NAME.expected.xml.

    With `update`, a missing or different expected file is (re)written with the output and named in
    `wrote`; it is still checked against the legacy schema, so an update never hides a refusal.
    """
    results = []
    for path in received_samples(pack):
        rel = f"{RECEIVED}/{path.name}"
        r = ReceivedResult(path.name)
        results.append(r)
        try:
            tree = xmlsafe.parse(path.read_bytes(), source=rel)
        except InputRejected as e:
            r.failures.append(f"{rel}: {e.message}" + (f" (line {e.line})" if e.line else ""))
            continue
        r.failures += _standard_valid(rel, tree)
        try:
            r.output = pack.from_standard(tree)
        except (GatewayError, etree.XSLTApplyError) as e:
            why = e.message if isinstance(e, InputRejected) else str(e)
            r.failures.append(f"{rel}: the {pack.name} outbound mapping failed: {why}")
            continue
        expected = expected_for(path)
        r.failures += _received_legacy_valid(pack, rel, r.output)
        if update:
            if not expected.is_file() or expected.read_bytes() != r.output:
                expected.write_bytes(r.output)
                r.wrote = f"{RECEIVED}/{expected.name}"
        else:
            r.failures += _compare_bytes(pack, expected, r.output, f"{RECEIVED}/{expected.name}",
                                         "--update-received")
    return results


def _standard_valid(rel: str, tree: etree._Element) -> list[str]:
    """Only valid standard records are ever mapped out, so a received sample must be one."""
    try:
        xsd = standard.schema(standard.major_version(tree))
    except InputRejected as e:
        return [f"{rel}: {e.message}"]
    if xsd.validate(tree):
        return []
    return [f"{rel}, line {e.line}: not a valid Case Exchange record: {e.message}" for e in xsd.error_log]


def _received_legacy_valid(pack: MappingPack, rel: str, output: bytes) -> list[str]:
    """The output must follow the legacy schema the agency's system reads; lines count in the output."""
    problems = pack.check_received(etree.fromstring(output, etree.XMLParser(resolve_entities=False, no_network=True)))
    name = Path(rel).stem + EXPECTED_SUFFIX
    prefix = f"the file does not follow the {pack.name} format: "
    return [
        f"{RECEIVED}/{name}" + (f", line {p.line}" if p.line else "")
        + f": what the outbound mapping wrote for {rel} does not follow the {pack.name} legacy schema: "
        + p.message.removeprefix(prefix) + (f" at {p.location}" if p.location else "")
        for p in problems
    ]


def _readable(data: bytes, encoding: str) -> list[str]:
    """The bytes as the agency's system reads them, one element per line so a diff points at it."""
    text = data.decode(encoding, errors="replace").replace("\ufeff", "<BOM>")
    return text.replace("><", ">\n<").splitlines()


def _compare_bytes(pack: MappingPack, expected_path: Path, actual: bytes, rel: str, option: str) -> list[str]:
    if not expected_path.is_file():
        return [f"{rel}: missing (run with {option} to write it, then review it)"]
    expected = expected_path.read_bytes()
    if expected == actual:
        return []
    at = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
              min(len(expected), len(actual)))
    lines = [f"{rel}: the {pack.name} system would be given other bytes than this file holds: first difference "
             f"at byte {at} (file {len(expected)} bytes, output {len(actual)} bytes)"]
    if expected.startswith(BOM) != actual.startswith(BOM):
        lines.append(f"  {'the file' if expected.startswith(BOM) else 'the output'} starts with a UTF-8 byte order "
                     "mark, the other does not")
    diff = list(difflib.unified_diff(_readable(expected, pack.encoding), _readable(actual, pack.encoding),
                                     f"expected {rel}", "actual (decoded as " + pack.encoding + ")",
                                     lineterm="", n=1))
    if diff:
        lines += diff
    else:  # same text in the pack's encoding: the bytes themselves tell the difference
        lines.append(f"  file:   {expected[max(0, at - 8):at + 16]!r}\n  output: {actual[max(0, at - 8):at + 16]!r}")
    return ["\n".join(lines)]
