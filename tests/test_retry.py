"""Redelivery decisions and reconnect waits: tenacity's backoff and limits, asked about one attempt."""

from __future__ import annotations

import time

import pytest

from adapters.filedrop import backoff
from gateway.config import RetryPolicy
from gateway.model import DeliveryResult, DeliveryState
from gateway.retry import Redelivery
from gateway.store.base import Lease

POLICY = RetryPolicy(max_attempts=5, initial_backoff=1.0, multiplier=2.0, max_backoff=10.0, jitter=0.5,
                     max_age=3600.0)


def lease(attempt: int, age: float = 0.0) -> Lease:
    return Lease("d-1", "m-1", "PROC", "C-1", "hash", "application/xml", attempt, time.time() - age, "t")


@pytest.mark.parametrize("attempt, low, high", [(1, 1.0, 1.5), (2, 2.0, 2.5), (3, 4.0, 4.5), (4, 8.0, 8.5)])
def test_a_failed_attempt_is_retried_after_exponential_backoff_with_jitter(attempt: int, low: float,
                                                                          high: float) -> None:
    now = time.time()
    finish = Redelivery(POLICY).decide(lease(attempt), DeliveryResult.transient("busy"), now)
    assert finish.state == DeliveryState.RETRYING and finish.next_attempt_at is not None
    assert low <= finish.next_attempt_at - now <= high + 1.0  # + the time the call took


def test_backoff_stops_growing_at_its_ceiling() -> None:
    assert 10.0 <= Redelivery(POLICY).backoff.wait(30) <= 10.5


def test_the_last_attempt_and_an_old_record_are_dead_lettered() -> None:
    last = Redelivery(POLICY).decide(lease(5), DeliveryResult.transient("busy"), time.time())
    assert last.state == DeliveryState.DEAD and last.detail.startswith("gave up after 5 attempts; last error: busy")
    old = Redelivery(POLICY).decide(lease(2, age=3601.0), DeliveryResult.transient("busy"), time.time())
    assert old.state == DeliveryState.DEAD and "waited longer than 3600 s" in old.detail


def test_drop_reconnect_waits_grow_and_are_bounded() -> None:
    waits = [backoff(n) for n in range(1, 12)]
    assert 0.5 <= waits[0] <= 1.0 and all(0 < w <= 30.0 for w in waits) and waits[-1] >= 29.5
