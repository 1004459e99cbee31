"""Statistics per agency over a range of days, read from the daily aggregates (never the messages).

The figures of a day and of a range come from the same sums and the same merged hand-over
histograms, so a range is exactly the merge of its days. A figure with nothing under it is None
("no data", shown as a dash), never 0.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from gateway.store.stats import DAILY, bucket_value

MAX_DAYS = 400


class StatsError(ValueError):
    """A request for figures that cannot be answered, in Chinese and English; `param` names the input."""

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    role: str


@dataclass
class Sums:
    """The sums of some days of one agency, and what is derived from them."""

    n: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DAILY, 0))
    rules: Counter[str] = field(default_factory=Counter)
    hist: dict[str, Counter[int]] = field(default_factory=lambda: {"s": Counter(), "r": Counter()})

    def add(self, other: Sums) -> None:
        for k, v in other.n.items():
            self.n[k] += v
        self.rules.update(other.rules)
        for side in ("s", "r"):
            self.hist[side].update(other.hist[side])

    def figures(self) -> dict[str, Any]:
        n = self.n
        hs, hr = self.hist["s"], self.hist["r"]
        both = hs + hr if hs and hr else (hs or hr)
        p50, p90 = quantiles(both, (0.5, 0.9))
        return {
            "sent": n["sent"], "received": n["received"], "accepted": n["accepted"], "blocked": n["blocked"],
            "warned": n["warned"], "resends": n["resends"],
            "handover_ms_p50": p50, "handover_ms_p90": p90,
            "handover_ms_mean": _ratio(n["handover_ms"] + n["recv_handover_ms"],
                                       n["handover_n"] + n["recv_handover_n"]),
            "handovers": n["handover_n"] + n["recv_handover_n"],
            "sent_handover_ms_p50": quantiles(hs, (0.5,))[0] if hr else p50,
            "received_handover_ms_p50": quantiles(hr, (0.5,))[0] if hs else p50,
            "resend_ms_mean": _ratio(n["resend_ms"], n["resends"]),
            "answers": n["answers"], "answer_ms_mean": _ratio(n["answer_ms"], n["answers"]),
            "first_submissions": n["first_sub"],
            "first_pass_rate": _ratio(n["first_pass"], n["first_sub"]),
            "dossier_required": n["dossier_req"],
            "dossier_complete_rate": _ratio(n["dossier_ok"], n["dossier_req"]),
            "resend_rate": _ratio(n["resends"], n["sent"]),
        }


def _ratio(a: int, b: int) -> float | None:
    return None if b == 0 else round(a / b, 6)


def quantiles(hist: Counter[int], qs: tuple[float, ...]) -> list[float | None]:
    """The qs-quantiles (ascending) of a bucketed histogram, each as its bucket's middle value; None
    when empty. One walk over the sorted buckets for all of them."""
    total = sum(hist.values())
    if total == 0:
        return [None] * len(qs)
    ranks = [max(1, math.ceil(q * total)) for q in qs]
    out: list[float | None] = []
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        while len(out) < len(ranks) and seen >= ranks[len(out)]:
            out.append(round(bucket_value(b), 1))
        if len(out) == len(ranks):
            break
    return out


def parse_day(text: str, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise StatsError(f"{what} 日期“{text}”不是 YYYY-MM-DD / {what}: '{text}' is not a date YYYY-MM-DD",
                         what) from None


def days_between(first: str, last: str) -> list[str]:
    a, b = parse_day(first, "from"), parse_day(last, "to")
    if b < a:
        raise StatsError(f"结束日期早于开始日期 / to ({last}) is before from ({first})", "to")
    if (b - a).days >= MAX_DAYS:
        raise StatsError(f"一次最多查询 {MAX_DAYS} 天 / at most {MAX_DAYS} days at once", "to")
    return [(a + dt.timedelta(days=i)).isoformat() for i in range((b - a).days + 1)]


def daily_sums(rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]
               ) -> dict[tuple[str, str], Sums]:
    """(day, agency) -> Sums, from the store's rows."""
    out: dict[tuple[str, str], Sums] = defaultdict(Sums)
    daily, rules, hist = rows
    for r in daily:
        out[(r[0], r[1])].n = dict(zip(DAILY, (int(v) for v in r[2:]), strict=True))
    for day, agency, rule, n in rules:
        out[(day, agency)].rules[rule] += int(n)
    for day, agency, side, b, n in hist:
        out[(day, agency)].hist[side][int(b)] += int(n)
    return out


def report(rows: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]], units: list[Unit],
           first: str, last: str, top: int = 5) -> dict[str, Any]:
    """The answer of GET /api/v1/stats for these units (STATS-CONTRACT): every day of the range each."""
    days = days_between(first, last)
    sums = daily_sums(rows)
    agencies = []
    empty = Sums().figures()
    for u in units:
        total = Sums()
        per_day = []
        for d in days:
            s = sums.get((d, u.code))
            if s is None:
                per_day.append({"day": d, **empty})
                continue
            total.add(s)
            per_day.append({"day": d, **s.figures()})
        totals: dict[str, Any] = total.figures()
        totals["top_rules"] = [{"rule": r, "count": c} for r, c in total.rules.most_common(top)]
        agencies.append({"agency": u.code, "name": u.name, "role": u.role, "days": per_day, "total": totals})
    return {"from": first, "to": last, "agencies": agencies}
