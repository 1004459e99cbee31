"""tenacity's backoff arithmetic for loops tenacity does not run itself.

Redelivery keeps its attempts in the store and a drop adapter's reconnect loop runs for the node's
life; both still want tenacity's exponential waits, jitter and limits rather than their own.
"""

from __future__ import annotations

import tenacity


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
