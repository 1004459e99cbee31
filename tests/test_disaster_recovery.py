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
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.audit.signing import Signer
from gateway.audit.verify_bundle import CHECKPOINT

from .support.crashes import db_rows, send_until_receipted, settle, write_crash_config
from .support.nodes import Node, gateway_cli
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving

pytestmark = pytest.mark.slow
EVERY = 50


def _config(tmp: Path, rcv: Receiver, port: int, **gateway: Any) -> Path:
    return write_crash_config(tmp / "gateway.yaml", tmp / "data", rcv.url, "dr-node", port, checkpoint_every=EVERY,
                              **gateway)


def stretches(db: Path) -> list[int]:
    """Lengths of the runs of entries between checkpoints (the last one: the tail)."""
    runs, n = [], 0
    for (action,) in db_rows(db, "SELECT action FROM audit_log ORDER BY seq"):
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
            sender = asyncio.create_task(send_until_receipted(node.url, records, receipts, key="dr-key", rate=60.0))
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(0.3, 1.5))
                node.kill()
                await node.start_and_wait()
            await asyncio.wait_for(sender, 300)
            await settle(tmp_path / "data" / "gateway.db")
        finally:
            node.stop()
    db = tmp_path / "data" / "gateway.db"
    runs = stretches(db)
    entries = db_rows(db, "SELECT COUNT(*) FROM audit_log")[0][0]
    starts = db_rows(db, "SELECT COUNT(*) FROM audit_log WHERE action = 'node-started'")[0][0]
    assert starts == KILLS + 1 and len(receipts) == records
    assert max(runs) <= EVERY, runs
    key = Signer.load_or_create(tmp_path / "data" / "signing-key.pem").key_id
    r = gateway_cli("audit", "verify", "--config", str(config), "--key-fingerprint", key)
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
        sender = asyncio.create_task(send_until_receipted(node.url, 10_000, receipts, key="dr-key", rate=40.0,
                                                          stop=lambda: halted))
        await asyncio.sleep(3)
        r = await asyncio.to_thread(gateway_cli, "backup", "--config", str(config), "--to", str(saved))
        assert r.returncode == 0 and "backup written" in r.stdout, r.stdout + r.stderr
        await asyncio.sleep(4)  # accepted after the backup point, checkpoints witnessed meanwhile
        node.kill()
        halted = True
        await sender
        shutil.rmtree(data)  # the disk is lost
        r = gateway_cli("restore", "--from", str(saved), "--config", str(config))
        assert r.returncode == 0 and "INTACT" in r.stdout and "gap" in r.stdout, r.stdout + r.stderr
        again = gateway_cli("restore", "--from", str(saved), "--config", str(config))
        assert again.returncode == 2 and "not empty" in again.stdout, "a restore never overwrites"
        await node.start_and_wait()
        await settle(db)
        before = {m for (m,) in db_rows(saved / "gateway.db", "SELECT id FROM messages")}
        gap = {i for i, r in receipts.items() if r["message_id"] not in before}
        resent = await _resend(node.url, [*sorted(gap), *list(receipts)[:5]])  # the gap, and 5 that were kept
        await settle(db)
        r = await asyncio.to_thread(gateway_cli, "audit", "verify", "--config", str(config), "--key-fingerprint", key,
                                    "--witness", str(witness), "--live")
        assert r.returncode == 0 and "restored from a backup at entry" in r.stdout, r.stdout + r.stderr
        node.stop()

    latest = db_rows(saved / "gateway.db", "SELECT max(received_at) FROM messages")[0][0]
    assert gap and all(receipts[i]["received_at"] > latest for i in gap), "the gap is what came after the backup"
    kept = {i for i in receipts if i not in gap}
    assert all(resent[i]["message_id"] == receipts[i]["message_id"] for i in resent if i in kept), \
        "a record the backup holds, sent again, is answered with its first receipt"
    again = {resent[i]["message_id"] for i in gap}
    assert {m for (m,) in db_rows(db, "SELECT id FROM messages")} == before | again
    delivered = db_rows(db, "SELECT d.message_id, COUNT(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id "
                         "WHERE a.outcome = 'delivered' GROUP BY d.message_id")
    assert {m for m, _ in delivered} == before | again and {n for _, n in delivered} == {1}, "each delivered once"
    assert all(f"{m}:PROC" in rcv.keys for m in before), "the receiver acted on each record of the backup"
    r = gateway_cli("audit", "verify", "--config", str(config), "--key-fingerprint", key, "--witness", str(witness))
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
