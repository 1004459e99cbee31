"""The daily ranking of the units of each role, and its freezing into the exchange log.

Units are ordered by the configured score (`gateway.stats.ranking_score`): rates from high to
low, times and the resend rate from low to high, a unit without a figure after those with one,
then by code. A unit with no record sent or received on a working day, or at 0% on a rate of the
score, is flagged so the list names it, as the supervision platforms do.

Once a day is over (plus a grace period for records that arrived before midnight and committed
just after) its ranking is computed once, written into the exchange log as a `ranking-frozen`
entry through the store's one audit path, and always served from that entry afterwards: a later
rebuild or a changed score never re-ranks a past day.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from typing import Any, Protocol

from gateway.audit.chain import AuditEntry, AuditEvent
from gateway.stats.report import Unit, daily_sums, parse_day
from gateway.store.stats import RANKING_ACTION, SHANGHAI, day_of

GRACE_SECONDS = 300.0
LOWER_IS_BETTER = frozenset({"handover_ms_p50", "handover_ms_p90", "handover_ms_mean", "resend_rate"})
RATES = frozenset({"first_pass_rate", "dossier_complete_rate"})

try:  # the official holiday and adjusted-working-day table, when installed
    import chinese_calendar as _cn_calendar  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on the environment
    _cn_calendar = None


class RankingStore(Protocol):
    async def stats_rows(self, first: str, last: str, agency: str | None = None
                         ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]: ...

    async def frozen_ranking(self, day: str) -> AuditEntry | None: ...

    async def freeze_ranking(self, day: str, event: AuditEvent) -> AuditEntry: ...


def working_day(day: dt.date) -> bool:
    """China's official calendar (holidays and adjusted weekends) when `chinese_calendar` is installed
    and knows the year; otherwise Monday to Friday."""
    if _cn_calendar is not None:
        try:
            return bool(_cn_calendar.is_workday(day))
        except NotImplementedError:  # a year the table does not cover
            pass
    return day.weekday() < 5


def day_over(day: str, now: float | None = None) -> bool:
    """Whether the Asia/Shanghai day is over, with the grace period."""
    end = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC).timestamp() + 86400 - SHANGHAI
    return (time.time() if now is None else now) >= end + GRACE_SECONDS


def rank(rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]], units: Sequence[Unit],
         day: str, score: Sequence[str]) -> dict[str, Any]:
    """The ranking of one day from its aggregate rows (not frozen)."""
    sums = daily_sums(rows)
    works = working_day(parse_day(day, "day"))
    roles: dict[str, list[dict[str, Any]]] = {}
    for u in units:
        s = sums.get((day, u.code))
        f = s.figures() if s else {}
        records = int(f.get("sent", 0)) + int(f.get("received", 0))
        entry = {"agency": u.code, "name": u.name, **{m: f.get(m) for m in score},
                 "first_pass_rate": f.get("first_pass_rate"), "dossier_complete_rate": f.get("dossier_complete_rate"),
                 "handover_ms_p50": f.get("handover_ms_p50"), "records": records,
                 "zero_activity": works and records == 0,
                 "zero_rate": any(f.get(m) == 0 for m in score if m in RATES)}
        roles.setdefault(u.role, []).append(entry)
    out = []
    for role, entries in roles.items():
        entries.sort(key=lambda e: (*(_key(m, e.get(m)) for m in score), e["agency"]))
        for i, e in enumerate(entries, 1):
            e["rank"] = i
        out.append({"role": role, "units": [{"rank": e.pop("rank"), **e} for e in entries]})
    return {"day": day, "frozen": False, "working_day": works, "score": list(score), "roles": out}


def _key(metric: str, value: Any) -> tuple[int, float]:
    if value is None:
        return (1, 0.0)
    return (0, float(value) if metric in LOWER_IS_BETTER else -float(value))


async def ranking(store: RankingStore, units: Sequence[Unit], day: str, score: Sequence[str], actor: str,
                  now: float | None = None) -> dict[str, Any]:
    """The ranking of a day: from the exchange log once frozen; frozen now if the day is over."""
    parse_day(day, "day")
    entry = await store.frozen_ranking(day)
    if entry is None:
        r = rank(await store.stats_rows(day, day), units, day, score)
        if not day_over(day, now):
            return r
        entry = await store.freeze_ranking(day, AuditEvent(
            RANKING_ACTION, actor, f"ranking-{day}", "", "", {**r, "frozen": True}))
    return {**json.loads(entry.detail), "frozen": True, "log_seq": entry.seq}


async def freeze_finished_days(store: RankingStore, units: Sequence[Unit], score: Sequence[str], actor: str,
                               days_back: int = 7, now: float | None = None) -> list[str]:
    """Freeze the rankings of the last finished days with traffic not frozen yet (the node does this
    after midnight)."""
    t = time.time() if now is None else now
    done = []
    for i in range(days_back, 0, -1):
        day = day_of(t - i * 86400)
        if day_over(day, t) and await store.frozen_ranking(day) is None:
            if not (await store.stats_rows(day, day))[0]:
                continue  # no record at all that day (before the node's first one): nothing to rank
            await ranking(store, units, day, score, actor, t)
            done.append(day)
    return done


def only_role(r: dict[str, Any], role: str | None) -> dict[str, Any]:
    return r if role is None else {**r, "roles": [x for x in r["roles"] if x["role"] == role]}
