"""kill -9 during intake on PostgreSQL: the daily aggregates commit with the records or not at all.

tests/test_crash.py does this at length on SQLite; here a node on PostgreSQL is killed a few times
while a sender pushes records (resending until it holds a receipt, some of them blocked), and the
aggregates afterwards must count each stored record once and equal a rebuild from the raw tables.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import httpx
import pytest
import yaml

from gateway.store.postgres import PostgresStore

from .support.config import http_config
from .support.nodes import Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .test_stats_aggregates import snapshot

RECORDS = 150
pytestmark = [pytest.mark.slow, pytest.mark.postgres]


async def push(base: str, receipts: dict[int, str]) -> None:
    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": "crash-key"}, timeout=10) as http:
        for i in range(RECORDS):
            body = record(f"C-{i % 40:03d}", sender="COURT" if i % 5 == 0 else "POLICE", extra=f"n{i}")  # 5th: blocked
            while i not in receipts:
                try:
                    r = await http.post("/inbound/police-in", content=body, headers={"X-Message-Id": f"P-{i}"})
                    if r.status_code in (200, 202, 422):
                        receipts[i] = r.json()["status"]
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.02)  # a steady flow, so the kills fall while records are in flight


async def test_kill_nine_on_postgres_keeps_aggregates_equal_to_a_rebuild(tmp_path: Path, pg_dsn: str) -> None:
    rng = random.Random(11)
    rcv = Receiver()
    port = free_port()
    cfg = http_config(tmp_path / "data", rcv.url, node="pg-crash", lease_seconds=2.0,
                      api={"host": "127.0.0.1", "port": port})
    cfg["gateway"]["store"] = {"backend": "postgres", "dsn": {"env": "CRASH_DSN"}}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gw = Node("pg-crash", port, config, {"POLICE_KEY": "crash-key", "CRASH_DSN": pg_dsn})
    receipts: dict[int, str] = {}
    async with serving(rcv.app(), rcv.port):
        await gw.start_and_wait()
        try:
            sender = asyncio.create_task(push(f"http://127.0.0.1:{port}", receipts))
            for k in range(3):
                await asyncio.sleep(rng.uniform(0.5, 1.5))
                assert k > 0 or not sender.done(), "the first kill must fall during intake"
                gw.kill()
                await gw.start_and_wait()
            await asyncio.wait_for(sender, 120)
        finally:
            gw.stop()
    assert len(receipts) == RECORDS and list(receipts.values()).count("rejected") == RECORDS // 5

    store = PostgresStore(pg_dsn, node="check")
    await store.open()
    try:
        kept = await snapshot(store)
        daily = kept[0]
        assert sum(r[2] for r in daily) == RECORDS  # sent: each stored record counted once, none twice
        assert sum(r[4] for r in daily) == RECORDS // 5  # blocked
        await store.rebuild_stats()
        assert await snapshot(store) == kept
    finally:
        await store.close()
