"""A city's traffic over two weeks, for the console's statistics page: real agencies of a city, the
past days written by bench/generate_year.py's own writer (the store's Tally, as at commit time),
today's records submitted through the node. The page is then compared with what the API answers.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import random
import sys
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
        await gen.write_day(store, gen.day_rows(province, rows, node))
        total += len(rows)
    return total
