"""The time clocks are kept by: one object, so tests and the demo run seven days in seconds.

The store's clock writes (start, stop) and the scanner both ask the same `Clock`; nothing sleeps
to make time pass. `ScaledClock` runs N times faster from a fixed origin, so several nodes given
the same origin and scale agree on the time.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ScaledClock:
    """Time that runs `scale` times faster than the wall clock from `origin` (seconds since the epoch)."""

    def __init__(self, scale: float, origin: float | None = None) -> None:
        self.scale = scale
        self.origin = time.time() if origin is None else origin

    def now(self) -> float:
        return self.origin + (time.time() - self.origin) * self.scale


class FakeClock:
    """Time that moves only when told to (tests)."""

    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
