"""A TEST DOUBLE of the statistics API (GET /api/v1/stats and /api/v1/rankings), for console tests only.

It answers in the shape the statistics backend and the console agreed on, from a fixed dataset made
here (not from the store): a city's police bureaus, procuratorates and courts over two weeks, with
blocks, resends, hand-over times, rule findings, one unit with no activity and one at 0% dossier
completeness. The figures hang together (accepted + blocked = sent; rates are ratios of the counts;
null where there is nothing to measure), so a page that shows them wrongly is caught. Once the
backend serves these routes from the store, the console tests read them from there instead.
"""

from __future__ import annotations

import random
import statistics
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query

from gateway.api.auth import ReaderKey

# code, name, role; the three codes of tests/support/config first so the test gateway's agencies are in it
AGENCIES = [
    ("POLICE", "太原市公安局小店分局", "police"),
    ("PROC", "太原市小店区人民检察院", "procuratorate"),
    ("COURT", "太原市小店区人民法院", "court"),
    ("PSB-YZ", "太原市公安局迎泽分局", "police"),
    ("PSB-XHL", "太原市公安局杏花岭分局", "police"),
    ("PSB-WBL", "太原市公安局万柏林分局", "police"),
    ("PSB-YQ", "阳曲县公安局", "police"),  # no activity at all: named in the ranking
    ("PRO-YZ", "太原市迎泽区人民检察院", "procuratorate"),
    ("PRO-TY", "太原市人民检察院", "procuratorate"),
    ("CRT-YZ", "太原市迎泽区人民法院", "court"),
    ("CRT-TY", "太原市中级人民法院", "court"),
]
IDLE = {"PSB-YQ"}
NO_DOSSIER = {"PSB-WBL"}  # uploads its records but never a complete dossier: 0% in the ranking
RULES = ["EV-DD-01", "DOS-02", "ACC-PR-01", "ID-01", "DATE-02", "EV-TH-03", "CODE-04"]  # ids of the standard
START = date(2026, 11, 12)
DAYS = 14
SCORE = ["first_pass_rate", "dossier_complete_rate", "handover_ms_p50"]


def _day(rng: random.Random, code: str, role: str, d: date) -> dict[str, Any]:
    busy = {"police": 40, "procuratorate": 14, "court": 8}[role]
    weekend = d.weekday() >= 5
    sent = 0 if code in IDLE else max(0, int(rng.gauss(busy * (0.3 if weekend else 1), busy / 4)))
    blocked = sum(rng.random() < 0.12 for _ in range(sent))
    warned = sum(rng.random() < 0.2 for _ in range(sent - blocked))
    dossier_due = sent - blocked if role == "police" else 0
    dossier_ok = 0 if code in NO_DOSSIER else sum(rng.random() < 0.9 for _ in range(dossier_due))
    p50 = round(rng.uniform(800, 4000), 1) if sent else None
    p90 = round(p50 * rng.uniform(2.0, 4.5), 1) if p50 else None
    return {"day": d.isoformat(), "sent": sent, "received": 0 if code in IDLE else int(rng.uniform(0.5, 1.2) * busy),
            "accepted": sent - blocked, "blocked": blocked, "warned": warned,
            "resends": sum(rng.random() < 0.8 for _ in range(blocked)),
            "handover_ms_p50": p50, "handover_ms_p90": p90,
            "handover_ms_mean": round((p50 + p90) / 2.2, 1) if p50 and p90 else None,
            "first_pass_rate": round((sent - blocked) / sent, 4) if sent else None,
            "dossier_complete_rate": round(dossier_ok / dossier_due, 4) if dossier_due else None,
            "_findings": blocked + warned, "_dossier": (dossier_ok, dossier_due)}


def _dataset() -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(14)
    return {code: [_day(rng, code, role, START + timedelta(days=i)) for i in range(DAYS)]
            for code, _, role in AGENCIES}


DATA = _dataset()
PUBLIC = ("day", "sent", "received", "accepted", "blocked", "warned", "resends", "handover_ms_p50",
          "handover_ms_p90", "handover_ms_mean", "first_pass_rate", "dossier_complete_rate")


def _total(code: str, days: list[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {k: sum(d[k] for d in days) for k in ("sent", "received", "accepted", "blocked",
                                                                  "warned", "resends")}
    timed = [d for d in days if d["handover_ms_p50"] is not None]
    for k in ("handover_ms_p50", "handover_ms_p90", "handover_ms_mean"):
        total[k] = round(statistics.median(d[k] for d in timed), 1) if timed else None
    total["first_pass_rate"] = round(total["accepted"] / total["sent"], 4) if total["sent"] else None
    ok, due = (sum(d["_dossier"][i] for d in days) for i in (0, 1))
    total["dossier_complete_rate"] = round(ok / due, 4) if due else None
    findings = sum(d["_findings"] for d in days)
    weights = [random.Random(f"{code}{r}").uniform(0.2, 3) for r in RULES]  # each unit's own mix of defects
    shares = [int(findings * w / sum(weights)) for w in weights]
    top = sorted(zip(RULES, shares, strict=True), key=lambda x: -x[1])
    total["top_rules"] = [{"rule": r, "count": n} for r, n in top if n]
    return total


def stats(start: date, end: date) -> dict[str, Any]:
    """GET /api/v1/stats as the contract shapes it, for the days from `start` to `end`."""
    out = []
    for code, name, role in AGENCIES:
        days = [d for d in DATA[code] if start.isoformat() <= d["day"] <= end.isoformat()]
        out.append({"agency": code, "name": name, "role": role,
                    "days": [{k: d[k] for k in PUBLIC} for d in days], "total": _total(code, days)})
    return {"from": start.isoformat(), "to": end.isoformat(), "agencies": out}


def rankings(day: date) -> dict[str, Any]:
    """GET /api/v1/rankings for one day: per role, by first-pass rate, dossier completeness, hand-over."""
    roles: dict[str, list[dict[str, Any]]] = {}
    for code, name, role in AGENCIES:
        d = next((x for x in DATA[code] if x["day"] == day.isoformat()), None)
        unit = {"agency": code, "name": name, "records": d["sent"] if d else 0,
                **{k: (d[k] if d else None) for k in SCORE}}
        unit["zero_activity"] = unit["records"] == 0
        unit["zero_rate"] = any(unit[k] == 0 for k in ("first_pass_rate", "dossier_complete_rate"))
        roles.setdefault(role, []).append(unit)

    def order(u: dict[str, Any]) -> tuple[Any, ...]:
        return (u["zero_activity"], -(u["first_pass_rate"] or 0), -(u["dossier_complete_rate"] or 0),
                u["handover_ms_p50"] or 0)

    out = []
    for role, units in roles.items():
        ranked = sorted(units, key=order)
        out.append({"role": role, "units": [{"rank": i + 1, **u} for i, u in enumerate(ranked)]})
    return {"day": day.isoformat(), "frozen": day < START + timedelta(days=DAYS), "score": SCORE, "roles": out}


def mount(app: FastAPI) -> None:
    """Register the double's two routes on a test gateway's app (operator and auditor keys)."""

    @app.get("/api/v1/stats", tags=["test double"])
    async def get_stats(_: ReaderKey, start: Annotated[date, Query(alias="from")],
                        end: Annotated[date, Query(alias="to")]) -> dict[str, Any]:
        if start > end:
            raise HTTPException(422, "from is after to")
        return stats(start, end)

    @app.get("/api/v1/rankings", tags=["test double"])
    async def get_rankings(_: ReaderKey, day: date) -> dict[str, Any]:
        return rankings(day)
