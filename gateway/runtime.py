"""Assembles a running gateway from its configuration: store, packs, pipeline, adapters, workers.

`Gateway` owns the lifecycle (start, stop); `serve` runs it under uvicorn with the REST API and
every push adapter's routes on one port, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import adapters
from adapters.base import InboundAdapter, OutboundAdapter
from gateway import heap
from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.audit.signing import Sealer, Signer
from gateway.audit.verify_bundle import STOPPED
from gateway.audit.witness import Witnessing
from gateway.clockscan import Scanner
from gateway.clocktime import Clock, SystemClock
from gateway.config import GatewayConfig
from gateway.conformance import Conformance, Gate
from gateway.contexts import Contexts
from gateway.delivery import Destination, Dispatcher
from gateway.evidence.issue import Issuer
from gateway.evidence.service import with_delivery_evidence
from gateway.evidence.signer import EvidenceSigner
from gateway.files import FileStore
from gateway.keys import resolved_keys
from gateway.mapping import MappingPack, load_pack
from gateway.metrics import Metrics
from gateway.model import InboundRecord, Receipt
from gateway.pipeline import (
    MapForDestinations,
    MapToStandard,
    Parse,
    Pipeline,
    Route,
    Rules,
    ValidateStandard,
)
from gateway.private_files import FILE_MODE, FOLDER_MODE, private_dir, private_file, tighten
from gateway.queries import Queries
from gateway.refusals import Refusals
from gateway.retention import RetentionReport, run_retention
from gateway.retry import Redelivery
from gateway.routing import Router
from gateway.seals.check import seal_steps
from gateway.stats import freezer as stats_freezer
from gateway.store import make_store
from gateway.store.base import Store
from gateway.store.shared import iso_now, payload_gone, replay_conflict
from gateway.validation import AgencyRate, Validation
from gateway.verdict import Verdict

log = logging.getLogger("gateway")


def _age(iso: str) -> float:
    """Seconds since an entry's time."""
    return time.time() - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _log_thread_failure(args: threading.ExceptHookArgs) -> None:
    """Uncaught failures of library threads go to the log, not as a traceback on the console.

    paramiko's read-ahead thread, for one, fails with "Socket is closed" when a connection is shut
    while a download is under way (at stop, or when a peer drops): that is the expected end of the
    connection, already handled by the download itself, so it is one line. Anything else is logged
    with its traceback for the developers, in the log where operators' tools collect it.
    """
    name = args.thread.name if args.thread else "?"
    exc = args.exc_value
    if isinstance(exc, (OSError, EOFError)):
        log.warning("background thread %s ended: connection closed (%s)", name, exc)
    elif exc is not None and not isinstance(exc, SystemExit):
        log.error("background thread %s failed", name, exc_info=exc)


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        store: Store | None = None,
        outbound: dict[str, OutboundAdapter] | None = None,
        whole_process: bool = False,
        clock: Clock | None = None,
        worker: int | None = None,
    ) -> None:
        self.config = config
        self.node = config.gateway.node
        self.store = store or make_store(config)
        self.worker = worker  # which of the node's worker processes this is (gateway.workers), if several
        if worker is not None:
            self.store.worker = f"#{worker}"
        self._own_store = store is None  # a store handed in (tests) keeps its own file where it is
        self._outbound_override = outbound or {}
        self.inbound: dict[str, InboundAdapter] = {}
        self.outbound: dict[str, OutboundAdapter] = {}
        self.dispatcher: Dispatcher | None = None
        self.pipeline: Pipeline | None = None
        self.validation: Validation | None = None
        self.conformance = Conformance(config, self.store.append_audit, self.store.last_conformance_run)
        self.signer: Signer | None = None
        self.witnessing: Witnessing | None = None
        self.evidence: Issuer | None = None  # signs the evidence of submission and of delivery
        self.metrics = Metrics()
        self.queries = Queries(self.store)
        limits = config.gateway.refusals
        self.refusals = Refusals(self.store.append_audit, limits.interval_seconds, limits.auth_failures_per_source)
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = False
        self.whole_process = whole_process  # the process is this node: it may set process-wide things
        self.clock = clock  # the time statutory clocks are kept by (tests and the demo run it faster)
        self.clock_scanner: Scanner | None = None

    # -- assembly -------------------------------------------------------------------
    def pack(self, name: str) -> MappingPack:
        return load_pack(name, tuple(self.config.gateway.mapping_dirs))

    def outbound_pack(self, agency: str) -> MappingPack:
        ch = self.config.agency(agency).outbound
        assert ch is not None
        return self.pack(ch.mapping)

    def _notice_pack(self, agency: str) -> MappingPack | None:
        """Defect notices go back through the sender's own outbound channel, if it has one."""
        try:
            ch = self.config.agency(agency).outbound
        except KeyError:
            return None
        return self.pack(ch.mapping) if ch is not None else None

    def build(self) -> None:
        """Create adapters, pipeline and workers from the configuration (once; no I/O)."""
        if self.pipeline is not None:
            return
        cfg = self.config
        inbound_packs: dict[str, MappingPack] = {}
        admission = Admission(cfg.gateway.max_records_in_progress, cfg.gateway.max_bytes_in_progress,
                              on_busy=self.metrics.busy)
        contexts = Contexts(cfg, self.store, self.intake, self.queries, self.refusals, admission, self.validate,
                            self.conformance.allows)
        for agency in cfg.agencies:
            for ch in agency.inbound:
                inbound_packs[ch.name] = self.pack(ch.mapping)
                make_inbound = adapters.load(ch.adapter).inbound
                assert make_inbound is not None  # the configuration checked that the adapter takes records in
                self.inbound[ch.name] = make_inbound(ch.adapter_settings, contexts.inbound(agency, ch.name))
        destinations = []
        for agency in cfg.agencies:
            out = agency.outbound
            if out is None:
                continue
            if agency.code in self._outbound_override:
                adapter = self._outbound_override[agency.code]
            else:
                make_outbound = adapters.load(out.adapter).outbound
                assert make_outbound is not None
                adapter = make_outbound(out.adapter_settings, contexts.outbound(agency, out.name))
            self.outbound[agency.code] = adapter
            destinations.append(Destination(agency.code, adapter, Redelivery(out.retry), out.concurrency))
        router = Router(cfg.routes, {a.code for a in cfg.agencies if a.outbound})
        limits = cfg.gateway.xml_limits()
        steps = [
            Gate(self.conformance),
            Parse(cfg.gateway.max_message_bytes, limits),
            MapToStandard(),
            ValidateStandard(cfg.gateway.standard_versions),
            Rules(cfg.rule_adaptations(), cfg.gateway.standard_versions, cfg.unknown_codes_warned()),
            *seal_steps(cfg.seals, FileStore.for_data_dir(cfg.gateway.data_dir)),
            Route(router),
            MapForDestinations(self.outbound_pack),
        ]
        self.pipeline = Pipeline(
            self.store, steps, inbound_packs, cfg.gateway.max_message_bytes,  # type: ignore[arg-type]
            notice_pack=self._notice_pack, limits=limits, admission=admission)
        rate = cfg.gateway.validations_per_second
        self.validation = Validation(self.pipeline, self.metrics, AgencyRate(rate, rate),
                                     tuple(cfg.gateway.standard_versions), lambda: self.store.clock_keeper)
        self.dispatcher = Dispatcher(self.store, destinations, cfg.gateway.lease_seconds,
                                     on_attempt=self.metrics.attempt_ended)

    def _evidence_signer(self, data: Path) -> None:
        """The node's evidence key (made on first start), handed to the pipeline and the dispatcher."""
        ev = self.config.gateway.evidence
        if not ev.enabled:
            return
        issuer = Issuer(EvidenceSigner.load_or_create(ev.key or data / "evidence-key.pem", self.node), self.node)
        self.evidence = issuer
        assert self.pipeline is not None and self.dispatcher is not None
        self.pipeline.evidence = issuer
        to_outbound = frozenset(a.code for a in self.config.agencies if a.evidence_to_outbound)
        self.pipeline.evidence_to_outbound = to_outbound
        self.dispatcher.evidence = lambda lease, finish: with_delivery_evidence(issuer, lease, finish, to_outbound)

    async def intake(self, record: InboundRecord) -> Receipt:
        """The pipeline's entry, handed to every inbound adapter; raises Busy for a pushed record when
        the node is full (its adapter answers "try again"), a pulled one waits for room."""
        assert self.pipeline is not None
        receipt = await self.pipeline.accept(record)
        self.metrics.record_taken(record.channel, receipt)
        return receipt

    async def validate(self, record: InboundRecord, test: bool = False) -> Verdict:
        """The validation service's entry, handed to every inbound adapter: the verdict, nothing stored."""
        assert self.validation is not None
        return await self.validation.validate(record, test=test)

    # -- lifecycle --------------------------------------------------------------------
    async def prepare(self) -> None:
        """What must exist once before a node's worker processes start (each would race to create it):
        the data folder, the signing key and, in an empty database, the schema."""
        data = Path(self.config.gateway.data_dir)
        self._private_data(data)
        Signer.load_or_create(self.config.gateway.signing_key or data / "signing-key.pem")
        if await self.store.schema_version() == 0:
            await self.store.upgrade()

    async def start(self) -> None:
        if self.whole_process:
            threading.excepthook = _log_thread_failure
        resolved_keys(self.config)  # a shared or short API key stops the node before anything is opened
        self._clocks()  # so does a bad limits or holiday file, or a pack that cannot write a warning
        data = Path(self.config.gateway.data_dir)
        self._private_data(data)
        self.signer = Signer.load_or_create(self.config.gateway.signing_key or data / "signing-key.pem")
        self.store.sealer = Sealer(self.signer, self.config.gateway.checkpoint_every, self.node, iso_now)
        await self.store.open()
        await self.store.seal_log([])  # whatever an unclean stop left unsigned is signed before anything new
        self.build()
        await self.conformance.load(required_only=True)
        self._evidence_signer(data)
        assert self.dispatcher is not None
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        for adapter in self.inbound.values():
            self._tasks.append(asyncio.create_task(adapter.run(), name=f"inbound-{adapter.channel}"))
        # the timed checkpoints, the witness and retention are the node's, run by its first worker only
        first = self.worker in (None, 1)
        if first:
            self._tasks.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
        w = self.config.gateway.witness
        if first and (w.url or w.file):
            self.witnessing = Witnessing(self.store, w, self.node, data, self.signer.key_id)
            self._tasks.append(asyncio.create_task(self.witnessing.run(), name="witness"))
        self._tasks.append(asyncio.create_task(self.refusals.run(), name="refusals"))
        self._tasks.append(asyncio.create_task(self.conformance.load_the_rest(), name="conformance"))
        if first and self.clock_scanner is not None:  # one scanner per node; claims keep it once per cluster
            self._tasks.append(asyncio.create_task(
                self.clock_scanner.run(self.config.clocks.scan_seconds), name="clocks"))
        if first:
            freezer = stats_freezer.run(self.store, self.config, self.node)
            self._tasks.append(asyncio.create_task(freezer, name="rankings"))
        if first and self.config.gateway.retention.payload_days is not None:
            self._tasks.append(asyncio.create_task(self._retention(), name="retention"))
        who = {"node": self.node} if self.worker is None else {"node": self.node, "worker": self.worker}
        started = [AuditEvent("node-started", self.node, detail=who)]
        adapted, warned = self.config.rule_adaptations(), self.config.unknown_codes_warned()
        if adapted or warned:  # which rules this node judges by, from now on
            started.append(AuditEvent("rules-adapted", self.node, detail={
                "node": self.node, "adaptations": [a.as_dict() for a in adapted], "unknown_codes_warn": warned}))
        await self.store.append_audit(started)
        self.started = True
        if self.whole_process:
            # Modules, schemas, stylesheets and config live as long as the process: moved out of the
            # collector's reach, the collector's oldest-generation passes no longer walk them each time.
            gc.collect()
            gc.freeze()
            heap.pin_mmap_threshold()  # large blocks in their own mappings, given back when freed
        log.info("gateway node %s started", self.node)

    def clock_now(self) -> float:
        """The time the clocks are kept by (the wall clock unless a test or the demo runs another)."""
        keeper = self.store.clock_keeper
        return keeper.clock.now() if keeper is not None else (self.clock or SystemClock()).now()

    def _clocks(self) -> None:
        """Statutory time-limit clocks: the store keeps them at commit, a scanner warns."""
        from gateway import clockservice

        clocks = clockservice.build(self.config, self.outbound_pack, self.clock)
        if clocks is None:
            return
        self.store.clock_keeper = clocks.keeper
        self.clock_scanner = clockservice.scanner(clocks, self.store, self.outbound_pack, self.node,
                                                  self.metrics.registry)

    def _private_data(self, data: Path) -> None:
        """The data folder, and the SQLite file this node opens, readable by the node's user only.

        The database file is created here, 0600, before SQLite opens it: SQLite gives the -wal and
        -shm files it makes the database file's mode. What an older version made wider is tightened,
        and the log says so.
        """
        if tighten(data, FOLDER_MODE):
            log.warning("data folder %s was open to other users; now to this user only (0700)", data)
        private_dir(data)
        s = self.config.gateway.store
        if not self._own_store or s.backend != "sqlite":
            return
        db = Path(s.path or data / "gateway.db")  # where make_store puts it
        private_dir(db.parent)
        wider = [p for p in (Path(f"{db}-wal"), Path(f"{db}-shm")) if tighten(p, FILE_MODE)]
        if private_file(db) or wider:
            log.warning("database %s was readable by other users; now by this user only (0600)", db)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Run the node for the body's time: started unless it already runs, stopped at the end."""
        if not self.started:
            await self.start()
        try:
            yield self
        finally:
            await self.stop()

    async def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        if self.dispatcher:
            await self.dispatcher.stop()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
        for a in list(self.inbound.values()):
            with contextlib.suppress(Exception):
                await a.aclose()
        for o in list(self.outbound.values()):
            with contextlib.suppress(Exception):
                await o.aclose()
        with contextlib.suppress(Exception):
            await self.refusals.flush()
            # the stop and the node's final checkpoint in one transaction: no other node's entry between them
            who = {"node": self.node} if self.worker is None else {"node": self.node, "worker": self.worker}
            await self.store.seal_log([AuditEvent(STOPPED, self.node, detail=who)])
        if self.witnessing is not None:
            await self.witnessing.flush()  # the final checkpoint too, if the witness answers at once
        await self.store.close()
        log.info("gateway node %s stopped", self.node)

    # -- exchange-log checkpoints -------------------------------------------------------
    async def checkpoint(self) -> dict[str, Any] | None:
        """Sign the log's current head now (a checkpoint entry); None if the head is signed already."""
        entries = await self.store.seal_log([])
        if self.witnessing is not None:
            self.witnessing.wake()
        return json.loads(entries[-1].detail) if entries else None

    async def _checkpoints(self) -> None:
        """A checkpoint once the log's oldest unsigned entry is `checkpoint_seconds` old. The count rule
        (every N entries) is kept by the store's writer itself, in the transaction that appends them."""
        seconds = self.config.gateway.checkpoint_seconds
        seen = -1
        while True:
            await asyncio.sleep(min(2.0, seconds / 4))
            try:
                if self.witnessing is not None:
                    self.witnessing.wake()
                seq, _ = await self.store.audit_head()
                if seq == seen:
                    continue
                first = await self.store.audit_entries(after_seq=await self._signed_to(), limit=1)
                if not first:
                    seen = seq
                elif _age(first[0].time) >= seconds:
                    await self.checkpoint()
            except Exception:
                log.exception("signing a checkpoint failed; will try again")

    async def _signed_to(self) -> int:
        """The log's newest checkpoint entry (whichever node wrote it)."""
        cp = await self.store.last_checkpoint()
        return cp.seq + 1 if cp is not None else 0

    # -- retention ------------------------------------------------------------------------------
    async def retention(self, actor: str = "retention", days: float | None = None) -> RetentionReport | None:
        """One retention run, unless another task or node of the cluster is running one (None)."""
        async with self.store.locked("retention") as mine:
            if not mine:
                return None
            files = FileStore.for_data_dir(self.config.gateway.data_dir)
            report = await run_retention(self.store, files, self.config.gateway.retention, actor=actor, days=days)
        if report.messages or report.files:
            log.info("retention: %s", report.summary())
        return report

    async def _retention(self) -> None:
        every = self.config.gateway.retention.every_minutes * 60
        await asyncio.sleep(min(every, 60.0))  # the first run waits until the node has settled in
        while True:
            try:
                await self.retention()
            except Exception:
                log.exception("retention failed; will try again in %.0f minutes", every / 60)
            await asyncio.sleep(every)

    # -- replay from raw, to the destination chosen ---------------------------------------------
    async def replay(self, delivery_id: str, actor: str, reason: str, expect_state: str | None = None) -> str:
        assert self.pipeline is not None
        d = await self.store.get_delivery(delivery_id)
        if d is None:
            raise KeyError(delivery_id)
        if expect_state is not None and d.state != expect_state:  # stale: spare the remapping
            raise replay_conflict(delivery_id, d.state, expect_state)
        m = await self.store.get_message(d.message_id)
        assert m is not None
        raw = await self.store.get_blob(m.content_hash)
        if raw is None:
            if m.payload_pruned_at:
                raise payload_gone(m.id)
            raise ValueError(f"the original payload of message {m.id} is no longer stored")
        body = await asyncio.to_thread(
            self.pipeline.remap, raw, m.channel, self.outbound_pack(d.destination))
        from gateway.model import sha256_hex

        h = sha256_hex(body)
        await self.store.put_blob(body) if await self.store.get_blob(h) is None else None
        return await self.store.enqueue_replay(delivery_id, h, actor, reason, expect_state)
