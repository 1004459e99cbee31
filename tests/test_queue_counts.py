"""The delivery counts kept at commit time equal a recount of the deliveries themselves.

Queue views and /metrics read `delivery_counts` (kept by triggers in the transaction that inserts
a delivery or changes its state) instead of counting the whole history at each look. A count that
drifts would show operators a queue that is not there, or hide one that is; so after a random mix
of everything that moves a delivery, and after a real node was killed with SIGKILL while records
flowed and some receivers failed, the counts must equal `COUNT(*) ... GROUP BY` over the rows.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.model import DeliveryState
from gateway.store.base import Finish, Store
from gateway.store.rows import QueueDepth

from .support.config import http_config
from .support.nodes import Node
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.stores import store_settings
from .test_store_contract import put

RECOUNT = ("SELECT destination, state, count(*), min(created_at) FROM deliveries "
           "GROUP BY destination, state ORDER BY destination, state")
KEPT = "SELECT destination, state, count FROM delivery_counts WHERE count <> 0 ORDER BY destination, state"


async def rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    """Plain SQL on either backend (a test's view of the raw tables)."""
    if hasattr(store, "dsn"):
        return [tuple(r) for r in await store._rows(sql)]  # type: ignore[attr-defined]
    return await store._read(lambda c: [tuple(r) for r in c.execute(sql).fetchall()])  # type: ignore[attr-defined]


def as_counts(depths: list[QueueDepth]) -> list[tuple[Any, ...]]:
    return [(q.destination, str(q.state), q.count, q.oldest) for q in depths]


async def test_counts_equal_a_recount_after_a_random_run(store: Store) -> None:
    rng = random.Random(16)
    dests = ("PROC", "COURT", "PRISON")
    for step in range(400):
        roll = rng.random()
        if roll < 0.35:
            await put(store, f"C-{rng.randrange(25)}", tuple(rng.sample(dests, rng.randint(1, 2))))
        elif roll < 0.75:
            for lease in await store.lease(rng.choice(dests), rng.randint(1, 4), 30):
                state = rng.choice([DeliveryState.DELIVERED] * 3 + [DeliveryState.RETRYING, DeliveryState.DEAD])
                if rng.random() < 0.1:
                    continue  # left in flight, as a node that died would leave it
                await store.finish(lease, Finish(state, f"step {step}", next_attempt_at=0.0))
        elif roll < 0.85:
            dead = await store.list_deliveries(state="dead", limit=5)
            if dead:
                d = rng.choice(dead)
                await store.enqueue_replay(d.id, d.body_hash, "operator:ann", "fixed", expect_state="dead")
        elif roll < 0.95:
            waiting = [d for d in await store.list_deliveries(limit=1000) if d.state in ("dead", "queued", "retrying")]
            if waiting:
                await store.discard(rng.choice(waiting).id, "operator:ann", "sent on paper")
        else:
            await store.release_leases()
    recount = await rows(store, RECOUNT)
    assert {r[1] for r in recount} >= {"delivered", "dead", "discarded", "queued", "in_flight"}, recount
    assert as_counts(await store.queue_depths()) == recount
    assert await rows(store, KEPT) == [r[:3] for r in recount]


async def test_counts_equal_a_recount_after_kill_nine(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(9)
    rcv = Receiver()
    rcv.fail_next = [rng.choice([500, 503, 400, 200, 200]) for _ in range(150)]  # retries and dead letters
    port = free_port()
    cfg = http_config(tmp_path / "data", rcv.url, node="count-node", lease_seconds=2.0,
                      api={"host": "127.0.0.1", "port": port})
    cfg["gateway"]["store"] = {**store_settings(backend, request, monkeypatch),
                               **({"durability": "full"} if backend == "sqlite" else {})}
    cfg["agencies"][1]["outbound"]["retry"] = {"initial_backoff": 0.05, "max_backoff": 0.2, "jitter": 0.1,
                                               "max_attempts": 1000}
    config = tmp_path / "gateway.yaml"
    config.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    gw = Node("count-node", port, config, {"POLICE_KEY": "count-key"})
    sent = 0

    async def send(until: float) -> None:
        nonlocal sent
        loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(base_url=gw.url, headers={"X-API-Key": "count-key"}, timeout=5) as http:
            while loop.time() < until:
                try:
                    await http.post("/inbound/police-in", content=record(case=f"C2026-{sent % 40:05d}",
                                                                          extra=str(sent)),
                                    headers={"X-Message-Id": f"POLICE-{sent}"})
                    sent += 1
                except httpx.TransportError:
                    await asyncio.sleep(0.05)

    async with serving(rcv.app(), rcv.port):
        for _ in range(4):
            await gw.start_and_wait()
            loop = asyncio.get_running_loop()
            sender = asyncio.create_task(send(loop.time() + 5))
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            gw.kill()  # mid-commit, mid-lease, mid-delivery: wherever it falls
            await sender
    assert sent > 50
    if backend == "sqlite":
        with sqlite3.connect(tmp_path / "data" / "gateway.db") as c:
            recount = [(d, s, n) for d, s, n, _ in c.execute(RECOUNT).fetchall()]
            kept = c.execute(KEPT).fetchall()
    else:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_dsn")) as c:
            recount = [(d, s, n) for d, s, n, _ in c.execute(RECOUNT).fetchall()]
            kept = [tuple(r) for r in c.execute(KEPT).fetchall()]
    assert {s for _, s, _ in recount} >= {"delivered", "dead"}, recount
    assert kept == recount
