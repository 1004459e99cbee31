#!/usr/bin/env python3
"""Check an exchange-log export bundle offline: `python3 verify_bundle.py [BUNDLE_DIR] [--public-key PEM]`.

An auditor can read all of it and run it on a machine of their own: this file and `chain_rules.py`,
which the bundle ships next to it (Python 3.11+ and the `cryptography` package, nothing else).
`chain_rules` holds the rules of the log (hashes, checkpoints, the key pin) and the checker that
walks it; this file checks a bundle with them: every window of entries up to its signed
checkpoint, the signed manifest and its counts, and every payload against its hash. The first
broken rule is named in plain words, with the entry it concerns and the check that found it.

Exit status: 0 when the bundle is intact, 1 when anything was altered or cannot be proved.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

if __package__:  # imported as part of the gateway
    from gateway.audit.chain_rules import (
        CHECKPOINT,
        GENESIS,
        RESTORED,
        STOPPED,
        ChainChecker,
        Entry,
        Problem,
        Verdict,
        canonical_detail,
        check,
        checkpoint_message,
        entry_hash_of,
        key_fingerprint,
        load_public_key,
        public_from_raw,
        raw_public,
        signature_ok,
        witness_message,
    )
else:  # run by an auditor from the bundle folder, where chain_rules.py lies next to this file
    from chain_rules import (  # type: ignore[no-redef]
        ChainChecker,
        Entry,
        Problem,
        Verdict,
        key_fingerprint,
        load_public_key,
        signature_ok,
    )

# The rules' names stay importable from here, as they were before chain_rules was split out.
__all__ = [
    "CHECKPOINT", "FIELDS", "GENESIS", "RESTORED", "STOPPED", "BundleError", "BundleReport", "ChainChecker", "Problem",
    "Verdict", "canonical_detail", "check", "checkpoint_message", "entry_hash_of", "key_fingerprint",
    "load_public_key", "main", "manifest_message", "public_from_raw", "raw_public", "read_jsonl", "signature_ok",
    "verify_bundle", "witness_message",
]

FIELDS = ("seq", "time", "node", "actor", "action", "message_id", "case_number", "payload_hash", "detail",
          "prev_hash", "entry_hash")


def manifest_message(manifest: Mapping[str, Any]) -> bytes:
    """What signs an export bundle's manifest: its canonical JSON, without the signature itself."""
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return b"case-exchange-manifest:" + json.dumps(body, ensure_ascii=False, sort_keys=True,
                                                   separators=(",", ":")).encode()


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Entries one line at a time; a line that is not an entry at all stops the check (BundleError)."""
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
                missing = [k for k in FIELDS if k not in e]
                if missing:
                    raise ValueError(f"missing {', '.join(missing)}")
                if type(e["seq"]) is not int or not all(isinstance(e[k], str) for k in FIELDS[1:]):
                    raise ValueError("seq must be a whole number and every other field text")
            except ValueError as err:
                raise BundleError(f"{path.name}, line {n}: not a log entry ({err})") from None
            yield e


class BundleError(Exception):
    """The bundle cannot be read as one (missing file, broken JSON): the proof is not possible."""


@dataclass
class BundleReport:
    case_number: str
    key_id: str
    verdict: Verdict
    case_entries: int = 0
    uncovered: list[int] = field(default_factory=list)  # case entries no signed checkpoint proves
    payloads_checked: int = 0
    payloads_absent: int = 0

    @property
    def ok(self) -> bool:
        return self.verdict.ok

    def lines(self) -> list[str]:
        v = self.verdict
        if v.problem is not None:
            return [f"TAMPERED ({v.problem.check}): {v.problem.message}"]
        out = [f"INTACT: {self.case_entries} entries of case {self.case_number} are unaltered, within "
               f"{v.entries} log entries checked, {v.checkpoints} signed checkpoint(s) match "
               f"(key {self.key_id})",
               f"payloads: {self.payloads_checked} match their hashes, {self.payloads_absent} not included"]
        if self.uncovered:
            seqs = ", ".join(map(str, self.uncovered))
            out.append(f"not yet covered by a signed checkpoint: case entries {seqs}")
        return out


def verify_bundle(root: Path, public: Ed25519PublicKey | None = None) -> BundleReport:
    """Check every window of the bundle against its checkpoint, and every payload against its hash."""
    try:
        manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
        checkpoints = json.loads((root / "checkpoints.json").read_text(encoding="utf-8"))
        if public is None:
            public = load_public_key((root / "public-key.pem").read_bytes())
        case = str(manifest["case_number"])
        windows = sorted((int(a), int(b)) for a, b in manifest["windows"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise BundleError(f"the bundle in {root} cannot be read: {err}") from None
    report = BundleReport(case, key_fingerprint(public), Verdict())
    signed = _manifest_problem(manifest, public)
    if signed is not None:
        report.verdict.problem = signed
        return report
    walk = _Windows(windows, checkpoints, public)
    payload_problem: Problem | None = None
    hashes: set[str] = set()
    for e in read_jsonl(root / "entries.jsonl"):
        if not walk.feed(e):
            break
        if e["case_number"] == case:
            report.case_entries += 1
            if not walk.covered:
                report.uncovered.append(int(e["seq"]))
            payload_problem = payload_problem or _check_payload(root, e, report)
            if e["payload_hash"]:
                hashes.add(str(e["payload_hash"]))
    report.verdict = walk.end()
    if report.verdict.problem is None:
        report.verdict.problem = payload_problem
    if report.verdict.problem is None:
        absent = sum(1 for h in hashes if not (root / "payloads" / h).exists())
        report.verdict.problem = _counts(manifest, report, absent)
    return report


def _manifest_problem(manifest: Mapping[str, Any], public: Ed25519PublicKey) -> Problem | None:
    """The manifest must be signed with the expected key: no window, count or line can be dropped."""
    kid = key_fingerprint(public)
    if manifest.get("key_id") != kid:
        return Problem(0, "manifest", f"the manifest names key {manifest.get('key_id')}, but the expected key is {kid}")
    try:
        public.verify(base64.b64decode(str(manifest["signature"])), manifest_message(manifest))
    except (KeyError, InvalidSignature, ValueError, TypeError):
        return Problem(0, "manifest", (f"the manifest's signature does not verify with key {kid}: the manifest was "
                                       "altered (a window, a count or a line dropped), or is not signed"))
    return None


def _counts(manifest: Mapping[str, Any], report: BundleReport, absent: int) -> Problem | None:
    """Every count the signed manifest states must be what the bundle holds."""
    v = report.verdict
    found = {"case_entries": report.case_entries, "entries": v.entries}
    if manifest.get("payloads") == "included":
        found["payloads_not_stored"] = absent
    for k, n in found.items():
        if int(manifest.get(k, 0)) != n:
            return Problem(0, "manifest", f"the signed manifest states {k}: {manifest.get(k, 0)}, the bundle holds {n}")
    return None


class _Windows:
    """Feeds a bundle's entries to one ChainChecker per declared window (a run ending at a checkpoint)."""

    def __init__(self, windows: list[tuple[int, int]], checkpoints: list[dict[str, Any]],
                 public: Ed25519PublicKey) -> None:
        self.windows, self.checkpoints, self.public = windows, checkpoints, public
        self.total = Verdict()
        self.idx = -1
        self.checker: ChainChecker | None = None
        self.covered = False

    def feed(self, e: Entry) -> bool:
        """False once the verdict is known."""
        seq = int(e["seq"])
        while self.checker is None or seq > self.windows[self.idx][1]:
            if self.checker is not None and not self._close():
                return False
            self.idx += 1
            if self.idx == len(self.windows):
                return self._stop(Problem(seq, "inserted", f"entry {seq} was inserted: it lies outside every "
                                                           "window the bundle declares"))
            a, b = self.windows[self.idx]
            self.checker = ChainChecker([c for c in self.checkpoints if a <= int(c["seq"]) <= b], self.public,
                                        first_seq=a, prev_hash=None)
            self.covered = any(int(c["seq"]) == b and signature_ok(self.public, c) for c in self.checkpoints)
        if seq < self.windows[self.idx][0]:
            return self._stop(Problem(seq, "out-of-order", f"entry {seq} is out of order in the bundle"))
        self.checker.feed(e)
        return self.checker.wants_more or self._close()

    def _close(self) -> bool:
        assert self.checker is not None
        v = self.checker.end()
        self.checker = None
        a, b = self.windows[self.idx]
        t = self.total
        t.entries += v.entries
        t.checkpoints += v.checkpoints
        t.first_seq = v.first_seq if t.first_seq is None else t.first_seq
        t.last_seq = v.last_seq
        if v.problem is None and v.first_seq != a:
            v.problem = Problem(a, "missing", f"entry {a} is missing: the bundle declares a window from it")
        if v.problem is None and v.last_seq != b:
            start = (v.last_seq or a - 1) + 1
            v.problem = Problem(start, "missing", f"entries {start} to {b} are missing from the bundle")
        return v.problem is None or self._stop(v.problem)

    def _stop(self, problem: Problem) -> bool:
        self.total.problem = problem
        self.idx = len(self.windows)
        return False

    def end(self) -> Verdict:
        if self.total.problem is None and self.checker is not None:
            self._close()
        if self.total.problem is None and self.idx + 1 < len(self.windows):
            a, b = self.windows[self.idx + 1]
            self.total.problem = Problem(a, "missing", f"entries {a} to {b} are missing from the bundle")
        return self.total


def _check_payload(root: Path, e: Entry, report: BundleReport) -> Problem | None:
    h = str(e["payload_hash"])
    if not h:
        return None
    p = root / "payloads" / h
    if not p.exists():
        report.payloads_absent += 1
        return None
    if hashlib.sha256(p.read_bytes()).hexdigest() != h:
        return Problem(int(e["seq"]), "altered", (
            f"the payload of entry {e['seq']} (payloads/{h}) was altered: its content no longer matches "
            "the hash in the log"))
    report.payloads_checked += 1
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Verify an exchange-log export bundle offline.")
    ap.add_argument("bundle", nargs="?", default=str(Path(__file__).resolve().parent),
                    help="the bundle directory (default: the directory of this script)")
    ap.add_argument("--public-key", help="the gateway's public key (PEM) obtained independently of this "
                                         "bundle; default: public-key.pem inside the bundle")
    args = ap.parse_args(argv)
    try:
        public = load_public_key(Path(args.public_key).read_bytes()) if args.public_key else None
        report = verify_bundle(Path(args.bundle), public)
    except (BundleError, OSError, ValueError) as e:
        print(f"CANNOT VERIFY: {e}")
        return 1
    for line in report.lines():
        print(line)
    if report.ok and not args.public_key:
        print(f"note: the key came from the bundle itself; compare its fingerprint {report.key_id} with the "
              "one the gateway's operator published, or pass --public-key")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
