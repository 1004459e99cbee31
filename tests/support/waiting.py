"""Polling until a condition holds, so tests wait for outcomes instead of sleeping fixed times."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any


async def wait_for(pred: Callable[[], Any | Awaitable[Any]], timeout: float = 10.0, what: str = "condition",
                   interval: float = 0.02) -> None:
    """Poll `pred` (plain or async) inside the running loop until it is true; fail after `timeout` s."""
    end = time.monotonic() + timeout
    while True:
        got = pred()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return
        assert time.monotonic() < end, f"{what} not reached within {timeout} s"
        await asyncio.sleep(interval)


def wait_until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition",
               interval: float = 0.05) -> float:
    """The same outside an event loop (blocking); returns the seconds it took."""
    started = time.monotonic()
    while not pred():
        assert time.monotonic() - started < timeout, f"{what} not reached within {timeout} s"
        time.sleep(interval)
    return time.monotonic() - started
