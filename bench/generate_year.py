"""Fill a store with a year of a province's traffic, for the statistics benchmarks and the demo.

Not through HTTP: rows go straight into the store's tables through its own writer, a day per
transaction: messages (payloads already pruned, as retention leaves a year-old record), their
deliveries (delivered, a delay drawn from a long-tailed distribution), one `received` entry per
record on the exchange log's one chain, and the daily aggregates computed by the same `Tally` the
store uses at commit time. So `gateway stats rebuild` on the result gives the same numbers.

The mix: police, procuratorates, courts, justice bureaus and prisons (60/20/15/2.5/2.5%), each
sending its role's actions (request arrest approval, transfer for prosecution, indictment,
judgment, ...) to a unit of the role that takes them; each unit blocks at its own rate (2-30%),
mostly on evidence and acceptance rules, some on the dossier; a blocked record is resent the same
day after a delay (most within hours) and passes or is blocked again; weekends carry a quarter of
a weekday's traffic, and a few units send nothing at all.

    python bench/generate_year.py --agencies 200 --records 1000000 --out /tmp/province \
        [--backend postgres --dsn postgresql://...] [--end 2026-11-26] [--seed 7]

writes OUT/gateway.yaml (the agencies, SQLite store under OUT/data unless --dsn) and the store.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.audit.chain import AuditEvent  # noqa: E402
from gateway.config import parse_config  # noqa: E402
from gateway.store import make_store  # noqa: E402
from gateway.store.stats import POSTGRES, SHANGHAI, SQLITE, StatsSQL, Tally, chain_key  # noqa: E402

ROLES = [("police", 0.60, "公安局"), ("procuratorate", 0.20, "人民检察院"), ("court", 0.15, "人民法院"),
         ("justice-bureau", 0.025, "司法局"), ("prison", 0.025, "监狱")]
CITIES = ["太原", "大同", "阳泉", "长治", "晋城", "朔州", "晋中", "运城", "忻州", "临汾", "吕梁"]
# what each role sends: (stage, action, role it goes to, weight)
SENDS: dict[str, list[tuple[str, str, str, float]]] = {
    "police": [("arrest-review", "request-arrest-approval", "procuratorate", 0.45),
               ("prosecution-review", "transfer-for-prosecution", "procuratorate", 0.55)],
    "procuratorate": [("arrest-review", "approve-arrest", "police", 0.35), ("arrest-review", "refuse-arrest", "police",
                                                                            0.08),
                      ("prosecution-review", "return-supplementary-investigation", "police", 0.12),
                      ("trial", "indictment", "court", 0.45)],
    "court": [("trial", "accept-case", "procuratorate", 0.3), ("trial", "judgment", "procuratorate", 0.55),
              ("execution", "execution-notice", "prison", 0.15)],
    "justice-bureau": [("execution", "commutation-proposal", "court", 1.0)],
    "prison": [("execution", "offender-received", "court", 0.6), ("execution", "commutation-proposal", "court", 0.4)],
}
BLOCK_RULES = {"transfer-for-prosecution": ["ACC-PR-11", "ACC-PR-12", "DOS-01", "EV-DD-01", "EV-TH-02"],
               "indictment": ["ACC-CT-01", "ACC-CT-02", "DOS-01", "ACC-CT-03"]}
OTHER_BLOCKS = ["standard.schema", "DATE-01", "ID-01", "CODE-02"]
WARN_RULES = ["ACC-PR-14", "DOS-03", "DATE-05", "CODE-08"]


def agencies(n: int, rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for role, share, suffix in ROLES:
        for i in range(max(1, round(n * share))):
            city = CITIES[i % len(CITIES)]
            out.append({"code": f"{role[:4].upper()}-{i + 1:03d}", "name": f"{city}市第{i + 1}{suffix}", "role": role})
    return out[:n] if len(out) > n else out


def config_file(out: Path, units: list[dict[str, Any]], dsn: str | None) -> Path:
    store: dict[str, Any] = {"durability": "normal"}
    if dsn:
        os.environ.setdefault("GATEWAY_BENCH_DSN", dsn)
        store = {"backend": "postgres", "dsn": {"env": "GATEWAY_BENCH_DSN"}}
    cfg = {"gateway": {"node": "generator", "data_dir": str(out / "data"), "store": store},
           "agencies": [{**u, "outbound": {"name": f"{u['code'].lower()}-out", "adapter": "memory"}} for u in units]}
    path = out / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class Province:
    def __init__(self, units: list[dict[str, Any]], rng: random.Random) -> None:
        self.rng = rng
        self.units = units
        self.by_role: dict[str, list[str]] = {}
        for u in units:
            self.by_role.setdefault(u["role"], []).append(u["code"])
        idle = {u["code"] for u in rng.sample(units, max(1, len(units) // 40))}  # units that never send
        self.block_rate = {u["code"]: rng.uniform(0.02, 0.30) for u in units}
        weights = [0.0 if u["code"] in idle else rng.lognormvariate(0, 0.6) for u in units]
        self.senders = [u for u in units]
        self.weights = weights
        self.case = 0

    def day(self, start: float, count: int) -> list[tuple[Any, ...]]:
        """(received_at, sender, role, stage, action, destination, case, outcome rules...) of one day."""
        rng = self.rng
        rows: list[tuple[Any, ...]] = []
        for u in rng.choices(self.senders, self.weights, k=count):
            stage, action, to, _ = rng.choices(SENDS[u["role"]], [s[3] for s in SENDS[u["role"]]])[0]
            dest = rng.choice(self.by_role[to])
            self.case += 1
            case = f"C{time.strftime('%Y', time.gmtime(start))}-{self.case:07d}"
            t = start + rng.betavariate(2.5, 2.5) * 86400 * 0.95  # office hours weigh most
            while True:
                problems = self.judge(u["code"], action)
                rows.append((t, u["code"], stage, action, dest, case, problems))
                if not any(p["severity"] == "block" for p in problems):
                    break
                t += min(rng.expovariate(1 / 7200), 86400)  # resent after hours, sometimes the next day
                if rng.random() < 0.1:
                    break  # never resent
        return rows

    def judge(self, sender: str, action: str) -> list[dict[str, Any]]:
        rng = self.rng
        if rng.random() < self.block_rate[sender]:
            rules = BLOCK_RULES.get(action, OTHER_BLOCKS) if rng.random() < 0.8 else OTHER_BLOCKS
            return [{"rule": r, "severity": "block"} for r in set(rng.choices(rules, k=rng.choice((1, 1, 2))))]
        if rng.random() < 0.1:
            return [{"rule": rng.choice(WARN_RULES), "severity": "warn"}]
        return []

    def delay(self) -> float:
        """Arrival to confirmed delivery: seconds mostly, minutes when a receiver is slow, hours when down."""
        r = self.rng.random()
        if r < 0.9:
            return self.rng.lognormvariate(0.0, 0.7)
        if r < 0.99:
            return self.rng.uniform(30, 1800)
        return self.rng.uniform(3600, 6 * 3600)


def day_rows(p: Province, rows: list[tuple[Any, ...]], node: str
             ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[AuditEvent], Tally]:
    messages, deliveries, events = [], [], []
    t = Tally()
    for at, sender, stage, action, dest, case, problems in sorted(rows, key=lambda r: r[0]):
        mid = uuid.uuid4().hex
        blocked = any(x["severity"] == "block" for x in problems)
        status = "rejected" if blocked else "accepted"
        summary: dict[str, Any] = {"problems": problems}
        if action in BLOCK_RULES:
            summary["attachments"] = [{"name": "卷宗.pdf", "sha256": "0" * 64, "size": 1,
                                       "media_type": "application/pdf"}]
        reasons = [f"[{x['rule']}]" for x in problems]
        receipt = {"message_id": mid, "status": status, "case_number": case, "received_at": at}
        h = uuid.uuid4().hex * 2
        messages.append((mid, sender, "generated", None, h, h if not blocked else "", case, stage, action, status,
                         json.dumps(reasons), at, None, None, json.dumps(summary, ensure_ascii=False),
                         json.dumps(receipt), node, at))
        key = chain_key(sender, case, action)
        t.record(sender, case, action, status, summary, at, t.chains.get(key) if key else None)
        done = min(at + p.delay(), time.time())
        to = sender if blocked else dest  # a blocked record's defect notice goes back to its sender
        deliveries.append((uuid.uuid4().hex, mid, to, case, h, "application/xml", None, "delivered",
                           "delivered on attempt 1: generated", 1, at, done, done, done))
        if not blocked:
            t.delivery(sender, dest, at, done)
        events.append(AuditEvent("received", sender, mid, case, h, {"channel": "generated", "generated": True}))
    return messages, deliveries, events, t


_MSG = ("INSERT INTO messages (id, sender, channel, sender_message_id, content_hash, canonical_hash, case_number, "
        "stage, action, status, reasons, received_at, file_name, operation, summary, receipt, node, "
        "payload_pruned_at) VALUES ({})")
_DLV = ("INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, content_type, file_name, "
        "state, reason, attempts, created_at, updated_at, next_attempt_at, delivered_at) VALUES ({})")


def statements(p: str) -> tuple[str, str, StatsSQL]:
    return _MSG.format(",".join([p] * 18)), _DLV.format(",".join([p] * 14)), SQLITE if p == "?" else POSTGRES


async def write_day(store: Any, batch: tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[AuditEvent],
                                             Tally]) -> None:
    messages, deliveries, events, tally = batch
    if hasattr(store, "dsn"):
        msg, dlv, s = statements("%s")

        async def pg(tx: Any) -> None:
            async with tx.conn.cursor() as cur:
                await cur.executemany(msg, messages)
                await cur.executemany(dlv, deliveries)
                for sql, rows in zip((s.daily, s.rules, s.hist, s.chain), StatsSQL.rows(tally), strict=True):
                    if rows:
                        await cur.executemany(sql, rows)
            await tx.audit(events)

        await store._write(pg)
        return
    msg, dlv, s = statements("?")

    def lite(tx: Any) -> None:
        c = tx.conn
        c.executemany(msg, messages)
        c.executemany(dlv, deliveries)
        for sql, rows in zip((s.daily, s.rules, s.hist, s.chain), StatsSQL.rows(tally), strict=True):
            if rows:
                c.executemany(sql, rows)
        tx.audit(events)

    await store._write(lite)


async def generate(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    units = agencies(args.agencies, rng)
    cfg = parse_config(yaml.safe_load(config_file(out, units, args.dsn).read_text(encoding="utf-8")))
    store = make_store(cfg)
    await store.open()
    p = Province(units, rng)
    end = dt.date.fromisoformat(args.end) if args.end else dt.date.today()
    days = [end - dt.timedelta(days=i) for i in range(args.days - 1, -1, -1)]
    weights = [1.0 if d.weekday() < 5 else 0.25 for d in days]
    per_weight = args.records / sum(weights)
    t0 = time.perf_counter()
    total = 0
    try:
        for d, w in zip(days, weights, strict=True):
            start = dt.datetime(d.year, d.month, d.day, tzinfo=dt.UTC).timestamp() - SHANGHAI
            first = max(1, round(per_weight * w / 1.2))  # resends make up the rest
            rows = p.day(start, first)
            if d == end:  # today: only what has arrived by now
                rows = [r for r in rows if r[0] <= time.time() - 5]
            await write_day(store, day_rows(p, rows, cfg.gateway.node))
            total += len(rows)
    finally:
        await store.close()
    took = time.perf_counter() - t0
    print(f"generated {total:,} records of {len(units)} agencies over {len(days)} days in {took:.1f} s "
          f"({total / took:,.0f} records/s); config {out / 'gateway.yaml'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agencies", type=int, default=200)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dsn", help="a PostgreSQL database (default: SQLite under OUT/data)")
    ap.add_argument("--end", help="last day YYYY-MM-DD (default: today)")
    ap.add_argument("--seed", type=int, default=7)
    asyncio.run(generate(ap.parse_args()))


if __name__ == "__main__":
    main()
