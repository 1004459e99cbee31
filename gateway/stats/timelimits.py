"""Time-limit figures in the statistics, per agency as the one responsible for answering: clocks
answered on time and answered late within the range (by the day of the answer, Asia/Shanghai), and
clocks overdue now. Read from the clocks table when asked, not kept as daily aggregates: "overdue now"
is a live count (running past their last day at the moment of the request), the same whatever range.
The monthly export's daily sheet has the answers per day; "overdue now" is no day's figure, so its
daily cells stay empty and the month's summary carries it.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Protocol

from gateway.store.stats import SHANGHAI

FIELDS = ("clocks_on_time", "clocks_late", "clocks_overdue_now")


class ClockFigureStore(Protocol):
    async def clock_figures(self, start: float, end: float, now: float) -> list[tuple[str, int, int, int]]: ...


def window(first: str, last: str) -> tuple[float, float]:
    """Unix times of the start of `first` and of the day after `last`, both Shanghai days."""
    def start(day: dt.date) -> float:
        return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() - SHANGHAI

    return start(dt.date.fromisoformat(first)), start(dt.date.fromisoformat(last) + dt.timedelta(days=1))


async def add_to_totals(report: dict[str, Any], store: ClockFigureStore, now: float | None = None) -> dict[str, Any]:
    """Put the three figures into each agency's `total` of a statistics answer (0 when it has none)."""
    rows = await store.clock_figures(*window(report["from"], report["to"]), time.time() if now is None else now)
    by_agency = {r[0]: r[1:] for r in rows}
    for a in report["agencies"]:
        a["total"].update(zip(FIELDS, by_agency.get(a["agency"], (0, 0, 0)), strict=True))
    return report


async def add_to_days(report: dict[str, Any], store: ClockFigureStore) -> dict[str, Any]:
    """Put the clocks answered on time and late into each agency's days (one query per day of the range)."""
    for day in {d["day"] for a in report["agencies"] for d in a["days"]}:
        by_agency = {r[0]: r[1:3] for r in await store.clock_figures(*window(day, day), 0.0)}  # 0: none overdue
        for a in report["agencies"]:
            for d in a["days"]:
                if d["day"] == day:
                    d.update(zip(FIELDS[:2], by_agency.get(a["agency"], (0, 0)), strict=True))
    return report
