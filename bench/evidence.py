"""Benchmark: CPU per signed evidence document, signxml's generic signer against the fixed template.

Both sign the same documents with the same key in the same process, taking turns round by round so
load from elsewhere on the machine falls on both alike. Per round it prints CPU µs (process time) per
record's evidence as the gateway issues it (a submission and a delivery document: built, signed,
hashed, logged as an audit event), per signature alone (document built beforehand), and per signxml
verification of each signer's output; then the medians and the ratio. Every document signed in a
round is checked with signxml (`gateway.evidence.signer.verify`), outside the timed part.

    python bench/evidence.py [--records N] [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lxml import etree  # noqa: E402

from gateway.evidence import document  # noqa: E402
from gateway.evidence.document import Delivery, Submission  # noqa: E402
from gateway.evidence.issue import Issuer  # noqa: E402
from gateway.evidence.signer import EvidenceSigner, verify  # noqa: E402


class SignxmlSigner(EvidenceSigner):
    """The node's signer as it was: every signature by signxml's XMLSigner."""

    def sign(self, doc: etree._Element) -> bytes:
        return self.sign_with_signxml(doc)


def records(n: int) -> list[tuple[Submission, Delivery]]:
    out = []
    for i in range(n):
        mid = f"01J{i:023d}"
        out.append((Submission(mid, f"{i:064x}", f"CASE-{i:06d}", "POLICE", ["PROC", "COURT"], "2026-11-26T18:00:00Z",
                               "accepted", [], f"GA-{i}"),
                    Delivery(mid, f"CASE-{i:06d}", "PROC", f"d-{i}", f"{i + 1:064x}", "2026-11-26T18:00:01Z", 1,
                             f"{i + 2:064x}")))
    return out


def cpu_us(fn: Callable[[], list[bytes]], count: int) -> tuple[float, list[bytes]]:
    start = time.process_time()
    out = fn()
    return (time.process_time() - start) / count * 1e6, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=300, help="records per round (two documents each)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        template = EvidenceSigner.load_or_create(Path(tmp) / "evidence-key.pem", "bench-node")
    generic = SignxmlSigner(template.key, template.cert)
    issuers = {"signxml": Issuer(generic, "bench-node"), "template": Issuer(template, "bench-node")}
    recs = records(args.records)
    docs = [document.submission(s, "bench-node", "2026-11-26T18:00:00.000001Z") for s, _ in recs]
    results: dict[str, dict[str, list[float]]] = {k: {"record": [], "sign": [], "verify": []} for k in issuers}
    print(f"{args.records} records per round (a submission and a delivery document each), {args.rounds} rounds; "
          "CPU µs per record / per signature / per verification")
    for rnd in range(args.rounds):
        line = []
        for name, issuer in issuers.items():
            def issue(issuer: Issuer = issuer) -> list[bytes]:
                return [b for s, d in recs for b in (issuer.submission(s, "2026-11-26T18:00:00.000001Z").body,
                                                     issuer.delivery(d, "2026-11-26T18:00:01.000001Z").body)]

            def sign(signer: EvidenceSigner = issuer.signer) -> list[bytes]:
                return [signer.sign(doc) for doc in docs]

            def check(bodies: list[bytes]) -> list[bytes]:
                for b in bodies:
                    verify(b, template.cert)
                return bodies

            per_record, bodies = cpu_us(issue, len(recs))
            per_sign, signed = cpu_us(sign, len(docs))
            per_verify, _ = cpu_us(partial(check, signed), len(docs))
            check(bodies)
            results[name]["record"].append(per_record)
            results[name]["sign"].append(per_sign)
            results[name]["verify"].append(per_verify)
            line.append(f"{name}: {per_record:7.0f} / {per_sign:6.0f} / {per_verify:6.0f}")
        ratio = results["template"]["record"][-1] / results["signxml"]["record"][-1]
        print(f"round {rnd + 1}: " + "   ".join(line) + f"   per record x{ratio:.2f}")
    med = {k: {m: statistics.median(v) for m, v in r.items()} for k, r in results.items()}
    for name in issuers:
        print(f"median {name:8s}: {med[name]['record']:7.0f} µs per record, {med[name]['sign']:6.0f} µs per "
              f"signature, {med[name]['verify']:6.0f} µs per signxml verification")
    g, t = med["signxml"], med["template"]
    print(f"template / signxml: per record x{t['record'] / g['record']:.2f} "
          f"({100 * (1 - t['record'] / g['record']):.0f}% less CPU), per signature x{t['sign'] / g['sign']:.2f}; "
          f"all {2 * args.records * args.rounds * 2} issued documents verified by signxml")


if __name__ == "__main__":
    main()
