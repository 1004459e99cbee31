"""Records/s for the per-record work of the exchange: legacy XSD + mapping + standard XSD + rules.

Runs the pipeline's own steps (Parse, MapToStandard, ValidateStandard, Rules) on ~5 KB police
records (GB18030, dangerous-driving transfer with its evidence and a 15-file dossier), on one
core, and prints the rate and where the time goes.

    .venv/bin/python bench/mapping.py [--seconds 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import statistics
import time
from collections.abc import Callable

from lxml import etree

from gateway import standard, xmlsafe
from gateway.mapping import load_pack
from gateway.model import InboundRecord, sha256_hex
from gateway.pipeline import Context, MapToStandard, Parse, Rules, ValidateStandard
from gateway.rules import standard_rules


def five_kb_record() -> bytes:
    pack = load_pack("police")
    text = (pack.samples / "valid" / "02-transfer-for-prosecution.xml").read_bytes().decode("gb18030")
    extra = "".join(
        f"  <WJ>\n    <WJBH>x{i}</WJBH>\n    <WJM>讯问笔录第{i}册.pdf</WJM>\n"
        f"    <WJLX>application/pdf</WJLX>\n    <WJDX>{100000 + i}</WJDX>\n"
        f"    <HASH>{hashlib.sha256(str(i).encode()).hexdigest()}</HASH>\n  </WJ>\n"
        for i in range(12)
    )
    i = text.rindex("</AJXX>")
    return (text[:i] + extra + text[i:]).encode("gb18030")


def run_once(steps: list, pack, body: bytes) -> Context:  # type: ignore[no-untyped-def]
    ctx = Context(InboundRecord("police-in", "POLICE", body), "m", sha256_hex(body), "bench", pack)
    for step in steps:
        step(ctx)
    return ctx


def best_of(fn: Callable[[], object], rounds: int = 7, calls: int = 300) -> float:
    """CPU seconds per call in the best of `rounds` rounds of `calls` calls."""
    per = []
    for _ in range(rounds):
        t0 = time.process_time()
        for _ in range(calls):
            fn()
        per.append((time.process_time() - t0) / calls)
    return min(per)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--pairs", type=int, default=21, help="rounds of the full path and of lxml alone, in turns")
    args = ap.parse_args()
    pack = load_pack("police")
    body = five_kb_record()
    steps = [Parse(xmlsafe.DEFAULT_MAX_BYTES), MapToStandard(), ValidateStandard(["1"]), Rules()]
    ctx = run_once(steps, pack, body)
    assert not ctx.problems, [p.explain() for p in ctx.problems]
    print(
        f"record: {len(body):,} bytes GB18030, {len(ctx.canonical_bytes):,} bytes in the standard, "
        f"{len(standard_rules().rules)} rules"
    )

    # CPU time of this process, not wall time: on a shared machine the wall clock also counts the
    # time other processes held the core. Even CPU time swells while neighbours thrash the caches,
    # so the best 100-record round is printed too: it is the figure that compares across runs.
    n, start, wall, best = 0, time.process_time(), time.perf_counter(), float("inf")
    while time.process_time() - start < args.seconds:
        t0 = time.process_time()
        for _ in range(100):
            run_once(steps, pack, body)
        best = min(best, (time.process_time() - t0) / 100)
        n += 100
    elapsed = time.process_time() - start
    wall_rate = n / (time.perf_counter() - wall)
    print(f"wall-clock rate {wall_rate:,.0f} records/s (includes time the core ran others)")
    print(
        f"full path (parse + legacy XSD + XSLT + standard XSD + rules): {n / elapsed:,.0f} records/s "
        f"on one core ({elapsed / n * 1e6:.0f} us/record); best round {1 / best:,.0f} records/s "
        f"({best * 1e6:.0f} us/record)"
    )

    # Each step inside the full path, so the figures add up to it (as above, CPU time, best round).
    # "new record" is building the next record's context, which also frees the previous record's
    # trees. These run on cold caches and a churned heap, so they are larger than the same work
    # repeated alone below.
    names = ["new record (+ freeing the last)", *(f"step {s.name}" for s in steps)]
    inside = dict.fromkeys(names, float("inf"))
    for _ in range(10):
        acc = dict.fromkeys(names, 0.0)
        for _ in range(200):
            t0 = time.process_time()
            ctx = Context(InboundRecord("police-in", "POLICE", body), "m", sha256_hex(body), "bench", pack)
            t1 = time.process_time()
            acc[names[0]] += t1 - t0
            for name, step in zip(names[1:], steps, strict=True):
                step(ctx)
                t0, t1 = t1, time.process_time()
                acc[name] += t1 - t0
        for name in names:
            inside[name] = min(inside[name], acc[name] / 200)
    print("per step of the full path, best of 10 rounds of 200:")
    for name, per in inside.items():
        print(f"  {name:32} {per * 1e6:7.1f} us")
    print(f"  {'sum':32} {sum(inside.values()) * 1e6:7.1f} us")

    legacy = xmlsafe.parse(body)
    canonical = pack.to_standard(legacy)
    xsd = standard.schema("1")
    rules = standard_rules()
    stages = {
        "parse (xmlsafe, GB18030 check)": lambda: xmlsafe.parse(body),
        "legacy XSD": lambda: pack.legacy_schema.validate(legacy),  # type: ignore[union-attr]
        "inbound XSLT": lambda: pack.to_standard(legacy),
        # the record is kept as pretty-printed bytes; it is read back only when a finding needs lines
        "serialize standard": lambda: etree.tostring(canonical, encoding="UTF-8", pretty_print=True),
        "standard XSD": lambda: xsd.validate(canonical),
        "envelope": lambda: standard.envelope(canonical),
        "rules": lambda: rules.check(canonical),
    }
    print("per stage alone (the same work repeated on warm caches), best of 7 rounds of 300:")
    for name, fn in stages.items():
        print(f"  {name:32} {best_of(fn) * 1e6:7.1f} us")
    # What lxml itself needs for the same record with no gateway code around it: the UTF-8 form
    # through a plain parser, the legacy XSD, the pack's inbound XSLT and the standard XSD, chained.
    # No rule is checked and nothing is serialised, so this is a floor for the full path above.
    utf8 = etree.tostring(legacy, encoding="UTF-8")
    plain = etree.XMLParser()

    def bare() -> None:
        tree = etree.fromstring(utf8, plain)
        pack.legacy_schema.validate(tree)  # type: ignore[union-attr]
        xsd.validate(pack.to_standard(tree))

    floor = best_of(bare)
    print(f"lxml alone, no gateway code (plain UTF-8 parse + legacy XSD + inbound XSLT + standard XSD, "
          f"no rules): {floor * 1e6:.0f} us, at most {1 / floor:,.0f} records/s per core on this machine")
    print(f"ratio full path / lxml alone (best rounds): {best / floor:.2f} (target <= 1.5)")
    # The two best rounds above come seconds apart; on a shared machine the core's speed moves in between
    # (the same floor measured 322 and 583 us in two runs a minute apart). Rounds of each, taken in turns,
    # give a ratio per pair that such drift cancels out of: the median is the figure to compare.
    pairs = []
    for _ in range(args.pairs):
        t0 = time.process_time()
        for _ in range(50):
            run_once(steps, pack, body)
        t1 = time.process_time()
        for _ in range(50):
            bare()
        pairs.append((t1 - t0) / (time.process_time() - t1))
    pairs.sort()
    print(f"ratio full path / lxml alone, {len(pairs)} pairs of 50-record rounds taken in turns: median "
          f"{statistics.median(pairs):.2f}, range {pairs[0]:.2f}-{pairs[-1]:.2f} (target <= 1.5)")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(2000):
            run_once(steps, pack, body)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    main()
