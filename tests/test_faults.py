"""Faults of the parts around a node: its database restarted, its disk full, a receiver that hangs.

Each test runs a real node (`python -m gateway CONFIG`) on loopback and a sender that posts records
over HTTP the whole time, as a legacy system does: a record answered 503, or whose connection broke,
is sent again with the same X-Message-Id until it holds a receipt, waiting as Retry-After says.
While the fault lasts the node must answer honestly (503 with Retry-After, never 500 and never a
receipt it cannot keep) and keep running; once the fault is gone every accepted record must reach
its receiver exactly once. Each test prints records sent, accepted, delivered, lost and duplicated
(`pytest -s`) and asserts lost = duplicated = 0. Two quick tests at the end check the 503 answers
themselves without a fault to wait for.

Counting: a record is *delivered* when its receiver got it; *lost* when it was accepted (a 2xx
receipt) and never got there; *duplicated* when it got there as two messages (under two message
ids, so under two Idempotency-Keys) or was confirmed twice in the gateway's log. A delivery
attempt that got no answer is sent again with the same Idempotency-Key (at-least-once): those
raw repeats are counted and printed apart, as a receiver recognises them by the key.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from adapters import multipart
from gateway.audit.chain import AuditEntry
from gateway.files import FileStore

from .support.api import Running
from .support.chain import verify_chain
from .support.nodes import Node, node_config
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import dossier_record, record
from .support.required import unavailable
from .support.stores import DSN_ENV
from .support.waiting import wait_for

RATE = 40.0  # records per second offered: enough to be mid-flight at every fault, light on a shared machine
Query = Callable[[str], list[tuple[Any, ...]]]


# -- the sender ------------------------------------------------------------------------------------------

@dataclass
class Sender:
    """A legacy system posting records to one inbound endpoint until told to stop; each record is sent
    until it holds a receipt. Only a stop gives a record up, after `patience` seconds of trying."""

    url: str
    workers: int = 4
    rate: float = RATE
    patience: float = 30.0
    started: int = 0
    receipts: dict[str, str] = field(default_factory=dict)  # X-Message-Id -> the gateway's message id
    accepted_at: dict[str, float] = field(default_factory=dict)  # X-Message-Id -> monotonic time of its receipt
    resent_receipts: int = 0  # a resend answered 200 with the first receipt (its first answer was lost)
    unavailable: int = 0  # 503 answers
    without_retry_after: int = 0  # 503 answers without Retry-After
    errors: Counter[str] = field(default_factory=Counter)  # connection errors by kind
    unexpected: list[str] = field(default_factory=list)  # any other answer: never acceptable here
    gave_up: set[str] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _give_up_at: float = float("inf")

    @staticmethod
    def body(i: int) -> tuple[str, bytes]:
        return f"FAULT-{i:05d}", record(case=f"C2026-{i:05d}", extra=f"fault-{i}")

    async def run(self) -> None:
        t0 = time.monotonic()
        async with httpx.AsyncClient(timeout=10) as http:
            async def worker() -> None:
                while not self._stop.is_set():
                    i = self.started
                    self.started += 1
                    await asyncio.sleep(max(0.0, t0 + i / self.rate - time.monotonic()))
                    await self._send(http, i)

            await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def _send(self, http: httpx.AsyncClient, i: int) -> None:
        mid, body = self.body(i)
        while True:
            wait = 0.1
            try:
                r = await http.post(self.url, content=body,
                                    headers={"X-Message-Id": mid, "Content-Type": "application/xml"})
            except httpx.TransportError as e:
                self.errors[type(e).__name__] += 1
            else:
                if r.status_code in (200, 202):
                    self.receipts[mid] = r.json()["message_id"]
                    self.accepted_at[mid] = time.monotonic()
                    self.resent_receipts += r.status_code == 200
                    return
                if r.status_code == 503:
                    self.unavailable += 1
                    after = r.headers.get("retry-after")
                    self.without_retry_after += after is None
                    wait = min(float(after or 1), 2.0)  # as told (bounded, to keep the test short)
                else:
                    self.unexpected.append(f"{mid}: HTTP {r.status_code} {r.text[:300]}")
            if time.monotonic() > self._give_up_at:
                self.gave_up.add(mid)
                return
            await asyncio.sleep(wait)

    def stop(self) -> None:
        """No new records; those under way are sent until they hold a receipt or patience runs out."""
        self._stop.set()
        self._give_up_at = time.monotonic() + self.patience

    def longest_silence(self) -> float:
        """The longest time between two receipts: how long the fault kept records out."""
        times = sorted(self.accepted_at.values())
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0)


# -- what the gateway and the receivers say afterwards ----------------------------------------------------

def sqlite_query(path: Path) -> Query:
    def q(sql: str) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    return q


def pg_query(dsn: str) -> Query:
    def q(sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(dsn, connect_timeout=5) as conn:
            return conn.execute(sql.encode()).fetchall()
    return q


async def settle(q: Query, timeout: float = 60.0) -> None:
    """Until every delivery is delivered; on timeout, fail with what the rest are doing."""
    end = time.monotonic() + timeout
    while await asyncio.to_thread(q, "SELECT 1 FROM deliveries WHERE state <> 'delivered' LIMIT 1"):
        if time.monotonic() > end:
            left = q("SELECT state, reason, attempts, next_attempt_at, lease_expires_at FROM deliveries "
                     "WHERE state <> 'delivered' LIMIT 5")
            states = q("SELECT state, COUNT(*) FROM deliveries GROUP BY state")
            pytest.fail(f"not delivered within {timeout:.0f} s: {states}; for instance {left} (now {time.time()})")
        await asyncio.sleep(0.2)


def check_gateway(q: Query, sender: Sender, destinations: int = 1) -> int:
    """The gateway's records agree with the sender: one message per accepted record and none for a record
    given up, each delivery delivered, and the exchange log one unbroken chain. Returns deliveries confirmed
    more than once."""
    accepted = set(sender.receipts.values())
    rows = q("SELECT id, sender_message_id FROM messages")
    assert {r[0] for r in rows} == accepted, "the gateway holds messages no receipt names, or lacks one"
    assert len(rows) == len(accepted) == len({r[1] for r in rows}), "a resend made a second message"
    assert not {r[1] for r in rows} & sender.gave_up, "a record the sender gave up on was accepted"
    states = dict(q("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
    assert states == {"delivered": len(accepted) * destinations}, states
    confirmed = Counter(r[0] for r in q("SELECT delivery_id FROM attempts WHERE outcome = 'delivered'"))
    logged = Counter(r[0] for r in q("SELECT message_id FROM audit_log WHERE action = 'delivered'"))
    assert len(confirmed) == len(accepted) * destinations and set(logged) == accepted
    verify_chain([AuditEntry(*r) for r in q(
        "SELECT seq, time, node, actor, action, message_id, case_number, payload_hash, detail, prev_hash, entry_hash "
        "FROM audit_log ORDER BY seq")])
    return sum(n - 1 for n in confirmed.values()) + sum(max(0, n - destinations) for n in logged.values())


@dataclass
class Figures:
    fault: str
    sent: int
    accepted: int
    delivered: int
    lost: int
    duplicated: int
    raw_repeats: int
    unavailable: int
    seconds: float
    extra: str = ""

    def show(self) -> None:
        print(f"\n{self.fault}: sent {self.sent}, accepted {self.accepted}, delivered {self.delivered}, "
              f"lost {self.lost}, duplicated {self.duplicated}; 503 answers {self.unavailable}, repeats with the "
              f"same Idempotency-Key {self.raw_repeats}, {self.seconds:.1f} s{'; ' + self.extra if self.extra else ''}")


def figures(fault: str, sender: Sender, arrivals: Counter[str], twice_confirmed: int, seconds: float,
            extra: str = "") -> Figures:
    """`arrivals`: message id -> requests the receiver got for it (answered or not)."""
    accepted = set(sender.receipts.values())
    arrived = set(arrivals)
    return Figures(
        fault, sender.started, len(accepted), len(accepted & arrived), len(accepted - arrived),
        len(arrived - accepted) + twice_confirmed, sum(arrivals.values()) - len(arrived), sender.unavailable,
        seconds, extra)


def assert_honest(sender: Sender) -> None:
    assert not sender.unexpected, f"answers other than a receipt or 503: {sender.unexpected[:5]}"
    assert sender.without_retry_after == 0, f"{sender.without_retry_after} answers 503 without Retry-After"
    assert not sender.gave_up, f"the sender gave up on {len(sender.gave_up)} records"
    assert not sender.errors, f"requests the node did not answer (within 10 s) or refused: {dict(sender.errors)}"


def write_config(path: Path, cfg: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return path


# -- 1. PostgreSQL restarted mid-traffic --------------------------------------------------------------------

class OwnPostgres:
    """A PostgreSQL instance of this test's own (initdb + pg_ctl), which it may stop and start at will.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user; its folder is
    then made under /tmp (pytest's folders are root's only) and removed afterwards."""

    def __init__(self) -> None:
        bins = sorted(glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        found = bins[-1] if bins else shutil.which("pg_ctl")
        if not found:
            unavailable("no pg_ctl (PostgreSQL's server package) on this machine")
        self.bin = Path(found).parent
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
                unavailable("running as root without a postgres user to run PostgreSQL as")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.root = Path(tempfile.mkdtemp(prefix="gw-faults-pg-"))
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.data = self.root / "data"
        self.port = free_port()
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self.as_user, *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{Path(args[0]).name} {args[-1]} failed: {done.stderr.strip()[-1000:]}"

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--locale=C", "-N")

    def start(self) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                  "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=40",
                  "start")

    def stop(self) -> None:
        """Fast shutdown: every session is ended at once, as a database failover or restart does."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, AssertionError):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


REST_KEY = "police-rest-key-0123456789abcdef"


async def rest_submit(base: str, k: int) -> httpx.Response:
    """A record submitted through the REST API (POST /api/v1/messages) instead of the push endpoint."""
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        return await http.post("/api/v1/messages", content=record(case=f"C2026-9{k:04d}", extra=f"rest-{k}"),
                               headers={"X-API-Key": REST_KEY, "X-Message-Id": f"REST-{k}",
                                        "Content-Type": "application/xml"})


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    pg = OwnPostgres()
    try:
        pg.init()
        pg.start()
        yield pg
    finally:
        pg.remove()


@pytest.mark.slow
async def test_postgres_restarted_twice_mid_traffic(own_postgres: OwnPostgres, tmp_path: Path) -> None:
    pg = own_postgres
    rcv = Receiver()
    rcv.start()
    port = free_port()
    cfg = node_config("pg-node", port, tmp_path / "data", {"backend": "postgres", "dsn": {"env": DSN_ENV}},
                      rcv.url, lease_seconds=3.0)
    cfg["agencies"][0]["api_key"] = {"env": "POLICE_KEY"}  # for the REST API's submit, tried in each outage
    node = Node("pg-node", port, write_config(tmp_path / "node.yaml", cfg), {DSN_ENV: pg.dsn, "POLICE_KEY": REST_KEY})
    sender = Sender(f"{node.url}/inbound/police-in")
    outages: list[float] = []
    rest_503: list[httpx.Response] = []
    t0 = time.monotonic()
    try:
        await node.start_and_wait()
        sending = asyncio.create_task(sender.run())
        for k in range(2):
            await asyncio.sleep(4.0)
            down = time.monotonic()
            await asyncio.to_thread(pg.stop)
            rest_503.append(await rest_submit(node.url, k))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(pg.start)
            outages.append(time.monotonic() - down)
        await asyncio.sleep(4.0)
        sender.stop()
        await asyncio.wait_for(sending, 60)
        for k in range(2):  # the records the REST API could not take during the outages, sent again
            sender.started += 1
            r = await rest_submit(node.url, k)
            assert r.status_code == 202, r.text
            sender.receipts[f"REST-{k}"] = r.json()["message_id"]
        q = pg_query(pg.dsn)
        await settle(q)
        seconds = time.monotonic() - t0
        assert node.alive(), "the node died"
        await asyncio.to_thread(node.wait_ready, 10)
        twice = check_gateway(q, sender)
        assert node.stop(), "the node did not stop within 30 s of SIGTERM"
    finally:
        node.kill()
        rcv.stop()
    f = figures("PostgreSQL restarted twice", sender, rcv.arrivals, twice, seconds,
                f"outages {', '.join(f'{s:.1f} s' for s in outages)}; longest time without a receipt "
                f"{sender.longest_silence():.1f} s; connection errors {dict(sender.errors)}; resends answered "
                f"with the first receipt {sender.resent_receipts}")
    f.show()
    assert_honest(sender)
    assert sender.unavailable > 0, "no 503 while the database was down: the test did not hit the outage"
    assert [(r.status_code, "retry-after" in r.headers) for r in rest_503] == [(503, True)] * 2, \
        [r.text for r in rest_503]
    assert (f.lost, f.duplicated) == (0, 0)
    assert f.delivered == f.accepted == len(rcv.keys)


# -- 2. the data folder's disk full ------------------------------------------------------------------------

@contextlib.contextmanager
def small_disk(where: Path, megabytes: int) -> Iterator[str]:
    """A file system of its own at `where`: a loop-mounted ext4 image, or tmpfs when loop devices are not to
    be had; yields which. Unmounted afterwards whatever happened."""
    where.mkdir(parents=True)
    image = where.parent / "disk.img"
    tries = []
    with open(image, "wb") as f:
        f.truncate(megabytes * 1024 * 1024)
    mkfs = subprocess.run(["mkfs.ext4", "-q", "-m", "0", str(image)], capture_output=True, text=True)
    mount = subprocess.run(["mount", "-o", "loop", str(image), str(where)], capture_output=True, text=True) \
        if mkfs.returncode == 0 else mkfs
    kind = "ext4 on a loop device"
    if mount.returncode != 0:
        tries.append(f"loop-mounted ext4: {mount.stderr.strip()}")
        image.unlink()
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m,mode=0700", "tmpfs", str(where)],
                               capture_output=True, text=True)
        kind = "tmpfs"
        if mount.returncode != 0:
            tries.append(f"tmpfs: {mount.stderr.strip()}")
            unavailable(f"cannot mount a small file system for the data folder: {'; '.join(tries)}")
    try:
        yield kind
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
        image.unlink(missing_ok=True)


def fill(path: Path) -> int:
    """Write `path` until the file system has no byte left; returns its size."""
    size = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (1024 * 1024, 4096, 512):
            block = b"\0" * chunk
            with contextlib.suppress(OSError):
                while True:
                    size += f.write(block)
            # ENOSPC ends each round; the next writes smaller blocks into what is left
    return size


async def post_dossier(url: str, mid: str, data: bytes) -> httpx.Response:
    body = dossier_record(f"C2026-D{mid[-3:]}", {"scan.pdf": data})
    files = [("record", ("record.xml", body, "application/xml")), ("file", ("scan.pdf", data, "application/pdf"))]
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(url, files=files, headers={"X-Message-Id": mid})


@pytest.mark.slow
async def test_data_disk_full(tmp_path: Path) -> None:
    data = tmp_path / "data"
    rcv = Receiver()
    rcv.start()
    port = free_port()
    cfg = node_config("disk-node", port, data, {"durability": "normal"}, rcv.url, lease_seconds=3.0)
    node = Node("disk-node", port, write_config(tmp_path / "node.yaml", cfg))
    sender = Sender(f"{node.url}/inbound/police-in")
    filler = data / "filler"
    scan = os.urandom(2 * 1024 * 1024)
    t0 = time.monotonic()
    with small_disk(data, 64) as kind:
        try:
            await node.start_and_wait()
            sending = asyncio.create_task(sender.run())
            await asyncio.sleep(3.0)
            filled = await asyncio.to_thread(fill, filler)
            before = sender.unavailable
            await wait_for(lambda: sender.unavailable > before, 30, "a 503 once the disk is full")
            upload = await post_dossier(f"{node.url}/inbound/police-in", "DOSSIER-001", scan)
            await asyncio.sleep(3.0)  # records keep coming while the disk stays full
            assert node.alive(), "the node died of a full disk"
            full_503s = sender.unavailable - before
            filler.unlink()
            await asyncio.sleep(3.0)
            sender.stop()
            await asyncio.wait_for(sending, 60)
            retried = await post_dossier(f"{node.url}/inbound/police-in", "DOSSIER-001", scan)
            assert retried.status_code == 202, retried.text
            sender.receipts["DOSSIER-001"] = retried.json()["message_id"]
            q = sqlite_query(data / "gateway.db")
            await settle(q)
            seconds = time.monotonic() - t0
            assert node.alive()
            await asyncio.to_thread(node.wait_ready, 10)
            twice = check_gateway(q, sender)
            assert q("PRAGMA integrity_check") == [("ok",)]
            assert node.stop(), "the node did not stop within 30 s of SIGTERM"
        finally:
            node.kill()
            rcv.stop()
    sender.started += 1  # the dossier upload
    f = figures(f"data disk full ({kind}, 64 MiB)", sender, rcv.arrivals, twice, seconds,
                f"filler {filled / 2**20:.1f} MiB; 503s while full {full_503s}; dossier upload while full: HTTP "
                f"{upload.status_code}; longest time without a receipt {sender.longest_silence():.1f} s")
    f.show()
    assert upload.status_code == 503 and "retry-after" in upload.headers, (upload.status_code, upload.text)
    assert_honest(sender)
    assert full_503s > 0
    assert (f.lost, f.duplicated) == (0, 0)
    assert f.delivered == f.accepted == len(rcv.keys)


# -- 3. a receiver that takes the connection and never answers ----------------------------------------------

@dataclass
class SilentReceiver:
    """PROC's system hung: it accepts connections and reads whole requests but answers none until `answer()`;
    then it answers each request 200. It recognises nothing: every request is counted by its
    Idempotency-Key, answered or not."""

    port: int = field(default_factory=free_port)
    seen: Counter[str] = field(default_factory=Counter)  # key -> requests read
    answered: Counter[str] = field(default_factory=Counter)  # key -> requests answered 200
    unanswered: int = 0
    answering: bool = False
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/receive"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def answer(self) -> None:
        self.answering = True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                key = headers.get("idempotency-key", "")
                self.seen[key] += 1
                if not self.answering:  # hold the connection until the sender gives up on it
                    self.unanswered += 1
                    while await reader.read(65536):
                        pass
                    return
                self.answered[key] += 1
                body = f'{{"received": "{key}"}}'.encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.slow
async def test_receiver_that_never_answers(tmp_path: Path) -> None:
    silent = SilentReceiver()
    await silent.start()
    court = Receiver()
    court.start()
    port = free_port()
    cfg = node_config("hang-node", port, tmp_path / "data", {"durability": "normal"}, silent.url, lease_seconds=3.0)
    proc = cfg["agencies"][1]["outbound"]
    proc["settings"] = {"url": silent.url, "connect_timeout": 1.0, "read_timeout": 1.0}  # short, so attempts end
    proc["concurrency"] = 4
    cfg["agencies"].append({
        "code": "COURT", "name": "City Court", "role": "court",
        "outbound": {"name": "court-out", "adapter": "http", "concurrency": 4,
                     "settings": {"url": court.url, "connect_timeout": 1.0, "read_timeout": 1.0},
                     "retry": {"initial_backoff": 0.2, "max_backoff": 1.0, "jitter": 0.1, "max_attempts": 1000}}})
    cfg["routes"][0]["to"] = ["PROC", "COURT"]  # every record goes to both: PROC hangs, COURT does not
    node = Node("hang-node", port, write_config(tmp_path / "node.yaml", cfg))
    sender = Sender(f"{node.url}/inbound/police-in", rate=30.0)
    t0 = time.monotonic()
    try:
        await node.start_and_wait()
        sending = asyncio.create_task(sender.run())
        await asyncio.sleep(8.0)
        # COURT kept up while PROC hung: every record accepted 2 s ago or earlier is there
        court_ids = set(court.arrivals)
        settled = {sender.receipts[m] for m, t in list(sender.accepted_at.items()) if t < time.monotonic() - 2.0}
        behind = settled - court_ids
        proc_answered_while_hung = sum(silent.answered.values())
        hung_requests = silent.unanswered
        silent.answer()
        await asyncio.sleep(4.0)
        sender.stop()
        await asyncio.wait_for(sending, 60)
        q = sqlite_query(tmp_path / "data" / "gateway.db")
        await settle(q)
        seconds = time.monotonic() - t0
        assert node.alive()
        twice = check_gateway(q, sender, destinations=2)
        timeouts = q("SELECT COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
                     "WHERE d.destination = 'PROC' AND a.outcome = 'retrying' AND a.detail LIKE '%in time%'")[0][0]
        assert node.stop(), "the node did not stop within 30 s of SIGTERM"
    finally:
        node.kill()
        court.stop()
        await silent.stop()
    proc_arrivals = Counter({k.removesuffix(":PROC"): n for k, n in silent.seen.items()})
    f = figures("receiver that never answers (PROC), COURT beside it", sender, proc_arrivals, twice, seconds,
                f"PROC requests left unanswered {hung_requests}, attempts ended by the read timeout {timeouts}; "
                f"PROC keys answered twice {sum(1 for n in silent.answered.values() if n > 1)}; COURT delivered "
                f"{len(set(court.arrivals) & set(sender.receipts.values()))}, behind while PROC hung {len(behind)}")
    f.show()
    assert_honest(sender)
    assert hung_requests > 0 and proc_answered_while_hung == 0 and timeouts > 0
    assert settled and not behind, f"{len(behind)} records waited for COURT while PROC hung: one blocked the other"
    accepted = set(sender.receipts.values())
    # PROC: each record answered exactly once, under one key; repeats of unanswered attempts had the same key
    assert set(silent.answered) == {f"{m}:PROC" for m in accepted}
    assert set(silent.answered.values()) == {1}, "a record PROC had answered was sent to it again"
    assert set(court.arrivals) == accepted and set(court.arrivals.values()) == {1}
    assert (f.lost, f.duplicated) == (0, 0)
    assert f.delivered == f.accepted


# -- the answers themselves, without a fault to wait for ----------------------------------------------------

async def test_store_down_answers_503_with_retry_after(api: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    """The REST API's submit with the store failing its write, then its key lookup: 503 with Retry-After,
    never 500 (a client does not resend after a 500) and never a receipt."""
    async def down(*args: Any, **kwargs: Any) -> Any:
        raise OSError("the database is not reachable")

    monkeypatch.setattr(api.gateway.store, "record_message", down)
    r = await api.submit("POLICE", record(case="C2026-0503"))
    assert (r.status_code, r.headers.get("retry-after")) == (503, "2"), r.text
    assert "nothing was accepted" in r.json()["detail"]
    monkeypatch.setattr(api.gateway.store, "find_api_key", down)
    r = await api.submit("POLICE", record(case="C2026-0503"))
    assert (r.status_code, r.headers.get("retry-after")) == (503, "2"), r.text


def test_dossier_upload_to_a_full_disk_is_503(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dossier file the file store cannot write (no space left) refuses the upload as 'not now' (503),
    not as a malformed body (400), which a sender would not send again; nothing of it stays."""
    files = FileStore(tmp_path / "files")

    def full(self: FileStore) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(FileStore, "writer", full)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"record\"; filename=\"r.xml\"\r\n\r\n<r/>\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"scan.pdf\"\r\n\r\n%PDF\r\n"
            f"--{boundary}--\r\n").encode()
    reader = multipart.FormReader(f"multipart/form-data; boundary={boundary}", files, 4096, 4096)
    with pytest.raises(multipart.FormError) as e:
        reader.feed(body)
    assert (e.value.status, e.value.rule) == (503, "gateway.unavailable")
    assert "No space left on device" in str(e.value)
