"""What putting findings in the agency's own terms costs a refused record, against the same record unlocated.

Runs the pipeline's own steps (Parse, MapToStandard, ValidateStandard, Rules) on the police
sample with a date the standard refuses and a wrong resident-ID check character (two findings),
with the findings located in the file (a traced run of the inbound mapping) and without, in
alternating rounds in one process; a valid record is the baseline. Prints the best round of each.

    .venv/bin/python bench/findings.py [--rounds 7] [--records 300]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from gateway import findings
from gateway.mapping import load_pack
from gateway.model import InboundRecord, sha256_hex
from gateway.pipeline import Context, MapToStandard, Parse, Rejected, Rules, ValidateStandard
from gateway.xmlsafe import DEFAULT_MAX_BYTES


def _records() -> tuple[bytes, bytes]:
    body = (load_pack("police").samples / "valid" / "01-request-arrest-approval.xml").read_bytes()
    bad = body.replace(b"<SJRQ>20260301</SJRQ>", b"<SJRQ>20260231</SJRQ>", 1)
    bad = bad.replace(b"<SFZH>14010519850312203X</SFZH>", b"<SFZH>140105198503122031</SFZH>", 1)
    return body, bad


def _judge(body: bytes) -> int:
    pack = load_pack("police")
    ctx = Context(InboundRecord(channel="police", sender="POLICE", body=body), "m", sha256_hex(body), "b", pack)
    try:
        for step in (Parse(DEFAULT_MAX_BYTES), MapToStandard(), ValidateStandard(("1",)), Rules()):
            step(ctx)
    except Rejected:
        pass
    return len(ctx.problems)


def _per_record_us(fn: Callable[[], object], n: int) -> float:
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--records", type=int, default=300)
    args = ap.parse_args()
    good, bad = _records()
    located = findings.in_agency_terms
    assert _judge(good) == 0 and _judge(bad) == 2
    best = {"valid": float("inf"), "refused, located": float("inf"), "refused, not located": float("inf")}
    for _ in range(args.rounds):
        best["valid"] = min(best["valid"], _per_record_us(lambda: _judge(good), args.records))
        best["refused, located"] = min(best["refused, located"], _per_record_us(lambda: _judge(bad), args.records))
        findings.in_agency_terms = lambda problems, standard, trace: problems
        try:
            best["refused, not located"] = min(best["refused, not located"],
                                               _per_record_us(lambda: _judge(bad), args.records))
        finally:
            findings.in_agency_terms = located
    for name, us in best.items():
        print(f"{name:22} {us:8.0f} us per record")
    print(f"locating costs a refused record {best['refused, located'] / best['refused, not located']:.2f}x "
          f"(+{best['refused, located'] - best['refused, not located']:.0f} us); a valid record runs no trace")


if __name__ == "__main__":
    main()
