"""Statistics and rankings for a configuration's agencies, read from a store: what the API, the CLI,
the export and the demo all call, so they cannot disagree."""

from __future__ import annotations

import time
from typing import Any, Protocol

from gateway.config import GatewayConfig
from gateway.stats.ranking import RankingStore, only_role, ranking
from gateway.stats.report import StatsError, Unit, report
from gateway.stats.timelimits import ClockFigureStore, add_to_totals
from gateway.store.stats import day_of


class StatsStore(RankingStore, ClockFigureStore, Protocol):
    """What the statistics read: the daily aggregates, frozen rankings, and the clocks."""


def units(config: GatewayConfig, agency: str | None = None) -> list[Unit]:
    """The configured agencies (one, when `agency` is given) as units with their name and role."""
    out = [Unit(a.code, a.name, a.role) for a in config.agencies if agency is None or a.code == agency]
    if agency is not None and not out:
        raise StatsError(f"没有代码为“{agency}”的单位 / no agency with code '{agency}'", "agency")
    return out


def default_range(first: str | None, last: str | None) -> tuple[str, str]:
    """The last 30 days up to today (Asia/Shanghai) unless given."""
    now = time.time()
    return first or day_of(now - 29 * 86400), last or day_of(now)


async def stats(store: StatsStore, config: GatewayConfig, first: str | None, last: str | None,
                agency: str | None = None, now: float | None = None) -> dict[str, Any]:
    """The figures of a range; `now` is when the clocks overdue are counted (default: this moment)."""
    a, b = default_range(first, last)
    return await add_to_totals(report(await store.stats_rows(a, b, agency), units(config, agency), a, b), store, now)


async def rankings(store: RankingStore, config: GatewayConfig, day: str | None, role: str | None = None,
                   actor: str = "gateway") -> dict[str, Any]:
    d = day or day_of(time.time())
    r = await ranking(store, units(config), d, config.gateway.stats.ranking_score, actor)
    return only_role(r, role)
