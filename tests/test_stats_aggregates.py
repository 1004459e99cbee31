"""Daily aggregates kept at commit time equal a recomputation from the raw tables (both backends)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.audit.chain import AuditEvent
from gateway.model import DeliveryState, MessageStatus, new_id, sha256_hex
from gateway.store.base import Finish, NewDelivery, NewMessage, Store
from gateway.store.stats import day_of
from tests.support.stores import MakeStore

DAY = 86400.0

# one record: (case, action, outcome, dossier listed, days ago, seconds later); deliveries end
# delivered, retrying or dead in turn
_op = st.tuples(st.integers(0, 3), st.sampled_from(["transfer-for-prosecution", "indictment", "judgment",
                                                  "request-arrest-approval", "approve-arrest"]),
                st.sampled_from(["accepted", "warned", "blocked", "blocked-dossier"]), st.booleans(),
                st.integers(0, 3),
                st.integers(0, 3600))


async def put(store: Store, sender: str, case: str, action: str, outcome: str, dossier: bool,
              received_at: float) -> str:
    raw = f"<r>{case}{new_id()}</r>".encode()
    h = sha256_hex(raw)
    problems: list[dict[str, Any]] = []
    if outcome == "warned":
        problems = [{"rule": "ACC-PR-14", "severity": "warn"}]
    elif outcome == "blocked":
        problems = [{"rule": "EV-DD-01", "severity": "block"}, {"rule": "EV-DD-01", "severity": "block"}]
    elif outcome == "blocked-dossier":
        problems = [{"rule": "DOS-01", "severity": "block"}]
    status = MessageStatus.REJECTED if outcome.startswith("blocked") else MessageStatus.ACCEPTED
    summary: dict[str, Any] = {"problems": problems}
    if dossier:
        summary["attachments"] = [{"name": "a.pdf", "sha256": sha256_hex(b"a"), "size": 1}]
    m = NewMessage(new_id(), sender, "police-in", None, h, h, case, "trial", action, status, (), received_at,
                   summary=summary)
    dest = "PROC" if status == MessageStatus.ACCEPTED else sender  # a blocked one: its defect notice
    r = await store.record_message(m, raw, {}, [NewDelivery(dest, h)],
                                   [AuditEvent("received", sender, m.message_id, case, h)])
    return r.message_id


async def snapshot(store: Store) -> tuple[Any, ...]:
    daily, rules, hist = await store.stats_rows("2000-01-01", "2999-12-31")
    return sorted(daily), sorted(rules), sorted(hist), sorted((*r[:4], round(r[4], 3)) for r in
                                                             await store.stats_chains())


async def run(store: Store, ops: list[tuple[Any, ...]]) -> None:
    now = time.time()
    for i, (case, action, outcome, dossier, days, later) in enumerate(ops):
        sender = "POLICE" if i % 3 else "POLICE-2"
        await put(store, sender, f"C-{case}", action, outcome, dossier, now - days * DAY + later - 4 * DAY)
    for dest in ("PROC", "POLICE", "POLICE-2"):
        for i, lease in enumerate(await store.lease(dest, 1000, 30)):
            state = [DeliveryState.DELIVERED, DeliveryState.RETRYING, DeliveryState.DELIVERED,
                     DeliveryState.DEAD][(i + len(ops)) % 4]
            await store.finish(lease, Finish(state, "ok"))


@pytest.fixture
def loop_store(make_store: MakeStore) -> Any:
    """One store across hypothesis examples (its records accumulate; the comparison covers them all)."""
    loop = asyncio.new_event_loop()
    s = make_store("node-a")
    loop.run_until_complete(s.open())
    yield loop, s
    loop.run_until_complete(s.close())
    loop.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(_op, min_size=1, max_size=25))
def test_aggregates_equal_a_rebuild_after_a_randomized_run(loop_store: Any, ops: list[tuple[Any, ...]]) -> None:
    loop, store = loop_store
    loop.run_until_complete(run(store, ops))
    live = loop.run_until_complete(snapshot(store))
    loop.run_until_complete(store.rebuild_stats())
    assert loop.run_until_complete(snapshot(store)) == live


async def test_counts_mean_what_the_definitions_say(store: Store) -> None:
    t0 = time.time() - 3 * DAY
    await put(store, "POLICE", "C-1", "transfer-for-prosecution", "blocked-dossier", True, t0)
    await put(store, "POLICE", "C-1", "transfer-for-prosecution", "warned", True, t0 + 90)  # a resend, 90 s later
    await put(store, "POLICE", "C-2", "transfer-for-prosecution", "accepted", True, t0 + 100)
    await put(store, "POLICE", "C-2", "transfer-for-prosecution", "accepted", True, t0 + 110)  # neither
    for _ in range(2):  # one lease per case at a time: C-2's second record goes after its first
        for lease in await store.lease("PROC", 10, 30):
            await store.finish(lease, Finish(DeliveryState.DELIVERED, "ok"))
    for lease in await store.lease("POLICE", 10, 30):  # the defect notice: not a hand-over
        await store.finish(lease, Finish(DeliveryState.DELIVERED, "ok"))
    daily, rules, hist = await store.stats_rows("2000-01-01", "2999-12-31")
    rows = {(r[0], r[1]): r[2:] for r in daily}
    d = rows[(day_of(t0), "POLICE")]
    # sent accepted blocked warned first_sub first_pass resends resend_ms dossier_req dossier_ok
    assert d[:10] == (4, 3, 1, 1, 2, 1, 1, 90_000, 4, 3)
    today = day_of(time.time())
    assert rows[(today, "PROC")][10] == 3 and rows[(today, "POLICE")][11] == 3  # received; hand-overs sent
    assert rows[(today, "POLICE")][10] == 0  # its defect notice was not "received" as a record
    assert sorted((r[2], r[3]) for r in rules) == [("ACC-PR-14", 1), ("DOS-01", 1)]
    assert sum(r[4] for r in hist if r[2] == "s") == 3
    # an answer: PROC approves the arrest POLICE asked for 2 hours earlier (the blocked request is no request)
    await put(store, "POLICE", "C-7", "request-arrest-approval", "blocked", False, t0)
    await put(store, "POLICE", "C-7", "request-arrest-approval", "accepted", False, t0 + 600)
    await put(store, "PROC", "C-7", "approve-arrest", "accepted", False, t0 + 600 + 7200)
    await put(store, "PROC", "C-8", "approve-arrest", "accepted", False, t0)  # nothing asked: no answer time
    daily = (await store.stats_rows("2000-01-01", "2999-12-31", "PROC"))[0]
    assert (sum(r[17] for r in daily), sum(r[18] for r in daily)) == (1, 7_200_000)  # answers, answer_ms
    before = await snapshot(store)
    assert await store.rebuild_stats() == 8
    assert await snapshot(store) == before


def test_percentiles_from_buckets_are_within_a_bucket_of_the_exact_ones() -> None:
    import random
    from collections import Counter

    from gateway.stats.report import quantiles
    from gateway.store.stats import bucket

    rng = random.Random(3)
    times = sorted(int(rng.lognormvariate(7, 1.2)) for _ in range(5001))
    hist = Counter(bucket(ms) for ms in times)
    p50, p90 = quantiles(hist, (0.5, 0.9))
    assert p50 is not None and p90 is not None
    assert abs(p50 / times[2500] - 1) < 0.05 and abs(p90 / times[4500] - 1) < 0.05
    assert quantiles(Counter(), (0.5,)) == [None]
