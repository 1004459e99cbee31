"""Benchmark: statistics on a generated year (bench/generate_year.py), and what keeping them costs intake.

On the store a configuration names (SQLite or PostgreSQL), it times, median of `--repeat` runs:
  * the figures of one agency over 30 days, as GET /api/v1/stats answers them (store read, report,
    JSON text; target < 200 ms);
  * the ranking of one day over every agency, computed from the aggregates (a day not frozen yet,
    the costlier case) and read back from the exchange log once frozen (target < 200 ms);
  * the XLSX export of a month over every agency (target < 2 s).

With `--intake BASELINE_TREE`, it then runs bench/http_pipeline.py of the baseline checkout (e.g.
`git archive BASE | tar -x -C /tmp/base`) and of this tree in turns (A B A B ...), and prints the gateway's
CPU per record and the sustained rate of each round with the ratios, so load from elsewhere on
the machine falls on both alike.

    python bench/stats.py --config /tmp/province/gateway.yaml [--repeat 7]
                          [--intake /tmp/base --rounds 3 --records 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import load_config  # noqa: E402
from gateway.stats import export, service  # noqa: E402
from gateway.stats.ranking import rank  # noqa: E402
from gateway.store import make_store  # noqa: E402
from gateway.store.stats import day_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, Any]:
    """Median milliseconds of `repeat` runs (after one warm-up), and the last result; prints this
    process's CPU milliseconds too, as the machine is shared (for SQLite that is all of the work)."""
    result = await fn()
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = await fn()
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    print(f"  (wall {min(times):.1f}..{max(times):.1f} ms, this process's CPU median {statistics.median(cpu):.1f} ms)")
    return statistics.median(times), result


async def queries(config_path: Path, repeat: int) -> None:
    cfg = load_config(config_path)
    store = make_store(cfg)
    await store.open()
    try:
        daily = (await store.stats_rows("1970-01-01", "2999-12-31"))[0]
        busiest = max({r[1] for r in daily}, key=lambda a: sum(r[2] for r in daily if r[1] == a))
        today = day_of(time.time())
        first = day_of(time.time() - 29 * 86400)
        backend = cfg.gateway.store.backend
        print(f"store: {backend}, {sum(r[2] for r in daily):,} records in {len(daily):,} agency-days; "
              f"{len(cfg.agencies)} agencies")

        async def one_agency() -> str:
            return json.dumps(await service.stats(store, cfg, first, today, busiest), ensure_ascii=False)

        ms, body = await timed(one_agency, repeat)
        print(f"stats of {busiest} over 30 days ({first}..{today}): {ms:.1f} ms ({len(body):,} bytes of JSON) "
              f"[target < 200 ms: {'met' if ms < 200 else 'MISSED'}]")
        units = service.units(cfg)
        score = cfg.gateway.stats.ranking_score

        busy = day_of(time.time() - 86400)
        while dt.date.fromisoformat(busy).weekday() >= 5:  # a working day's traffic
            busy = day_of(dt.datetime.fromisoformat(busy).timestamp() - 43200)

        async def rank_day() -> str:
            return json.dumps(rank(await store.stats_rows(busy, busy), units, busy, score), ensure_ascii=False)

        ms, body = await timed(rank_day, repeat)
        print(f"ranking of {busy} over {len(units)} agencies, computed: {ms:.1f} ms ({len(body):,} bytes) "
              f"[target < 200 ms: {'met' if ms < 200 else 'MISSED'}]")
        past = busy

        async def rank_frozen() -> str:
            return json.dumps(await service.rankings(store, cfg, past, actor="bench"), ensure_ascii=False)

        ms, body = await timed(rank_frozen, repeat)
        print(f"ranking of {past} over {len(units)} agencies, frozen, read from the exchange log: {ms:.1f} ms "
              f"[target < 200 ms: {'met' if ms < 200 else 'MISSED'}]")
        month = day_of(time.time() - 35 * 86400)[:7]

        async def xlsx() -> bytes:
            return await export.month(store, cfg, month, "xlsx")

        ms, data = await timed(xlsx, max(1, repeat // 2))
        print(f"XLSX export of {month} over {len(units)} agencies: {ms:.0f} ms ({len(data):,} bytes) "
              f"[target < 2 s: {'met' if ms < 2000 else 'MISSED'}]")
    finally:
        await store.close()


_SUSTAINED = re.compile(r"sustained: .*delivered end to end ([\d,]+)/s.*gateway CPU ([\d.]+) ms per record")


def pipeline_round(tree: Path, records: int) -> tuple[float, float]:
    """(records/s, gateway CPU ms per record) of bench/http_pipeline.py in `tree`, with its own venv if it
    has one, else this one's (the script puts its own tree first on the path)."""
    python = tree / ".venv" / "bin" / "python"
    if not python.exists():
        python = Path(sys.executable)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # read the baseline checkout, never write into it
    r = subprocess.run([str(python), str(tree / "bench" / "http_pipeline.py"), "--records", str(records),
                        "--latency-records", "0", "--durability", "full"], capture_output=True, text=True,
                       cwd=tree, timeout=900, env=env)
    m = _SUSTAINED.search(r.stdout)
    if m is None:
        raise RuntimeError(f"no sustained figures from {tree}: {r.stdout[-800:]} {r.stderr[-800:]}")
    return float(m.group(1).replace(",", "")), float(m.group(2))


def intake(baseline: Path, rounds: int, records: int) -> None:
    print(f"\nintake, bench/http_pipeline.py --records {records} --durability full, in turns "
          f"(baseline {baseline}, then this tree {ROOT}):")
    cpu, rate = [], []
    for i in range(1, rounds + 1):
        b_rate, b_cpu = pipeline_round(baseline, records)
        s_rate, s_cpu = pipeline_round(ROOT, records)
        cpu.append(s_cpu / b_cpu)
        rate.append(s_rate / b_rate)
        print(f"  round {i}: baseline {b_rate:,.0f}/s {b_cpu:.3f} ms CPU/record; with statistics {s_rate:,.0f}/s "
              f"{s_cpu:.3f} ms CPU/record (x{s_cpu / b_cpu:.3f} CPU, x{s_rate / b_rate:.3f} rate)")
    c = statistics.median(cpu)
    print(f"  median of {rounds} rounds: x{c:.3f} gateway CPU per record ({(c - 1) * 100:+.1f}%), "
          f"x{statistics.median(rate):.3f} records/s [target: added cost < 5%]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="configuration of a generated store")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--intake", type=Path, metavar="BASELINE_TREE", help="checkout to compare intake cost with")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--records", type=int, default=3000)
    args = ap.parse_args()
    if args.config:
        asyncio.run(queries(args.config, args.repeat))
    if args.intake:
        intake(args.intake, args.rounds, args.records)


if __name__ == "__main__":
    main()
