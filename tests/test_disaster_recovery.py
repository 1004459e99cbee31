"""A node killed again and again, and a node lost with its disk: the log stays signed, and a backup
brings the node back with nothing accepted before the backup point lost or delivered twice.

Real processes (`python -m gateway CONFIG`), killed with SIGKILL; a loopback receiver that acts on
each Idempotency-Key once and answers a repeat with its first receipt.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.audit.signing import Signer
from gateway.audit.verify_bundle import CHECKPOINT

from .support.config import http_config
from .support.nodes import ROOT, Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving

pytestmark = pytest.mark.slow
EVERY = 50


def _config(tmp: Path, rcv: Receiver, port: int, **gateway: Any) -> Path:
    cfg = http_config(tmp / "data", rcv.url, node="dr-node", lease_seconds=2.0, checkpoint_every=EVERY,
                      api={"host": "127.0.0.1", "port": port}, **gateway)
    cfg["gateway"]["store"] = {"durability": "full"}
    cfg["agencies"][1]["outbound"]["retry"] = {"initial_backoff": 0.1, "max_backoff": 1.0, "jitter": 0.1,
                                               "max_attempts": 1000}
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


async def _send(base: str, n: int, receipts: dict[int, dict[str, Any]], rate: float,
                stop: Callable[[], bool] = lambda: False) -> None:
    """Each record sent until a receipt comes back (4 senders, `rate` records a second offered)."""
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        todo.put_nowait(i)
    loop = asyncio.get_running_loop()
    t0 = loop.time()

    async def worker(http: httpx.AsyncClient) -> None:
        while not todo.empty() and not stop():
            i = todo.get_nowait()
            await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
            while not stop():
                try:
                    r = await http.post("/inbound/police-in", content=record(case=f"C2026-{i:05d}"),
                                        headers={"X-Message-Id": f"POLICE-{i}"})
                    if r.status_code in (200, 202):
                        receipts[i] = r.json()
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": "dr-key"}, timeout=10) as http:
        await asyncio.gather(*(worker(http) for _ in range(4)))


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(Path(sys.executable).parent / "gateway"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200"})


async def _settle(db: Path) -> None:
    for _ in range(1200):
        if rows(db, "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'")[0][0] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries did not settle")


def stretches(db: Path) -> list[int]:
    """Lengths of the runs of entries between checkpoints (the last one: the tail)."""
    runs, n = [], 0
    for (action,) in rows(db, "SELECT action FROM audit_log ORDER BY seq"):
        if action == CHECKPOINT:
            runs.append(n)
            n = 0
        else:
            n += 1
    return [*runs, n]


KILLS = int(os.environ.get("SEAL_KILLS", "20"))


async def test_kill_nine_during_traffic_leaves_a_checkpoint_at_least_every_n_entries(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("CRASH_SEED", "7"))
    rcv = Receiver()
    port = free_port()
    config = _config(tmp_path, rcv, port)
    node = Node("dr-node", port, config, {"POLICE_KEY": "dr-key"})
    receipts: dict[int, dict[str, Any]] = {}
    records = 30 * KILLS
    async with serving(rcv.app(), rcv.port):
        await node.start_and_wait()
        try:
            sender = asyncio.create_task(_send(node.url, records, receipts, rate=60.0))
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                node.kill()
                await node.start_and_wait()
            await asyncio.wait_for(sender, 300)
            await _settle(tmp_path / "data" / "gateway.db")
        finally:
            node.stop()
    db = tmp_path / "data" / "gateway.db"
    runs = stretches(db)
    entries = rows(db, "SELECT COUNT(*) FROM audit_log")[0][0]
    starts = rows(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'node-started'")[0][0]
    assert starts == KILLS + 1 and len(receipts) == records
    assert max(runs) <= EVERY, runs
    key = Signer.load_or_create(tmp_path / "data" / "signing-key.pem").key_id
    r = gateway("audit", "verify", "--config", str(config), "--key-fingerprint", key)
    assert r.returncode == 0 and "INTACT" in r.stdout, r.stdout + r.stderr
    print(f"\nlog seal under kill -9: {records} records, {KILLS} kill -9, {starts} starts; {entries} entries, "
          f"{len(runs) - 1} checkpoint entries, longest unsigned run {max(runs)} (limit {EVERY})")


async def test_disaster_recovery_drill(tmp_path: Path) -> None:
    """Traffic flowing, a backup taken, the node killed and its data folder deleted, restored on a fresh
    one: the log verifies (the witness up to the backup point), deliveries resume, nothing accepted
    before the backup point is lost or acted on twice, and what came after it is listed as the gap."""
    rcv = Receiver()
    port = free_port()
    witness = tmp_path / "other-disk" / "checkpoints.jsonl"
    config = _config(tmp_path, rcv, port, checkpoint_seconds=1.0, witness={"file": str(witness)})
    node = Node("dr-node", port, config, {"POLICE_KEY": "dr-key"})
    data, saved = tmp_path / "data", tmp_path / "backup"
    db = data / "gateway.db"
    receipts: dict[int, dict[str, Any]] = {}
    halted = False
    async with serving(rcv.app(), rcv.port):
        await node.start_and_wait()
        key = Signer.load_or_create(data / "signing-key.pem").key_id
        sender = asyncio.create_task(_send(node.url, 10_000, receipts, rate=40.0, stop=lambda: halted))
        await asyncio.sleep(3)
        r = await asyncio.to_thread(gateway, "backup", "--config", str(config), "--to", str(saved))
        assert r.returncode == 0 and "backup written" in r.stdout, r.stdout + r.stderr
        await asyncio.sleep(4)  # accepted after the backup point, checkpoints witnessed meanwhile
        node.kill()
        halted = True
        await sender
        shutil.rmtree(data)  # the disk is lost
        r = gateway("restore", "--from", str(saved), "--config", str(config))
        assert r.returncode == 0 and "INTACT" in r.stdout and "gap" in r.stdout, r.stdout + r.stderr
        again = gateway("restore", "--from", str(saved), "--config", str(config))
        assert again.returncode == 2 and "not empty" in again.stdout, "a restore never overwrites"
        await node.start_and_wait()
        await _settle(db)
        before = {m for (m,) in rows(saved / "gateway.db", "SELECT id FROM messages")}
        gap = {i for i, r in receipts.items() if r["message_id"] not in before}
        resent = await _resend(node.url, [*sorted(gap), *list(receipts)[:5]])  # the gap, and 5 that were kept
        await _settle(db)
        r = await asyncio.to_thread(gateway, "audit", "verify", "--config", str(config), "--key-fingerprint", key,
                                    "--witness", str(witness), "--live")
        assert r.returncode == 0 and "restored from a backup at entry" in r.stdout, r.stdout + r.stderr
        node.stop()

    latest = rows(saved / "gateway.db", "SELECT max(received_at) FROM messages")[0][0]
    assert gap and all(receipts[i]["received_at"] > latest for i in gap), "the gap is what came after the backup"
    kept = {i for i in receipts if i not in gap}
    assert all(resent[i]["message_id"] == receipts[i]["message_id"] for i in resent if i in kept), \
        "a record the backup holds, sent again, is answered with its first receipt"
    again = {resent[i]["message_id"] for i in gap}
    assert {m for (m,) in rows(db, "SELECT id FROM messages")} == before | again
    delivered = rows(db, "SELECT d.message_id, COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
                         "WHERE a.outcome = 'delivered' GROUP BY d.message_id")
    assert {m for m, _ in delivered} == before | again and {n for _, n in delivered} == {1}, "each delivered once"
    assert all(f"{m}:PROC" in rcv.keys for m in before), "the receiver acted on each record of the backup"
    r = gateway("audit", "verify", "--config", str(config), "--key-fingerprint", key, "--witness", str(witness))
    assert r.returncode == 0, r.stdout
    backup_point = json.loads((saved / "backup.json").read_text())["head"]["seq"]
    print(f"\nDR drill: {len(receipts)} records accepted, backup at log entry {backup_point} holding {len(before)} "
          f"records, all delivered exactly once after restore; {len(gap)} accepted after the backup point, "
          f"listed as the gap and resent; {rcv.duplicate_arrivals} repeated arrivals absorbed by the idempotency key")


async def _resend(base: str, which: list[int]) -> dict[int, dict[str, Any]]:
    """What senders do after a restore: send again the records whose receipts came after the backup."""
    out: dict[int, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": "dr-key"}, timeout=10) as http:
        for i in which:
            r = await http.post("/inbound/police-in", content=record(case=f"C2026-{i:05d}"),
                                headers={"X-Message-Id": f"POLICE-{i}"})
            assert r.status_code in (200, 202), r.text
            out[i] = r.json()
    return out
