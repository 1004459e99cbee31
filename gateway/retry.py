"""Redelivery decisions per destination, from tenacity's wait and stop strategies.

Attempts are persisted, not looped in memory, so the policy is asked one question after each
failed attempt: when is the next one, or is it over? tenacity supplies the arithmetic
(exponential backoff, jitter, attempt and age limits) so it is not rewritten here.
"""

from __future__ import annotations

import time

import tenacity

from gateway.backoff import Backoff
from gateway.config import RetryPolicy
from gateway.model import DeliveryResult, DeliveryState, Outcome
from gateway.store.base import Finish, Lease


class Redelivery:
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.backoff = Backoff(
            tenacity.wait_exponential(multiplier=policy.initial_backoff, exp_base=policy.multiplier,
                                      max=policy.max_backoff) + tenacity.wait_random(0, policy.jitter),
            tenacity.stop_after_attempt(policy.max_attempts) | tenacity.stop_after_delay(policy.max_age))

    def decide(self, lease: Lease, result: DeliveryResult, started_at: float) -> Finish:
        now = time.time()
        if result.outcome == Outcome.DELIVERED:
            return Finish(DeliveryState.DELIVERED, result.detail, receipt=result.receipt, started_at=started_at)
        if result.outcome == Outcome.PERMANENT:
            return Finish(DeliveryState.DEAD, f"the receiver refused the record: {result.detail}",
                          receipt=result.receipt, started_at=started_at)
        if self.backoff.stop(lease.attempt, now - lease.created_at):
            why = (f"gave up after {lease.attempt} attempts" if lease.attempt >= self.policy.max_attempts
                   else f"gave up: the record waited longer than {self.policy.max_age:.0f} s")
            return Finish(DeliveryState.DEAD, f"{why}; last error: {result.detail}", started_at=started_at)
        delay = self.backoff.wait(lease.attempt)
        return Finish(DeliveryState.RETRYING, result.detail, next_attempt_at=now + delay, started_at=started_at)
