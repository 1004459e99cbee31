"""The exchange pipeline: raw bytes in, one durable decision out.

parse -> map to the standard -> validate -> (rules) -> route -> map for each destination, then
one store transaction records the raw payload, the message, one delivery per destination and
every step's log entry. Each step is a small unit with one method, so later steps (evidence
rules, signature checks) slot in without touching the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from lxml import etree

from gateway import batch, findings, heap, notice, schemamessages, standard, timeline, xmllimits, xmlsafe
from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import document_types
from gateway.errors import GatewayError, InputRejected, PartlyTaken
from gateway.evidence.document import Submission
from gateway.evidence.issue import Issuer
from gateway.evidence.outbound import evidence_to_sender
from gateway.mapping import MappingPack, Problem, first_findings
from gateway.model import InboundRecord, MessageStatus, Receipt, new_id, sha256_hex
from gateway.routing import Router
from gateway.rule_adaptations import Adaptation, AdaptedRules, admit_unknown_codes
from gateway.rules import readable_path, standard_rules
from gateway.store.roles import Intake
from gateway.store.rows import NewDelivery, NewMessage
from gateway.store.shared import iso_now as iso_time

log = logging.getLogger("gateway.pipeline")

_INLINE_LIMIT = 256 * 1024  # larger records are processed off the event loop


def _attachments(record: InboundRecord) -> list[dict[str, object]]:
    """Dossier files as stored with the message, so every delivery of it carries them."""
    return [asdict(a) for a in record.attachments]


class Rejected(Exception):
    """Stop the pipeline: the record is refused for the problems listed in the context."""


@dataclass
class Context:
    """Everything one record gathers on its way through the steps."""

    record: InboundRecord
    message_id: str
    content_hash: str
    source: str
    pack: MappingPack
    legacy: etree._Element | None = None
    canonical: etree._Element | None = None
    canonical_bytes: bytes = b""
    envelope: standard.Envelope | None = None
    destinations: list[str] = field(default_factory=list)
    outbound: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    events: list[AuditEvent] = field(default_factory=list)
    lines_pending: bool = False  # canonical is the mapping's own tree, not yet re-read from canonical_bytes
    _hashed: tuple[bytes, str] = field(default=(b"", sha256_hex(b"")), repr=False)

    def canonical_hash(self) -> str:
        """SHA-256 of the standard record as it stands, computed once per version of its bytes."""
        if self._hashed[0] is not self.canonical_bytes:
            self._hashed = (self.canonical_bytes, sha256_hex(self.canonical_bytes))
        return self._hashed[1]

    def hash_of(self, body: bytes) -> str:
        """SHA-256 of an outbound body; the identity mapping's equals the standard record's."""
        return self.canonical_hash() if body == self.canonical_bytes else sha256_hex(body)

    def canonical_with_lines(self) -> etree._Element:
        """The standard record re-read from the bytes kept, so findings name its real lines.

        Done only when there is a finding to report: a clean record never needs line numbers.
        """
        if self.lines_pending:
            self.canonical = etree.fromstring(self.canonical_bytes)
            self.lines_pending = False
        assert self.canonical is not None
        return self.canonical

    def log(self, action: str, payload_hash: str = "", **detail: Any) -> None:
        case = self.envelope.case_number if self.envelope else ""
        self.events.append(AuditEvent(action, self.record.sender, self.message_id, case, payload_hash, detail))

    def block(self, *problems: Problem) -> None:
        """Add these findings and stop if any finding so far blocks (deferred ones included)."""
        self.problems.extend(problems)
        if any(p.severity == "block" for p in self.problems):
            raise Rejected()

    def in_agency_terms(self) -> None:
        """The findings so far located in the sender's own file (see gateway/findings.py)."""
        legacy = self.legacy
        self.problems = findings.in_agency_terms(
            self.problems, self.canonical, lambda: self.pack.trace(legacy) if legacy is not None else None)

    def defer(self, *problems: Problem) -> None:
        """Add findings that refuse the record but let the later checks run, so the sender
        hears of every problem at once; the next `block` (at the latest after the rules) stops."""
        self.problems.extend(problems)


class Step(Protocol):
    name: str

    def __call__(self, ctx: Context) -> None: ...


class Parse:
    name = "parse"

    def __init__(self, max_bytes: int, limits: xmllimits.XmlLimits = xmllimits.DEFAULT) -> None:
        self.max_bytes = max_bytes
        self.limits = limits

    def __call__(self, ctx: Context) -> None:
        try:
            ctx.legacy = xmlsafe.parse(ctx.record.body, source=ctx.source, max_bytes=self.max_bytes,
                                       limits=self.limits)
        except InputRejected as e:
            ctx.block(Problem(e.rule, e.message, line=e.line, message_zh=e.message_zh))


class MapToStandard:
    name = "map"

    def __call__(self, ctx: Context) -> None:
        assert ctx.legacy is not None
        ctx.defer(*ctx.pack.check_legacy(ctx.legacy))  # the mapping may still read what the rest says
        try:
            ctx.canonical = ctx.pack.to_standard(ctx.legacy)
        except InputRejected as e:
            ctx.envelope = _case_only(ctx.pack.envelope_despite_codes(ctx.legacy))
            ctx.block(Problem(e.rule, e.message, message_zh=e.message_zh))
        mapped = ctx.canonical is not ctx.legacy
        ctx.canonical_bytes = etree.tostring(ctx.canonical, encoding="UTF-8", pretty_print=mapped)
        ctx.lines_pending = mapped  # findings' lines must point into the kept standard record
        ctx.log("mapped", ctx.canonical_hash(), pack=ctx.pack.name)


def _schema_finding(e: etree._LogEntry, tree: etree._Element) -> Problem:
    zh, en = schemamessages.plain(e.message)
    return Problem("standard.schema", en, line=e.line, location=readable_path(tree, e.path),
                   message_zh=f"记录不符合案件交换标准：{zh}")


def _case_only(record: etree._Element | None) -> standard.Envelope | None:
    """The case number of a record the mapping refused (its other fields may hold untranslated codes)."""
    if record is None or record.tag != f"{{{standard.NS}}}CaseRecord":
        return None
    env = standard.envelope(record)
    return standard.Envelope(env.version, env.case_number, "", "", env.sender, ()) if env.case_number else None


class ValidateStandard:
    name = "validate"

    def __init__(self, versions: Sequence[str]) -> None:
        self.versions = set(versions)

    def __call__(self, ctx: Context) -> None:
        tree = ctx.canonical
        assert tree is not None
        root = etree.QName(tree)
        known = root.namespace == standard.NS and root.localname == "CaseRecord"
        if known:
            ctx.envelope = standard.envelope(tree)  # read even from an invalid record: its notice names the case
        major = standard.major_version(tree)
        if not known or major not in self.versions:
            # what the mapping made of a file its own schema refuses: those findings say why
            refused = any(p.severity == "block" for p in ctx.problems)
            ctx.block(*[] if refused else [self._not_judged(tree, known)])
        assert ctx.envelope is not None
        xsd = standard.schema(major)
        if not xsd.validate(tree):
            if ctx.lines_pending:  # validity does not depend on indentation; the lines do
                tree = ctx.canonical_with_lines()
                xsd.validate(tree)
            # the rules still run on what the mapping produced, so every problem is listed at once
            ctx.defer(*first_findings(xsd.error_log, lambda e: _schema_finding(e, tree)))
        if ctx.envelope.sender != ctx.record.sender:
            said = ctx.envelope.sender
            ctx.defer(Problem("standard.sender", f"the record says it is from {said or 'no one'}, but it arrived "
                                                 f"on a channel of {ctx.record.sender}",
                              message_zh=f"记录所填发送单位为“{said}”，但经 {ctx.record.sender} 的通道送达，"
                                         "请核对发送单位"))
        ctx.log("validated", ctx.canonical_hash(),
                warnings=[p.as_dict() for p in ctx.problems if p.severity == "warn"])


    def _not_judged(self, tree: etree._Element, known: bool) -> Problem:
        if not known:
            return Problem("standard.root", f"the record is not a Case Exchange record (root element "
                                            f"{etree.QName(tree).localname})")
        return Problem("standard.version", f"version '{tree.get('version')}' of the standard is not accepted "
                                           f"(accepted: {', '.join(sorted(self.versions))}.x)")


class Rules:
    """Evidence, acceptance, identity, date and dossier rules of the standard (rules.yaml), as the
    deployment adapted them for the record's stage, action and sender (rule sets built here, once).

    Blocking failures reject the record (its sender gets a defect notice); warnings travel on in
    the record's Warnings element, so the receiver sees them as well as the operator. A stage or
    action the standard does not know blocks, unless the channel is in `unknown_codes_warn`.
    """

    name = "rules"

    def __init__(self, adaptations: Sequence[Adaptation] = (), versions: Sequence[str] = ("1",),
                 unknown_codes_warn: Collection[str] = ()) -> None:
        self.adapted = AdaptedRules(adaptations, versions) if adaptations else None
        self.unknown_codes_warn = frozenset(unknown_codes_warn)

    def __call__(self, ctx: Context) -> None:
        tree = ctx.canonical
        assert tree is not None
        major, env = standard.major_version(tree), ctx.envelope
        rules = (self.adapted.rules_for(major, env.stage, env.action, env.sender)
                 if self.adapted is not None and env is not None else standard_rules(major))
        problems = rules.check(tree, ctx.record.attachments)
        if problems and ctx.lines_pending:  # again on the re-read record, for its line numbers
            tree = ctx.canonical_with_lines()
            problems = rules.check(tree, ctx.record.attachments)
        admitted: list[Problem] = []
        if problems and ctx.record.channel in self.unknown_codes_warn:
            problems, admitted = admit_unknown_codes(problems, ctx.record.channel)
        warnings = [p for p in problems if p.severity == "warn"]
        notice.attach_warnings(tree, warnings)
        if warnings:
            ctx.canonical_bytes = etree.tostring(tree, encoding="UTF-8")
            ctx.log("warned", ctx.canonical_hash(), warnings=[p.as_dict() for p in warnings])
        if admitted:
            ctx.log("unknown-code-admitted", ctx.canonical_hash(), channel=ctx.record.channel,
                    setting="unknown_codes: warn", rules=[p.rule for p in admitted],
                    findings=[p.as_dict() for p in admitted])
        ctx.problems.extend(problems)
        ctx.in_agency_terms()  # after the warnings travel on: the receiver reads them in standard terms
        ctx.block()


class Route:
    name = "route"

    def __init__(self, router: Router) -> None:
        self.router = router

    def __call__(self, ctx: Context) -> None:
        assert ctx.envelope is not None
        dests, problems = self.router.destinations(ctx.envelope)
        ctx.block(*[Problem("route.unknown", p) for p in problems])
        ctx.destinations = dests
        ctx.log("routed", destinations=dests)


class MapForDestinations:
    name = "map-out"

    def __init__(self, packs: Callable[[str], MappingPack]) -> None:
        self.packs = packs

    def __call__(self, ctx: Context) -> None:
        assert ctx.canonical is not None
        for dest in ctx.destinations:
            pack = self.packs(dest)
            try:
                ctx.outbound[dest] = pack.from_standard(ctx.canonical)
            except (InputRejected, etree.XSLTApplyError) as e:
                ctx.block(Problem("mapping.outbound", f"the record cannot be written in {dest}'s format: {e}"))


def judge(ctx: Context, steps: Sequence[Step]) -> bool:
    """Run the steps on one record and say whether it is blocked; its findings are in `ctx.problems`.

    The one place a step's failure becomes a finding: the pipeline, `gateway validate` and the
    validation service all judge a record here, so they cannot disagree on what blocks it.
    """
    try:
        for step in steps:
            step(ctx)
        ctx.block()  # a deferred finding refuses the record even if no later step stopped it
    except Rejected:
        return True
    except GatewayError as e:
        ctx.problems.append(Problem(getattr(e, "rule", "gateway.config"), str(e)))
        return True
    except Exception as e:  # a defect must not lose the record: it is kept, visible, with the reason
        log.exception("pipeline step failed for %s", ctx.message_id)
        ctx.problems.append(Problem("gateway.internal-error", f"the gateway could not process the record "
                                                              f"({type(e).__name__}); operators are alerted"))
        return True
    return False


async def judge_soon(ctx: Context, steps: Sequence[Step]) -> bool:
    """`judge`, off the event loop for a large record (its trees take long enough to stall other requests)."""
    if len(ctx.record.body) > _INLINE_LIMIT:
        return await asyncio.to_thread(judge, ctx, steps)
    return judge(ctx, steps)


class Pipeline:
    """Turns an InboundRecord into a stored decision and a Receipt for its sender."""

    def __init__(
        self,
        store: Intake,
        steps: list[Step],
        inbound_packs: dict[str, MappingPack],
        max_bytes: int,
        notice_pack: Callable[[str], MappingPack | None] | None = None,
        admission: Admission | None = None,
        limits: xmllimits.XmlLimits = xmllimits.DEFAULT,
        evidence: Issuer | None = None,
    ) -> None:
        self.store = store
        self.steps = steps
        self.inbound_packs = inbound_packs
        self.max_bytes = max_bytes
        self.notice_pack = notice_pack  # the sender's outbound pack, for defect notices (None: no channel)
        self.admission = admission or Admission(records=1 << 30, budget=1 << 62)  # unbounded unless given
        self.limits = limits
        self.evidence = evidence  # signs the evidence of submission each receipt names (None: no evidence)
        self.evidence_to_outbound: frozenset[str] = frozenset()  # senders whose outbound channel gets it too


    async def accept(self, record: InboundRecord) -> Receipt:
        """The record's decision, stored; or Busy, nothing stored, when the node has no room for it now.

        A pushed record comes inside the admission slot its adapter took before reading the body,
        and is refused as busy; a pulled one (SFTP, folder: no slot) waits for room instead.
        """
        try:
            if self.admission.held():
                with self.admission.slot(record.channel, len(record.body)):
                    return await self._accept(record)
            async with self.admission.room_for(len(record.body)):
                return await self._accept(record)
        finally:
            heap.release_soon(len(record.body))  # its trees are gone: their memory goes back

    async def _accept(self, record: InboundRecord) -> Receipt:
        splitter = self.inbound_packs[record.channel].batch
        if splitter is None:
            return await self._accept_one(record)
        return await self._accept_file(record, splitter)

    async def _accept_file(self, record: InboundRecord, splitter: batch.Splitter) -> Receipt:
        """A file of several records: each record is taken in alone (gateway/batch.py says why)."""
        source = f"channel {record.channel}" + (f", file {record.file_name}" if record.file_name else "")
        try:
            root = xmlsafe.parse(record.body, source=source, max_bytes=self.max_bytes, limits=self.limits)
        except InputRejected:  # not XML: refused as one record, with the parser's words
            return await self._accept_one(record)
        parts = splitter.split(root)
        del root
        if not parts:
            return await self._accept_one(record, Problem(
                "batch.no-record", "the file holds no record: nothing in it matches the pack's batch.record",
                message_zh="文件中没有可识别的记录：没有与数据包 batch.record 相符的元素"))
        receipts: list[Receipt] = []
        for part in parts:
            try:
                receipts.append(await self._accept_one(replace(record, body=part, sender_message_id=None)))
            except Exception as e:
                if not receipts:
                    raise  # nothing was taken: the adapter says so as for any record
                raise PartlyTaken(len(receipts), len(parts)) from e
        return batch.file_receipt(sha256_hex(record.body), record.received_at, receipts)

    async def _accept_one(self, record: InboundRecord, refused: Problem | None = None) -> Receipt:
        # A resend is recognised inside the store's one write (record_message), not by a read
        # before it: that saves a round trip per record and cannot race a concurrent resend.
        content_hash = sha256_hex(record.body)
        source = f"channel {record.channel}" + (f", file {record.file_name}" if record.file_name else "")
        ctx = Context(record, new_id(), content_hash, source, self.inbound_packs[record.channel])
        ctx.log("received", content_hash, channel=record.channel, size=len(record.body),
                file=record.file_name, operation=record.operation, sender_message_id=record.sender_message_id,
                **({"attachments": _attachments(record)} if record.attachments else {}))
        if refused is not None:  # refused before any step could look at it (a batch file with no record)
            ctx.problems.append(refused)
            blocked = True
        else:
            blocked = await judge_soon(ctx, self.steps)
        return await self._commit(ctx, MessageStatus.REJECTED if blocked else MessageStatus.ACCEPTED)

    async def _commit(self, ctx: Context, status: MessageStatus) -> Receipt:
        env = ctx.envelope
        if env is not None and env.case_number:  # entries logged before the case number was read belong to it too
            ctx.events = [ev if ev.case_number else replace(ev, case_number=env.case_number) for ev in ctx.events]
        blobs: dict[str, bytes] = {}
        deliveries: list[NewDelivery] = []
        if status == MessageStatus.ACCEPTED:
            for dest in ctx.destinations:
                body = ctx.outbound[dest]
                h = ctx.hash_of(body)
                blobs[h] = body
                deliveries.append(NewDelivery(dest, h, file_name=ctx.record.file_name))
                ctx.log("queued", h, destination=dest)
            if ctx.canonical_bytes:
                blobs[ctx.canonical_hash()] = ctx.canonical_bytes
        else:
            ctx.log("rejected", ctx.content_hash, problems=[p.as_dict() for p in ctx.problems])
            self._defect_notice(ctx, blobs, deliveries)
        # what stopped the record first, then what only warned
        reasons = tuple(p.explain() for p in sorted(ctx.problems, key=lambda p: p.severity != "block"))
        evidence = self._evidence(ctx, status, reasons, deliveries, blobs)
        message = NewMessage(
            message_id=ctx.message_id,
            sender=ctx.record.sender,
            channel=ctx.record.channel,
            sender_message_id=ctx.record.sender_message_id,
            content_hash=ctx.content_hash,
            canonical_hash=ctx.canonical_hash() if ctx.canonical_bytes else "",
            case_number=env.case_number if env else "",
            stage=env.stage if env else "",
            action=env.action if env else "",
            status=status,
            reasons=reasons,
            received_at=ctx.record.received_at,
            file_name=ctx.record.file_name,
            operation=ctx.record.operation,
            summary={"problems": [p.as_dict() for p in ctx.problems],
                     **({"attachments": _attachments(ctx.record)} if ctx.record.attachments else {})},
            timeline=timeline.entry(ctx.canonical, ctx.destinations if status == MessageStatus.ACCEPTED
                                    else env.receivers, ctx.problems) if env else None,
            evidence_hash=evidence,
            documents=document_types(ctx.canonical) if status == MessageStatus.ACCEPTED else (),
        )
        return await self.store.record_message(message, ctx.record.body, blobs, deliveries, ctx.events)

    def _evidence(self, ctx: Context, status: MessageStatus, reasons: tuple[str, ...],
                  deliveries: list[NewDelivery], blobs: dict[str, bytes]) -> str:
        """Sign the evidence of submission, kept and logged in the record's own transaction; its hash."""
        if self.evidence is None:
            return ""
        env = ctx.envelope
        issued = self.evidence.submission(Submission(
            ctx.message_id, ctx.content_hash, env.case_number if env else "", ctx.record.sender,
            [d.destination for d in deliveries], iso_time(ctx.record.received_at), str(status), reasons,
            ctx.record.sender_message_id), iso_time())
        blobs[issued.sha256] = issued.body
        ctx.events.append(issued.event)
        if ctx.record.sender in self.evidence_to_outbound:  # as signed: no pack maps it
            deliveries.append(evidence_to_sender(ctx.record.sender, issued.sha256, ctx.message_id))
        return issued.sha256

    def _defect_notice(self, ctx: Context, blobs: dict[str, bytes], deliveries: list[NewDelivery]) -> None:
        """Answer a blocked record to its sender, in the sender's format, in the same transaction."""
        sender = ctx.record.sender
        pack = self.notice_pack(sender) if self.notice_pack else None
        if pack is None or not ctx.problems:
            return
        doc = notice.defect_notice(ctx.message_id, sender, ctx.problems, envelope=ctx.envelope,
                                   sender_message_id=ctx.record.sender_message_id)
        try:
            body = pack.from_standard(doc)
        except (GatewayError, etree.XSLTApplyError) as e:
            ctx.log("defect-notice-failed", destination=sender, reason=str(e))
            return
        h = sha256_hex(body)
        blobs[h] = body
        deliveries.append(NewDelivery(sender, h, reason="defect notice to the sender",
                                      file_name=f"defect-notice-{ctx.message_id}.xml"))
        ctx.log("defect-notice", h, destination=sender, rules=[p.rule for p in ctx.problems])

    def remap(self, raw: bytes, channel: str, destination_pack: MappingPack) -> bytes:
        """Re-run the path from the original raw bytes for one destination (replay from raw)."""
        pack = self.inbound_packs[channel]
        tree = xmlsafe.parse(raw, source=f"channel {channel}", max_bytes=self.max_bytes, limits=self.limits)
        return destination_pack.from_standard(pack.to_standard(tree))
