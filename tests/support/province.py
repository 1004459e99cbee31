"""A city's traffic over two weeks, for the console's statistics page: real agencies of a city, the
past days written by bench/generate_year.py's own writer (the store's Tally, as at commit time),
today's records submitted through the node. The page is then compared with what the API answers.

The past requests also get their time-limit clocks (arrest decision 7 days, prosecution review and
first-instance trial counted here as 30 and 60 calendar days): most answered in time, some late, a
few never answered and so overdue now.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import random
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from gateway.store.stats import SHANGHAI

ROOT = Path(__file__).resolve().parents[2]
# the three agencies of tests/support/config first (their keys and adapters stay), then the rest of the city
NAMES = {"POLICE": "太原市公安局小店分局", "PROC": "太原市小店区人民检察院", "COURT": "太原市小店区人民法院"}
MORE = [("PSB-YZ", "太原市公安局迎泽分局", "police"), ("PSB-XHL", "太原市公安局杏花岭分局", "police"),
        ("PSB-WBL", "太原市公安局万柏林分局", "police"), ("PSB-YQ", "阳曲县公安局", "police"),
        ("PRO-YZ", "太原市迎泽区人民检察院", "procuratorate"), ("PRO-TY", "太原市人民检察院", "procuratorate"),
        ("CRT-TY", "太原市中级人民法院", "court"), ("JUS-TY", "太原市司法局", "justice-bureau"),
        ("PRI-TY", "山西省太原第一监狱", "prison")]
LIMITS = {"request-arrest-approval": ("arrest-decision", 7), "transfer-for-prosecution": ("prosecution-review", 30),
          "indictment": ("first-instance-trial", 60)}
_CLOCK = ("INSERT INTO clocks (id, case_number, limit_id, terms, agency, message_id, period, state, created_at, "
          "started_at, basis_day, last_day, due_at, warn_at, next_warn_at, stopped_at, late_days) "
          "VALUES ({})").format(", ".join(["?"] * 17))
IDLE = "PSB-YQ"  # sends and receives nothing: the ranking names it


def generator() -> ModuleType:
    """bench/generate_year.py, loaded from its file (bench is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("generate_year", ROOT / "bench/generate_year.py")
    assert spec and spec.loader
    module = sys.modules.get("generate_year") or importlib.util.module_from_spec(spec)
    if "generate_year" not in sys.modules:
        sys.modules["generate_year"] = module
        spec.loader.exec_module(module)
    return module


def city(data: dict[str, Any]) -> None:
    """Give a test configuration the city's names and its other agencies (memory outbounds, no keys)."""
    for a in data["agencies"]:
        a["name"] = NAMES[a["code"]]
    data["agencies"] += [{"code": code, "name": name, "role": role,
                          "outbound": {"name": f"{code.lower()}-out", "adapter": "memory"}}
                         for code, name, role in MORE]


async def past_days(store: Any, node: str, last: dt.date, days: int, per_day: int = 60) -> int:
    """Write `days` days of the city's traffic ending the day before `last` (Shanghai days); returns records."""
    gen = generator()
    rng = random.Random(14)
    units = [{"code": c, "name": n, "role": r} for c, n, r in
             [(c, NAMES[c], r) for c, r in (("POLICE", "police"), ("PROC", "procuratorate"), ("COURT", "court"))]
             + MORE]
    province = gen.Province(units, rng)
    province.weights = [0.0 if u["code"] == IDLE else w or 1.0 for u, w in zip(units, province.weights, strict=True)]
    province.by_role["police"].remove(IDLE)  # nor is it sent anything
    total = 0
    for i in range(days, 0, -1):
        d = last - dt.timedelta(days=i)
        start = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() - SHANGHAI
        rows = province.day(start, per_day if d.weekday() < 5 else per_day // 4)
        batch = gen.day_rows(province, rows, node)
        await gen.write_day(store, batch)
        await _clocks(store, clocks(batch[0], batch[1], rng))
        total += len(rows)
    return total


def _start(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp() - SHANGHAI


def clocks(messages: list[tuple[Any, ...]], deliveries: list[tuple[Any, ...]], rng: random.Random
           ) -> list[tuple[Any, ...]]:
    """A clock per accepted request, for the agency it went to: answered in time, late, or not yet."""
    to = {d[1]: (d[2], d[12]) for d in deliveries}  # message id -> (destination, delivered at)
    out = []
    now = time.time()
    for m in messages:
        mid, case, action, status = m[0], m[6], m[8], m[9]
        if status != "accepted" or action not in LIMITS:
            continue
        limit, days = LIMITS[action]
        agency, started = to[mid]
        basis = dt.date.fromisoformat(time.strftime("%Y-%m-%d", time.gmtime(started + SHANGHAI)))
        last = basis + dt.timedelta(days=days)
        due = _start(last + dt.timedelta(days=1))
        answered: float | None = started + rng.uniform(0.2, 1.25) * days * 86400 if rng.random() > 0.1 else None
        if answered is not None and answered > now:
            answered = None
        late = None
        if answered is not None and answered >= due:
            late = (dt.date.fromisoformat(time.strftime("%Y-%m-%d", time.gmtime(answered + SHANGHAI))) - last).days
        warn = due - 2 * 86400
        out.append((uuid.uuid4().hex, case, limit, limit, agency, mid, 1, "running" if answered is None else "stopped",
                    started, started, basis.isoformat(), last.isoformat(), due, warn,
                    None if answered is not None else warn, answered, late))
    return out


async def _clocks(store: Any, rows: list[tuple[Any, ...]]) -> None:
    if hasattr(store, "dsn"):
        async def pg(tx: Any) -> None:
            async with tx.conn.cursor() as cur:
                await cur.executemany(_CLOCK.replace("?", "%s"), rows)

        await store._write(pg)
        return
    await store._write(lambda tx: tx.conn.executemany(_CLOCK, rows))
