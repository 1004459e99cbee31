"""The rules a running gateway's log meets beyond its chain: a checkpoint at least every N entries
and T seconds, a node's final checkpoint after each stop, and agreement with a witness.

They extend `chain_rules.ChainChecker` (what an export bundle's verifier checks offline) for
`gateway audit verify` and the node's own re-checks; the settings come from the configuration
(`checkpoint_every`, `checkpoint_seconds`) or the auditor's command line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.chain_rules import CHECKPOINT, GENESIS, RESTORED, STOPPED, ChainChecker, Entry, Problem, Verdict

GRACE_SECONDS = 10.0  # beyond the configured interval: the signing task's own period and commit latency


@dataclass(frozen=True)
class Policy:
    """Rules beyond the chain itself, from the gateway's configuration or the auditor's command line.

    `every`/`seconds`: a checkpoint at least every N entries and T seconds of the log (T allows
    GRACE_SECONDS more). `live`: the time the log is read at, for a running node: its tail may be
    unsigned if it is at most `every` entries and younger than T + grace; otherwise (None) the log
    must end with a node's final checkpoint right after its "node-stopped". `witnessed`: checkpoints
    (seq, entry_hash, signed_at) a witness holds; each must match the log, and the log must reach the
    newest, except those a signed "node-restored" entry declares lost (later than its backup point,
    signed before the restore).
    """

    every: int | None = None
    seconds: float | None = None
    live: str | None = None
    witnessed: tuple[Mapping[str, Any], ...] = ()
    grace: float = GRACE_SECONDS


def _seconds(a: str, b: str) -> float:
    """Seconds from time text a to b (ISO 8601, as the log writes them)."""
    return (datetime.fromisoformat(b.replace("Z", "+00:00")) - datetime.fromisoformat(a.replace("Z", "+00:00"))
            ).total_seconds()


class PolicyChecker(ChainChecker):
    """A ChainChecker that also holds the log to a `Policy` (none: exactly the chain's own rules)."""

    def __init__(self, checkpoints: Iterable[Mapping[str, Any]], public: Ed25519PublicKey | None, *,
                 first_seq: int = 1, prev_hash: str | None = GENESIS, pin: str | None = None,
                 policy: Policy | None = None) -> None:
        super().__init__(checkpoints, public, first_seq=first_seq, prev_hash=prev_hash, pin=pin)
        self.policy = policy
        self._stretch: tuple[int, int, str] | None = None  # unsigned run: (first seq, count, first time)
        self._actions: tuple[str, str] = ("", "")  # the last two entries' actions
        self._witnessed = {int(w["seq"]): w for w in (policy.witnessed if policy else ())}
        self._witness_differs: list[Mapping[str, Any]] = []
        self._restores: list[tuple[int, str, int]] = []  # (backup seq, time, seq of the restore entry)

    def _noted(self, e: Entry) -> None:
        seq = int(e["seq"])
        action = str(e["action"])
        self._actions = (self._actions[1], action)
        if action == CHECKPOINT:
            self._stretch = None
        elif self._stretch is None:
            self._stretch = (seq, 1, str(e["time"]))
        else:
            self._stretch = (self._stretch[0], self._stretch[1] + 1, self._stretch[2])
        if action == RESTORED:
            backup = json.loads(str(e["detail"])).get("backup_seq")
            if isinstance(backup, int):
                self._restores.append((backup, str(e["time"]), seq))
        w = self._witnessed.get(seq)
        if w is not None and w["entry_hash"] != e["entry_hash"]:
            self._witness_differs.append(w)

    def _entry_policy(self, e: Entry) -> Problem | None:
        """The longest unsigned run, and a node's final checkpoint right after its stop."""
        pol = self.policy
        if pol is None:
            return None
        seq = int(e["seq"])
        if self._actions[1] in (STOPPED, RESTORED):
            return Problem(seq - 1, "unclosed", (
                f"entry {seq - 1} records a node's stop without its final checkpoint: entry {seq} follows it"))
        run = self._stretch
        if run is not None and pol.every is not None and run[1] + 1 > pol.every:
            return Problem(seq, "unsigned-stretch", (
                f"entries {run[0]} to {seq} carry no checkpoint: more than {pol.every} entries in a row are "
                f"unsigned (the log's rule: a checkpoint at least every {pol.every} entries); checkpoints were "
                "deleted, or the log was rewritten without them"))
        if run is not None and pol.seconds is not None and (
                _seconds(run[2], str(e["time"])) > pol.seconds + pol.grace):
            return Problem(seq, "unsigned-stretch", (
                f"entries {run[0]} ({run[2]}) to {seq} ({e['time']}) carry no checkpoint: longer than "
                f"{pol.seconds:g} seconds unsigned (the log's rule: a checkpoint at least every {pol.seconds:g} "
                "seconds)"))
        return None

    def _end_policy(self, v: Verdict) -> Problem | None:
        pol = self.policy
        if pol is None:
            return None
        last = v.last_seq if v.last_seq is not None else 0
        if self._actions[1] in (STOPPED, RESTORED):
            return Problem(last, "unclosed", f"entry {last} records a node's stop without its final checkpoint")
        run = self._stretch
        if pol.live is None and v.entries and self._actions not in ((STOPPED, CHECKPOINT), (RESTORED, CHECKPOINT)):
            return Problem(last, "unclosed", (
                f"the log ends at entry {last} without a node's final checkpoint (a checkpoint right after "
                "\"node-stopped\"): its last entries were cut off, or a node is still running (verify with "
                "--live) or stopped uncleanly (its next start signs the tail)"))
        if pol.live is not None and run is not None and pol.seconds is not None:
            age = _seconds(run[2], pol.live)
            if age > pol.seconds + pol.grace:
                return Problem(run[0], "stale-tail", (
                    f"entries {run[0]} to {last} have been unsigned for {age:.0f} seconds, longer than "
                    f"{pol.seconds:g}: the node is not running, or not signing its log"))
        lost = []
        for w in [*self._witness_differs, *(w for s, w in sorted(self._witnessed.items()) if s > last)]:
            if self._excused(w):
                lost.append(int(w["seq"]))
                continue
            s = int(w["seq"])
            if s > last:
                return Problem(last + 1, "witness-truncated", (
                    f"the witness holds a checkpoint of entry {s} signed at {w['signed_at']}, but the log ends at "
                    f"entry {last}: entries {last + 1} to {s} were cut off"))
            return Problem(s, "witness-rewritten", (
                f"entry {s} differs from the checkpoint the witness holds (signed at {w['signed_at']}): the log "
                f"was rewritten from entry {s} or earlier"))
        if lost:
            b, at, where = self._restores[-1]
            v.notes.append(f"restored from a backup at entry {b} (entry {where}, {at}): the witness holds "
                           f"checkpoints up to entry {max(lost)} signed before, whose entries after {b} were lost")
        return None

    def _excused(self, w: Mapping[str, Any]) -> bool:
        """Lost in a disaster the log declares: after a restore's backup point, signed before the restore."""
        return any(int(w["seq"]) > b and str(w["signed_at"]) < at for b, at, _ in self._restores)


