"""What the kill -9 tests share: a node's configuration, a sender that resends until it holds a
receipt, and read-only queries of the node's database while (or after) it runs.

A killed node loses nothing only if each record is resent until a receipt comes back, so the
sender here never gives up on a record (unless `stop` says the test is done with sending).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from .config import http_config
from .records import record


def write_crash_config(path: Path, data_dir: Path, receiver_url: str, node: str, port: int,
                       **gateway: Any) -> Path:
    """POLICE over HTTP to a receiver, durable commits, and retries fast enough to settle within a test."""
    cfg = http_config(data_dir, receiver_url, node=node, lease_seconds=2.0, api={"host": "127.0.0.1", "port": port},
                      **gateway)
    cfg["gateway"]["store"] = {"durability": "full"}
    cfg["agencies"][1]["outbound"]["retry"] = {"initial_backoff": 0.1, "max_backoff": 1.0, "jitter": 0.1,
                                               "max_attempts": 1000}
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


async def send_until_receipted(base: str, n: int, receipts: dict[int, dict[str, Any]], *, key: str, rate: float,
                               senders: int = 4, resends: Counter[str] | None = None,
                               stop: Callable[[], bool] = lambda: False) -> None:
    """Records 0..n-1 offered at `rate` a second by `senders` clients, each sent again until a receipt
    comes back; `resends` counts why one was sent again (an HTTP status, or the transport error)."""
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
                    if resends is not None:
                        resends[f"HTTP {r.status_code}"] += 1
                except httpx.TransportError as e:
                    if resends is not None:
                        resends[type(e).__name__] += 1
                await asyncio.sleep(0.05)

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, timeout=10) as http:
        await asyncio.gather(*(worker(http) for _ in range(senders)))


def db_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """A query on a node's SQLite database, read-only, so a running node is never disturbed."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def settle(db: Path) -> None:
    """Wait until every delivery is delivered: within a minute once the node stays up."""
    for _ in range(1200):
        if db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state != 'delivered'")[0][0] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("deliveries did not settle")
