"""Redelivery decisions per destination, from tenacity's wait and stop strategies.

Attempts are persisted, not looped in memory, so the policy is asked one question after each
failed attempt: when is the next one, or is it over? tenacity supplies the arithmetic
(exponential backoff, jitter, attempt and age limits) so it is not rewritten here.
"""

from __future__ import annotations

import time

import tenacity

from gateway.config import RetryPolicy
from gateway.model import DeliveryResult, DeliveryState, Outcome
from gateway.store.base import Finish, Lease


class Backoff:
    """tenacity's wait and stop strategies, asked about one attempt of a loop tenacity does not run
    (attempts kept in the store, an adapter's reconnect loop): they read the attempt's number and
    age from a RetryCallState, made here for a Retrying that holds them."""

    def __init__(self, wait: tenacity.wait.wait_base, stop: tenacity.stop.stop_base = tenacity.stop_never) -> None:
        self._retrying = tenacity.Retrying(wait=wait, stop=stop)

    def _state(self, attempt: int, age: float) -> tenacity.RetryCallState:
        state = tenacity.RetryCallState(self._retrying, None, (), {})
        state.attempt_number = attempt
        state.start_time, state.outcome_timestamp = 0.0, age  # its seconds_since_start is `age`
        return state

    def wait(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1, 2, ...) before the next."""
        return float(self._retrying.wait(self._state(attempt, 0.0)))

    def stop(self, attempt: int, age: float) -> bool:
        """True when attempt `attempt`, failed `age` seconds after the first began, was the last."""
        return bool(self._retrying.stop(self._state(attempt, age)))


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
