"""The rules of the exchange log, in one file an auditor can read: how entries are hashed and
checkpoints signed, and the checker that walks a log and names its first bad entry.

Python 3.11+ and the `cryptography` package, nothing else: export bundles ship it next to
`verify_bundle.py`. It is also the one definition of the rules: the gateway hashes entries
(gateway.audit.chain), signs checkpoints (gateway.audit.signing) and re-checks its live log
(gateway.audit.verify) with the functions below, so what it writes and what an auditor checks
cannot drift apart.

Rules: an entry's details are stored as canonical JSON (sorted keys, no spaces, non-ASCII kept);
its hash is SHA-256 over the JSON array [seq, time, node, actor, action, message id, case
number, payload hash, details, previous hash]; each entry names the hash of the one before;
sequence numbers run without gaps; time never goes backwards; a checkpoint is an Ed25519
signature over "case-exchange-checkpoint:SEQ:HASH:SIGNED_AT", and is itself an entry of the chain
(action "checkpoint", right after the entry it signs, its details holding the signature, the key id
and the raw public key), so deleting one breaks the chain. The key is pinned from outside the data
(a public key or its fingerprint); a checkpoint signed by another key fails. The rules a running
gateway adds (checkpoint intervals, a node's final checkpoint, a witness) extend the checker in
gateway.audit.log_policy. The first broken rule is named in plain words, with the entry it
concerns and the check that found it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
_NEAR = 16  # how far from its place a renumbered entry is looked for (only once something is wrong)

Entry = Mapping[str, Any]


# json.dumps with these options builds an encoder per call; every logged entry goes through both
_DETAIL_JSON = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"))
_MATERIAL_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def canonical_detail(detail: Mapping[str, Any]) -> str:
    """An entry's details as they are stored and hashed: one text for one set of details."""
    return _DETAIL_JSON.encode(detail)


def hash_of_fields(fields: list[Any]) -> str:
    """SHA-256 over the JSON array [seq, time, node, actor, action, message id, case number,
    payload hash, details, previous hash]."""
    return hashlib.sha256(_MATERIAL_JSON.encode(fields).encode("utf-8")).hexdigest()


def entry_hash_of(e: Entry, seq: int | None = None) -> str:
    """The hash an entry must carry; `seq` recomputes it as if the entry sat at another place."""
    return hash_of_fields(
        [e["seq"] if seq is None else seq, e["time"], e["node"], e["actor"], e["action"], e["message_id"],
         e["case_number"], e["payload_hash"], e["detail"], e["prev_hash"]])


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def key_fingerprint(public: Ed25519PublicKey) -> str:
    """The key's id, as the gateway names it: first 16 hex digits of SHA-256 over the raw public key."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_message(seq: int, entry_hash: str, signed_at: str) -> bytes:
    """What the gateway's key signs: the head of the log (its seq and hash) at a moment."""
    return f"case-exchange-checkpoint:{seq}:{entry_hash}:{signed_at}".encode()


CHECKPOINT = "checkpoint"  # the action of a checkpoint entry
STOPPED = "node-stopped"  # a clean stop: the next entry must be the node's final checkpoint
RESTORED = "node-restored"  # rebuilt from a backup (offline, closed like a stop): what came after it was lost


def raw_public(public: Ed25519PublicKey) -> str:
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def public_from_raw(text: str) -> Ed25519PublicKey | None:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text))
    except (ValueError, TypeError):
        return None


def witness_message(node: str, seq: int, entry_hash: str, received_at: str) -> bytes:
    """What a witness signs when it takes a node's checkpoint in: its acknowledgement."""
    return f"case-exchange-witness:{node}:{seq}:{entry_hash}:{received_at}".encode()


def signature_ok(public: Ed25519PublicKey, cp: Mapping[str, Any]) -> bool:
    message = checkpoint_message(cp["seq"], cp["entry_hash"], cp["signed_at"])
    try:
        public.verify(base64.b64decode(cp["signature"]), message)
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


@dataclass(frozen=True)
class Problem:
    seq: int
    # altered, missing, inserted, out-of-order, duplicate, moved, back-dated, rewritten, forged, truncated,
    # other-key, unsigned-stretch, unclosed, stale-tail, witness-rewritten, witness-truncated, manifest
    kind: str
    message: str

    @property
    def check(self) -> str:
        """Which check found it: chain, signature, key pin, interval, manifest or witness."""
        return _CHECKS.get(self.kind, "chain")


_CHECKS = {"rewritten": "signature", "forged": "signature", "truncated": "signature", "other-key": "key pin",
           "unsigned-stretch": "interval", "unclosed": "interval", "stale-tail": "interval",
           "witness-rewritten": "witness", "witness-truncated": "witness", "manifest": "manifest"}


@dataclass
class Verdict:
    entries: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str = GENESIS
    checkpoints: int = 0  # signed checkpoints whose entry was found with the signed hash
    covered_to: int | None = None  # highest entry proved by a signed checkpoint
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)  # what an intact log still tells (a declared restore)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def uncovered(self) -> tuple[int, int] | None:
        """Entries after the last signed checkpoint: consistent, but not yet proved by a signature."""
        if self.last_seq is None or self.first_seq is None:
            return None
        if self.covered_to is not None and self.covered_to >= self.last_seq:
            return None
        start = self.first_seq if self.covered_to is None else max(self.first_seq, self.covered_to + 1)
        return (start, self.last_seq)

    def summary(self) -> str:
        if self.problem is not None:
            return f"TAMPERED ({self.problem.check}): {self.problem.message}"
        if self.entries == 0:
            return "INTACT: the log is empty"
        text = (f"INTACT: entries {self.first_seq} to {self.last_seq} ({self.entries}) are unaltered, "
                f"{self.checkpoints} signed checkpoint(s) match")
        if self.uncovered:
            a, b = self.uncovered
            text += f"; entries {a} to {b} are not yet covered by a signed checkpoint"
        return "; ".join([text, *self.notes])


Hunt = Callable[[Entry], "tuple[Problem | None, Hunt | None]"]


class ChainChecker:
    """Judges entries fed in order, in constant memory, and names the first bad one.

    Some damage only shows with the entry after it (was an entry inserted, or its predecessor
    rewritten?), so one entry may be held back until the next arrives. After a gap or an entry
    that fails its hash, the rest is read (still in constant memory) to see whether only a
    sequence number was changed or two entries swapped, which names the damage better.
    """

    def __init__(self, checkpoints: Iterable[Mapping[str, Any]], public: Ed25519PublicKey | None, *,
                 first_seq: int = 1, prev_hash: str | None = GENESIS, pin: str | None = None) -> None:
        """`public` is the expected key; or None with `pin`, its fingerprint (the key is then taken from
        the first checkpoint entry whose key has that fingerprint)."""
        if public is None and pin is None:
            raise ValueError("the expected key or its fingerprint is needed")
        self.public = public
        self.pin = key_fingerprint(public) if public is not None else str(pin)
        self._unsigned: list[Mapping[str, Any]] = []  # stored checkpoints met before the key was known
        self.cps = {int(cp["seq"]): cp for cp in checkpoints}
        self.nxt = first_seq
        self.prev_hash = prev_hash  # None: the first entry's link is not checked (a window of the log)
        self.prev_time = ""
        self.verdict = Verdict()
        self._recent: deque[tuple[int, str]] = deque(maxlen=_NEAR)
        if prev_hash is not None:
            self._recent.append((first_seq - 1, prev_hash))
        self._held: tuple[str, Entry] | None = None
        self._hunt: Hunt | None = None

    @property
    def wants_more(self) -> bool:
        return self.verdict.problem is None or self._hunt is not None

    # -- feeding ------------------------------------------------------------------------
    def feed(self, e: Entry) -> None:
        if self._hunt is not None:
            found, self._hunt = self._hunt(e)
            if found is not None:
                self.verdict.problem = found
            return
        if self.verdict.problem is not None:
            return
        if self._held is not None:
            kind, held = self._held
            self._held = None
            self._resolve(kind, held, e)
            if self._hunt is not None:
                self.feed(e)
            return
        self._step(e)

    def end(self) -> Verdict:
        self._hunt = None
        if self._held is not None:
            kind, held = self._held
            self._held = None
            self._resolve(kind, held, None)
        v = self.verdict
        if v.problem is None:
            last = v.last_seq if v.last_seq is not None else self.nxt - 1
            later = sorted(s for s in self.cps if s > last)
            if later:
                cp = self.cps[later[0]]
                if not self._sig_ok(cp):
                    v.problem = self._forged(cp)
                else:
                    v.problem = Problem(last + 1, "truncated", (
                        f"the log was cut short: it ends at entry {last}, but the checkpoint signed at "
                        f"{cp['signed_at']} covers entries up to {cp['seq']} "
                        f"(entries {last + 1} to {cp['seq']} are missing)"))
        if v.problem is None:
            v.problem = self._unproved()
        if v.problem is None:
            v.problem = self._end_policy(v)
        return v

    # -- rules ------------------------------------------------------------------------------
    def _fail(self, seq: int, kind: str, message: str) -> None:
        self.verdict.problem = Problem(seq, kind, message)

    def _origin(self, e: Entry) -> int | None:
        """Where the entry was written: its own seq, another place if only its number changed, or None."""
        if entry_hash_of(e) == e["entry_hash"]:
            return int(e["seq"])
        seq = int(e["seq"])
        near = [*range(self.nxt - _NEAR, self.nxt + _NEAR + 1), *range(seq - _NEAR, seq + _NEAR + 1)]
        for s in dict.fromkeys(near):
            if s != seq and entry_hash_of(e, s) == e["entry_hash"]:
                return s
        return None

    def _step(self, e: Entry) -> None:
        seq = int(e["seq"])
        origin = self._origin(e)
        last = self.verdict.last_seq
        if origin is None:
            self._fail(seq, "altered", f"entry {seq} was altered: its content no longer matches its hash")
            if e["prev_hash"] != self.prev_hash:  # intact but far from its place? find its predecessor
                self._hunt = self._far_origin(e)
            return None
        if last is not None and seq <= last:
            if seq == last and e["entry_hash"] == self.prev_hash:
                return self._fail(seq, "duplicate", f"entry {seq} appears twice")
            return self._fail(seq, "out-of-order", f"entry {seq} is out of order: it comes after {last}")
        if origin > seq:
            self._held = ("early", e)
            return None
        if origin < seq:
            before = dict(self._recent).get(origin - 1)
            if before is not None and e["prev_hash"] == before:
                what = f"entry {origin} was" if seq - origin == 1 else f"entries {origin} to {seq - 1} were"
                return self._fail(origin, "inserted", f"{what} inserted: entry {origin} is now at {seq}")
            return self._fail(seq, "moved", _renumbered(origin, seq))
        if seq > self.nxt and (self.verdict.entries or self.prev_hash is not None):
            self._held = ("gap", e)
            return None
        if self.prev_hash is not None and e["prev_hash"] != self.prev_hash:
            self._held = ("unlinked", e)
            return None
        if e["time"] < self.prev_time:
            return self._fail(seq, "back-dated", (
                f"entry {seq} is back-dated: its time {e['time']} is earlier than entry {last}'s "
                f"time {self.prev_time}"))
        found = self._rules(e)
        if found is not None:
            self.verdict.problem = found
            return None
        cp = self.cps.get(seq)
        if cp is not None:
            if not self._sig_ok(cp):
                return self._fail(seq, "forged", self._forged(cp).message)
            if cp["entry_hash"] != e["entry_hash"]:
                self._held = ("rewritten", e)
                return None
        self._accept(e, covered=cp is not None)
        return None

    def _accept(self, e: Entry, *, covered: bool) -> None:
        v = self.verdict
        seq = int(e["seq"])
        v.entries += 1
        v.first_seq = seq if v.first_seq is None else v.first_seq
        v.last_seq, v.last_hash = seq, str(e["entry_hash"])
        if covered:
            v.checkpoints += 1
            v.covered_to = seq
        self.nxt, self.prev_hash, self.prev_time = seq + 1, str(e["entry_hash"]), str(e["time"])
        self._recent.append((seq, self.prev_hash))
        if e["action"] == CHECKPOINT:  # its signature was checked (_checkpoint_entry): all before it is proved
            v.covered_to = seq
        self._noted(e)

    # -- checkpoint entries and the key pin -----------------------------------------------------------
    def _sig_ok(self, cp: Mapping[str, Any]) -> bool:
        """A stored checkpoint's signature; held until a checkpoint entry shows the pinned key."""
        if self.public is None:
            self._unsigned.append(cp)
            return True
        return signature_ok(self.public, cp)

    def _unproved(self) -> Problem | None:
        if self._unsigned and self.public is None:
            cp = self._unsigned[0]
            return Problem(int(cp["seq"]), "forged", (
                f"the checkpoint of entry {cp['seq']} cannot be proved: no checkpoint in the log carries the "
                f"expected key {self.pin}"))
        return None

    def _rules(self, e: Entry) -> Problem | None:
        """Rules an entry must meet beyond its link and hash: a checkpoint entry's signature and key, then
        whatever a policy adds (gateway.audit.log_policy)."""
        if e["action"] == CHECKPOINT:
            return self._checkpoint_entry(e)
        return self._entry_policy(e)

    def _checkpoint_entry(self, e: Entry) -> Problem | None:
        seq = int(e["seq"])
        try:
            d = json.loads(str(e["detail"]))
            cp = {"seq": int(d["seq"]), "entry_hash": str(d["entry_hash"]), "signed_at": str(d["signed_at"]),
                  "signature": str(d["signature"])}
            key_id, raw = str(d["key_id"]), str(d.get("public_key", ""))
        except (ValueError, KeyError, TypeError):
            return Problem(seq, "forged", f"entry {seq} is a checkpoint whose details cannot be read")
        key = self.public
        if key is None:
            found = public_from_raw(raw)
            if found is not None and key_fingerprint(found) == self.pin:
                key = found
            elif found is not None:
                key_id = key_fingerprint(found)
        if key_id != self.pin:
            return Problem(seq, "other-key", (
                f"the checkpoint in entry {seq} (signed at {cp['signed_at']}) is signed by key {key_id}, but the "
                f"expected key is {self.pin}: the log was signed anew with another key"))
        if key is None:
            return Problem(seq, "forged", f"the checkpoint in entry {seq} does not carry the expected key {self.pin}")
        if cp["seq"] != seq - 1 or cp["entry_hash"] != e["prev_hash"]:
            return Problem(seq, "forged", (
                f"the checkpoint in entry {seq} does not sign the entry before it (it names entry {cp['seq']})"))
        if not signature_ok(key, cp):
            return Problem(seq, "forged", (
                f"the checkpoint in entry {seq} (signed at {cp['signed_at']}) has a signature that does not verify "
                f"with the expected key {self.pin}: it was forged or altered"))
        if self.public is None:
            self.public = key
            bad = next((c for c in self._unsigned if not signature_ok(key, c)), None)
            self._unsigned.clear()
            if bad is not None:
                return self._forged(bad)
        return None

    # -- what a policy adds: none here; gateway.audit.log_policy.PolicyChecker overrides these -----------
    def _noted(self, e: Entry) -> None:
        """Called with each entry accepted into the chain."""

    def _entry_policy(self, e: Entry) -> Problem | None:
        """A further rule the entry (not a checkpoint) must meet."""
        return None

    def _end_policy(self, v: Verdict) -> Problem | None:
        """A further rule the whole log must meet, once its chain is intact."""
        return None

    def _forged(self, cp: Mapping[str, Any]) -> Problem:
        return Problem(int(cp["seq"]), "forged", (
            f"the checkpoint of entry {cp['seq']} (signed at {cp['signed_at']}) has a signature that does "
            f"not verify with the expected key {self.pin}: it was forged or altered"))

    def _resolve(self, kind: str, e: Entry, n: Entry | None) -> None:
        """Name what is wrong with held entry `e`, now that the next entry `n` is known."""
        seq = int(e["seq"])
        n_origin = self._origin(n) if n is not None else None
        last = self.verdict.last_seq
        shifted = n is not None and n_origin == seq and n["prev_hash"] == self.prev_hash
        if kind in ("unlinked", "rewritten") and n is not None and shifted:
            return self._fail(seq, "inserted", f"entry {seq} was inserted: entry {seq} is now at {n['seq']}")
        if kind == "rewritten":
            cp = self.cps[seq]
            return self._fail(seq, "rewritten", (
                f"entries up to {seq} were rewritten after they were signed: entry {seq} no longer has the "
                f"hash in the checkpoint signed at {cp['signed_at']}"))
        if kind == "unlinked":
            if last is None:
                return self._fail(seq, "altered", f"entry {seq} was altered: it does not continue the chain")
            if n is None:
                return self._fail(seq, "altered", (
                    f"entry {seq} does not follow entry {last}: it was inserted, or {last} was altered"))
            return self._fail(last, "altered", (
                f"entry {last} was altered and its hash recomputed: entry {seq} still records the original"))
        if kind == "gap":
            if n is not None and int(n["seq"]) == self.nxt:
                return self._fail(self.nxt, "out-of-order", f"entries {self.nxt} and {seq} are out of order")
            missing = self.nxt
            what = f"entry {missing} is" if seq == missing + 1 else f"entries {missing} to {seq - 1} are"
            self._fail(missing, "missing", f"{what} missing")
            if seq == missing + 1:
                self._hunt = self._relocated(missing, str(e["prev_hash"]), last)
            return None
        # kind == "early": an intact entry sits before its place
        origin = self._origin(e)
        assert origin is not None
        if n is not None and n_origin == seq and int(n["seq"]) == origin:
            return self._fail(seq, "out-of-order", f"entries {seq} and {origin} are out of order")
        if (n is not None and n_origin is not None and n_origin - int(n["seq"]) == origin - seq
                and seq == self.nxt and self.verdict.entries):
            what = f"entry {seq} is" if origin - seq == 1 else f"entries {seq} to {origin - 1} are"
            return self._fail(seq, "missing", f"{what} missing (later ones renumbered to close the gap)")
        self._fail(seq, "moved", _renumbered(origin, seq))
        self._hunt = self._partner(seq, origin)
        return None

    # -- hunts: after the first problem, the rest of the log is read to name it better ------------------
    def _relocated(self, missing: int, h: str, last: int | None) -> Hunt:
        """Is the missing entry further on, with only its number changed?"""
        def hunt(x: Entry) -> tuple[Problem | None, Hunt | None]:
            if x["entry_hash"] != h or entry_hash_of(x, missing) != h:
                return None, hunt
            if int(x["seq"]) == missing:
                return Problem(missing, "out-of-order", f"entry {missing} is out of order: it comes after "
                                                        f"entry {missing + 1}"), None
            return Problem(missing, "moved", _renumbered(missing, int(x["seq"]))), None
        return hunt

    def _far_origin(self, e: Entry) -> Hunt:
        """Is the entry whose hash `e` names as its predecessor further on? Then `e` belongs after it."""
        seq = int(e["seq"])

        def hunt(x: Entry) -> tuple[Problem | None, Hunt | None]:
            if x["entry_hash"] != e["prev_hash"]:
                return None, hunt
            origin = int(x["seq"]) + 1
            if entry_hash_of(e, origin) != e["entry_hash"]:
                return None, None
            return Problem(seq, "moved", _renumbered(origin, seq)), self._partner(seq, origin)
        return hunt

    def _partner(self, seq: int, origin: int) -> Hunt:
        """Does the misplaced entry's place hold the one that belongs at `seq`? Then they were swapped."""
        def hunt(x: Entry) -> tuple[Problem | None, Hunt | None]:
            if int(x["seq"]) < origin:
                return None, hunt
            if int(x["seq"]) == origin and entry_hash_of(x, seq) == x["entry_hash"]:
                return Problem(seq, "out-of-order", f"entries {seq} and {origin} are out of order"), None
            return None, None
        return hunt


def _renumbered(origin: int, seq: int) -> str:
    return f"entry {origin} was altered: its sequence number was changed to {seq}"


def check(entries: Iterable[Entry], checkpoints: Iterable[Mapping[str, Any]], public: Ed25519PublicKey | None, *,
          first_seq: int = 1, prev_hash: str | None = GENESIS, pin: str | None = None) -> Verdict:
    checker = ChainChecker(checkpoints, public, first_seq=first_seq, prev_hash=prev_hash, pin=pin)
    for e in entries:
        checker.feed(e)
        if not checker.wants_more:
            break
    return checker.end()
