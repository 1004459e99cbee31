"""A node run as several worker processes (gateway.workers): one port, one SQLite file, one chain."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.audit.chain import AuditEntry
from gateway.store.sqlite import SQLiteStore
from gateway.workers import worker_count

from .support.chain import verify_chain
from .support.config import http_config
from .support.nodes import Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.waiting import wait_for, wait_until


def test_auto_is_the_cores_this_process_may_use() -> None:
    assert worker_count("auto") == len(os.sched_getaffinity(0))
    assert worker_count(3) == 3


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


async def test_two_workers_share_the_port_the_chain_and_the_idempotency_table(tmp_path: Path) -> None:
    rcv = Receiver()
    port = free_port()
    cfg = http_config(tmp_path / "data", rcv.url, node="two", workers=2, api={"host": "127.0.0.1", "port": port})
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    node = Node("two", port, config, {"POLICE_KEY": "k"})
    db = tmp_path / "data" / "gateway.db"

    def rows(sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
            return c.execute(sql).fetchall()

    async with serving(rcv.app(), rcv.port):
        try:
            await node.start_and_wait()
            assert node.proc is not None
            wait_until(lambda: len(_children(node.proc.pid)) == 2, 30, "two workers")  # type: ignore[union-attr]
            wait_until(lambda: len(rows("SELECT 1 FROM audit_log WHERE action = 'node-started'")) == 2, 30,
                       "both workers started")
            async with httpx.AsyncClient(base_url=node.url, headers={"X-API-Key": "k"}, timeout=10) as http:
                async def send(i: int) -> str:
                    r = await http.post("/inbound/police-in", content=record(case=f"C2026-{i % 7:05d}", extra=f"w{i}"),
                                        headers={"X-Message-Id": f"W-{i}"})
                    assert r.status_code in (200, 202), r.text
                    return str(r.json()["message_id"])

                first = await asyncio.gather(*(send(i) for i in range(60)))
                again = await asyncio.gather(*(send(i) for i in range(60)))  # resends, to whichever worker
            assert first == again and len(set(first)) == 60
            # polled inside the loop: the receiver serves from this same loop, and a blocking wait would stop it
            await wait_for(lambda: rows("SELECT count(*) FROM deliveries WHERE state = 'delivered'")[0][0] == 60, 60,
                       "all delivered")
            workers = _children(node.proc.pid)
            assert node.stop(), "the node did not stop on SIGTERM"
            assert all(not Path(f"/proc/{w}").exists() for w in workers), "a worker outlived its node"
        finally:
            node.kill()  # a failed check leaves no node running

    assert rows("SELECT count(*) FROM messages")[0][0] == 60
    assert set(rcv.arrivals) == set(first) and len(rcv.keys) == 60
    owners = {r[0] for r in rows("SELECT node FROM attempts")}
    assert owners == {"two"}
    entries = [AuditEntry(*r) for r in rows("SELECT * FROM audit_log ORDER BY seq")]
    verify_chain(entries)
    starts = [json.loads(e.detail)["worker"] for e in entries if e.action == "node-started"]
    stops = [json.loads(e.detail)["worker"] for e in entries if e.action == "node-stopped"]
    assert sorted(starts) == sorted(stops) == [1, 2]
    assert entries[-1].action == "checkpoint" and entries[-2].action == "node-stopped"


async def test_a_named_lock_holds_across_processes(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "gateway.db", "n")
    await store.open()
    try:
        async with store.locked("sftp:police-in") as mine:
            assert mine
            other = subprocess.run([sys.executable, "-c", (
                "import asyncio, sys\n"
                "from gateway.store.sqlite import SQLiteStore\n"
                "async def main():\n"
                "    s = SQLiteStore(sys.argv[1], 'm')\n"
                "    print(await s.try_lock('sftp:police-in'), await s.try_lock('retention'))\n"
                "asyncio.run(main())\n"), str(tmp_path / "gateway.db")], capture_output=True, text=True, check=True)
            assert other.stdout.split() == ["False", "True"], other.stderr
        async with store.locked("sftp:police-in") as mine:  # given back: taken again
            assert mine
    finally:
        await store.close()


@pytest.mark.parametrize("setting", [0, "two"])
def test_a_wrong_worker_count_is_a_configuration_error(tmp_path: Path, setting: object) -> None:
    from gateway.config import GatewaySettings

    with pytest.raises(ValueError):
        GatewaySettings(workers=setting)  # type: ignore[arg-type]
