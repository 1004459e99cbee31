"""Verify only what the log gained since the last verification, from a signed position remembered
outside the database.

A full verification reads every entry (10 s for half a million); a year's log takes minutes. After
one full run, the auditor keeps (per pinned key) the highest entry a signed checkpoint proved and
that entry's hash, in a small file of their own (`--state FILE`; never in the gateway's data
folder or database; without it every run is a full one, as before). The next run
starts there: it reads that entry again and requires the remembered hash, the stored checkpoint
signing it, and a valid signature by the pinned key (the same ChainChecker rules, on a window that
starts at it), then checks every entry after it as the full verification would.

What this does not see, said plainly: an entry before the remembered position changed *after*
it was verified (it is not re-read). A position pointed somewhere else by whoever can write the
state file still has to be an entry proved by a signature of the pinned key, so it can only skip
entries that key signed. `--full` reads everything again; run it from time to time, or keep a
witness.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.chain_rules import CHECKPOINT, Problem, Verdict
from gateway.audit.log_policy import Policy, PolicyChecker
from gateway.audit.verify import PAGE, feed_page, verify_store
from gateway.store.roles import ExchangeLog


@dataclass(frozen=True)
class Mark:
    """The highest entry a verification proved by a signed checkpoint, and its hash."""

    seq: int
    entry_hash: str


def read_mark(state: Path, pin: str, log_id: str) -> Mark | None:
    try:
        got = json.loads(state.read_text(encoding="utf-8")).get(f"{pin}@{log_id}")
    except (OSError, ValueError):
        return None
    return Mark(int(got["seq"]), str(got["entry_hash"])) if isinstance(got, dict) else None


def write_mark(state: Path, pin: str, log_id: str, mark: Mark) -> None:
    try:
        data = json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    data[f"{pin}@{log_id}"] = {"seq": mark.seq, "entry_hash": mark.entry_hash}
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    tmp.replace(state)


async def verify_from(
    store: ExchangeLog, public: Ed25519PublicKey | None, mark: Mark, *, pin: str | None = None,
    policy: Policy | None = None, page: int = PAGE, progress: Callable[[int], None] | None = None,
) -> Verdict:
    """Check the log from `mark` on: the entry at mark must still have its hash and be signed."""
    cps = [c.as_json() for c in await store.checkpoints() if c.seq >= mark.seq]
    checker = PolicyChecker(cps, public, first_seq=mark.seq, prev_hash=None, pin=pin, policy=policy)
    after, seen, signed_mark = mark.seq - 1, 0, False
    while checker.wants_more:
        rows = await store.audit_entries(after_seq=after, limit=page)
        if not rows:
            break
        if after == mark.seq - 1 and (rows[0].seq != mark.seq or rows[0].entry_hash != mark.entry_hash):
            checker.verdict.problem = Problem(
                mark.seq, "verified-mark", f"entry {mark.seq} no longer has the hash verified earlier "
                f"({mark.entry_hash[:16]}...): the log was changed after it was verified; run a full verification")
            break
        if after == mark.seq - 1:
            signed_mark = rows[0].action == CHECKPOINT
        after, seen = rows[-1].seq, feed_page(checker, rows, seen, progress)
    verdict = checker.end()
    # the mark must be a checkpoint entry or an entry a stored checkpoint signs (the checker checked
    # that signature when it read the entry)
    if verdict.ok and not (signed_mark or any(int(c["seq"]) == mark.seq for c in cps)):
        verdict.problem = Problem(mark.seq, "verified-mark", f"no checkpoint signed by key {checker.pin} "
                                  f"proves entry {mark.seq}, where the last verification ended")
    return verdict


async def verify_incremental(
    store: ExchangeLog, public: Ed25519PublicKey | None, state: Path | None, *, pin: str, log_id: str,
    policy: Policy | None = None, full: bool = False, progress: Callable[[int], None] | None = None,
) -> tuple[Verdict, Mark | None]:
    """(verdict, where it started: None for a full run); on success the state moves to the new mark.
    Without a state file: a full run, nothing kept."""
    mark = None if full or state is None else read_mark(state, pin, log_id)
    if mark is None:
        verdict = await verify_store(store, public, pin=pin, policy=policy, progress=progress)
    else:
        verdict = await verify_from(store, public, mark, pin=pin, policy=policy, progress=progress)
    if state is not None and verdict.ok and verdict.covered_to is not None:
        rows = await store.audit_entries(after_seq=verdict.covered_to - 1, limit=1)
        if rows and rows[0].seq == verdict.covered_to:
            write_mark(state, pin, log_id, Mark(rows[0].seq, rows[0].entry_hash))
    return verdict, mark
