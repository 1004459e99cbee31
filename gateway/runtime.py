"""Assembles a running gateway from its configuration: store, packs, pipeline, adapters, workers.

`Gateway` owns the lifecycle (start, stop); `serve` runs it under uvicorn with the REST API and
every push adapter's routes on one port, and stops cleanly on SIGINT/SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
import ssl
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel

import adapters
from adapters.base import InboundAdapter, OutboundAdapter
from gateway import heap
from gateway.admission import Admission
from gateway.audit.chain import AuditEvent
from gateway.audit.signing import Signer
from gateway.config import GatewayConfig, TlsSettings
from gateway.delivery import Destination, Dispatcher
from gateway.errors import ConfigError
from gateway.files import FileStore
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
from gateway.retention import RetentionReport, run_retention
from gateway.retry import Redelivery
from gateway.routing import Router
from gateway.store import make_store
from gateway.store.base import Store
from gateway.store.shared import payload_gone, replay_conflict
from gateway.store.sqlite import iso_now

log = logging.getLogger("gateway")


def hash_key(key: str) -> str:
    """API keys are kept as SHA-256 only; a stolen database does not reveal them."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


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


def _settings(module: Any, direction: str, raw: dict[str, Any]) -> BaseModel:
    model = getattr(module, "InboundSettings" if direction == "inbound" else "OutboundSettings")
    settings: BaseModel = model.model_validate(raw)
    return settings


class Gateway:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        store: Store | None = None,
        outbound: dict[str, OutboundAdapter] | None = None,
        whole_process: bool = False,
    ) -> None:
        self.config = config
        self.node = config.gateway.node
        self.store = store or make_store(config)
        self._outbound_override = outbound or {}
        self.inbound: dict[str, InboundAdapter] = {}
        self.outbound: dict[str, OutboundAdapter] = {}
        self.dispatcher: Dispatcher | None = None
        self.pipeline: Pipeline | None = None
        self.signer: Signer | None = None
        self.metrics = Metrics()
        self._tasks: list[asyncio.Task[Any]] = []
        self.started = False
        self.whole_process = whole_process  # the process is this node: it may set process-wide things

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
        for agency in cfg.agencies:
            for ch in agency.inbound:
                inbound_packs[ch.name] = self.pack(ch.mapping)
                module = adapters.load(ch.adapter)
                self.inbound[ch.name] = module.inbound(
                    _settings(module, "inbound", ch.settings), channel=ch.name, sender=agency.code, gateway=self)
        destinations = []
        for agency in cfg.agencies:
            out = agency.outbound
            if out is None:
                continue
            if agency.code in self._outbound_override:
                adapter = self._outbound_override[agency.code]
            else:
                module = adapters.load(out.adapter)
                adapter = module.outbound(_settings(module, "outbound", out.settings), channel=out.name,
                                          agency=agency.code, gateway=self)
            self.outbound[agency.code] = adapter
            destinations.append(Destination(agency.code, adapter, Redelivery(out.retry), out.concurrency))
        router = Router(cfg.routes, {a.code for a in cfg.agencies if a.outbound})
        limits = cfg.gateway.xml_limits()
        steps = [
            Parse(cfg.gateway.max_message_bytes, limits),
            MapToStandard(),
            ValidateStandard(cfg.gateway.standard_versions),
            Rules(),
            Route(router),
            MapForDestinations(self.outbound_pack),
        ]
        self.pipeline = Pipeline(
            self.store, steps, inbound_packs, cfg.gateway.max_message_bytes,  # type: ignore[arg-type]
            notice_pack=self._notice_pack, limits=limits,
            admission=Admission(cfg.gateway.max_records_in_progress, cfg.gateway.max_bytes_in_progress,
                                on_busy=self.metrics.busy))
        self.dispatcher = Dispatcher(self.store, destinations, cfg.gateway.lease_seconds,
                                     on_attempt=self.metrics.attempt_ended)

    async def intake(self, record: InboundRecord) -> Receipt:
        """The pipeline's entry, handed to every inbound adapter; raises Busy for a pushed record when
        the node is full (its adapter answers "try again"), a pulled one waits for room."""
        assert self.pipeline is not None
        receipt = await self.pipeline.accept(record)
        self.metrics.record_taken(record.channel, receipt)
        return receipt

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        if self.whole_process:
            threading.excepthook = _log_thread_failure
        data = Path(self.config.gateway.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        self.signer = Signer.load_or_create(self.config.gateway.signing_key or data / "signing-key.pem")
        await self.store.open()
        await self._register_keys()
        self.build()
        assert self.dispatcher is not None
        self._tasks.append(asyncio.create_task(self.dispatcher.run(), name="dispatcher"))
        for adapter in self.inbound.values():
            self._tasks.append(asyncio.create_task(adapter.run(self.intake), name=f"inbound-{adapter.channel}"))
        self._tasks.append(asyncio.create_task(self._checkpoints(), name="checkpoints"))
        if self.config.gateway.retention.payload_days is not None:
            self._tasks.append(asyncio.create_task(self._retention(), name="retention"))
        await self.store.append_audit([AuditEvent("node-started", self.node, detail={"node": self.node})])
        self.started = True
        if self.whole_process:
            # Modules, schemas, stylesheets and config live as long as the process: moved out of the
            # collector's reach, the collector's oldest-generation passes no longer walk them each time.
            gc.collect()
            gc.freeze()
            heap.pin_mmap_threshold()  # large blocks in their own mappings, given back when freed
        log.info("gateway node %s started", self.node)

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
            await self.store.append_audit([AuditEvent("node-stopped", self.node, detail={"node": self.node})])
            await self.checkpoint()
        await self.store.close()
        log.info("gateway node %s stopped", self.node)

    async def _register_keys(self) -> None:
        for agency in self.config.agencies:
            if agency.api_key:
                await self.store.put_api_key(hash_key(agency.api_key.resolve()), "agency", agency.code, agency.code)
        for p in self.config.access.operators:
            await self.store.put_api_key(hash_key(p.key.resolve()), "operator", p.name, None)
        for p in self.config.access.auditors:
            await self.store.put_api_key(hash_key(p.key.resolve()), "auditor", p.name, None)

    # -- exchange-log checkpoints -------------------------------------------------------
    async def checkpoint(self) -> dict[str, Any] | None:
        """Sign the log's current head; returns the checkpoint, or None if nothing new to sign."""
        assert self.signer is not None
        seq, head = await self.store.audit_head()
        cps = await self.store.checkpoints()
        if seq == 0 or (cps and cps[-1]["seq"] >= seq):
            return None
        signed_at = iso_now()
        sig = self.signer.sign(seq, head, signed_at)
        await self.store.add_checkpoint(seq, head, signed_at, sig, self.signer.key_id)
        return {"seq": seq, "entry_hash": head, "signed_at": signed_at, "signature": sig}

    async def _checkpoints(self) -> None:
        every = self.config.gateway.checkpoint_every
        last = 0
        while True:
            await asyncio.sleep(2.0)
            try:
                seq, _ = await self.store.audit_head()
                if seq - last >= every:
                    await self.checkpoint()
                    last = seq
            except Exception:
                log.exception("signing a checkpoint failed; will try again")

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
        if expect_state is not None and d["state"] != expect_state:  # stale: spare the remapping
            raise replay_conflict(delivery_id, d["state"], expect_state)
        m = await self.store.get_message(d["message_id"])
        assert m is not None
        raw = await self.store.get_blob(m["content_hash"])
        if raw is None:
            if m.get("payload_pruned_at"):
                raise payload_gone(m["id"])
            raise ValueError(f"the original payload of message {m['id']} is no longer stored")
        body = await asyncio.to_thread(
            self.pipeline.remap, raw, m["channel"], self.outbound_pack(d["destination"]))
        from gateway.model import sha256_hex

        h = sha256_hex(body)
        await self.store.put_blob(body) if await self.store.get_blob(h) is None else None
        return await self.store.enqueue_replay(delivery_id, h, actor, reason, expect_state)

    # -- ASGI --------------------------------------------------------------------------------
    def asgi(self) -> Any:
        from gateway.api.app import create_app

        return create_app(self)


def tls_options(tls: TlsSettings | None) -> dict[str, Any]:
    """uvicorn's TLS arguments, after loading the files once here so that a wrong path, key or
    password is a configuration error naming the file, not a traceback from the server."""
    if tls is None:
        return {}
    password = tls.key_password.resolve() if tls.key_password else None
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file, password)
        if tls.client_ca_file:
            ctx.load_verify_locations(tls.client_ca_file)
    except (OSError, ssl.SSLError) as e:
        files = ", ".join(f for f in (tls.cert_file, tls.key_file, tls.client_ca_file) if f)
        raise ConfigError(f"gateway.api.tls: cannot load {files}: {getattr(e, 'strerror', None) or e}") from None
    options: dict[str, Any] = {"ssl_certfile": tls.cert_file, "ssl_keyfile": tls.key_file,
                               "ssl_keyfile_password": password}
    if tls.client_ca_file:
        options.update(ssl_ca_certs=tls.client_ca_file, ssl_cert_reqs=ssl.CERT_REQUIRED)
    return options


async def serve(config: GatewayConfig, *, ready: asyncio.Event | None = None) -> None:
    """Run one gateway node until SIGINT/SIGTERM: API and push adapters on one port."""
    import uvicorn

    tls = tls_options(config.gateway.api.tls)  # a bad certificate file stops here, named, before anything starts
    gw = Gateway(config, whole_process=True)
    app = gw.asgi()
    server = uvicorn.Server(uvicorn.Config(
        app, host=config.gateway.api.host, port=config.gateway.api.port, log_level="warning",
        lifespan="on", access_log=False, **tls,
    ))
    if ready is not None:
        app.api.state.ready_event = ready
    await server.serve()
