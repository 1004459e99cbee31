"""A witness for the exchange log: copies of its signed checkpoints kept outside the node's storage.

Whoever can write the database and read the node's signing key can rewrite the log from any entry
and sign it anew; the chain, the signatures and the key pin all still pass. A checkpoint held
elsewhere, by a peer gateway (POST /api/v1/witness, stored append-only, answered with the peer's
own signed acknowledgement) or in an append-only file on separate storage, shows the rewrite:
`gateway audit verify --witness` compares it with the local chain (`log_policy.Policy.witnessed`).

Records are kept per signing key (its fingerprint names the log), one JSON object a line:
node, seq, entry_hash, signed_at, signature, key_id, public_key, received_at.

Sending never holds up intake: checkpoints are taken from the store by a task of their own and
sent again after a failure, every `retry_seconds`; a witness that is down only delays its copy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

import httpx

from gateway.audit.chain_rules import (
    CHECKPOINT,
    key_fingerprint,
    public_from_raw,
    signature_ok,
    witness_message,
)
from gateway.audit.signing import Signer
from gateway.config import WitnessSettings
from gateway.store.roles import ExchangeLog
from gateway.store.shared import iso_now

log = logging.getLogger("gateway.witness")
FIELDS = ("node", "seq", "entry_hash", "signed_at", "signature", "key_id", "public_key")
_PAGE = 1000


class WitnessError(Exception):
    """A checkpoint the witness will not take, or a witness that cannot be read."""


class WitnessFile:
    """An append-only file of checkpoints: opened with O_APPEND, each line flushed to disk before the
    sender hears it was kept. The file is only ever appended to; the OS's append-only attribute
    (chattr +a) or a WORM volume makes that hold against its owner too."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def append(self, record: dict[str, Any]) -> None:
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)

    def read(self, key_id: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        out = []
        with self.path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    r["seq"] = int(r["seq"])
                except (ValueError, KeyError, TypeError) as e:
                    raise WitnessError(f"{self.path}, line {n}: not a witnessed checkpoint ({e}) / "
                                       f"第 {n} 行不是见证的检查点") from None
                if key_id is None or r.get("key_id") == key_id:
                    out.append(r)
        return out


def checked(record: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint offered to a witness, with every field present and its signature valid."""
    missing = [k for k in FIELDS if k not in record]
    if missing:
        raise WitnessError(f"缺少字段 / missing fields: {', '.join(missing)}")
    r = {k: record[k] for k in FIELDS}
    try:
        r["seq"] = int(r["seq"])
    except (TypeError, ValueError):
        raise WitnessError("seq 必须是整数 / seq must be a whole number") from None
    public = public_from_raw(str(r["public_key"]))
    if public is None or key_fingerprint(public) != r["key_id"]:
        raise WitnessError("公钥与密钥标识不符 / the public key does not match the key id")
    if not signature_ok(public, r):
        raise WitnessError(f"检查点 {r['seq']} 的签名无效 / the checkpoint of entry {r['seq']} has a bad signature")
    return r


class PeerWitness:
    """What this node does as a witness for its peers: keep their checkpoints, acknowledge each signed."""

    def __init__(self, data_dir: str | Path, signer: Signer) -> None:
        self.root = Path(data_dir) / "witness"
        self.signer = signer

    def _file(self, key_id: str) -> WitnessFile:
        if not key_id.isalnum():
            raise WitnessError(f"不是密钥标识 / not a key id: {key_id!r}")
        return WitnessFile(self.root / f"{key_id}.jsonl")

    def take(self, record: dict[str, Any]) -> dict[str, Any]:
        r = checked(record)
        r["received_at"] = iso_now()
        self._file(str(r["key_id"])).append(r)
        sig = self.signer.private.sign(witness_message(str(r["node"]), int(r["seq"]), str(r["entry_hash"]),
                                                       r["received_at"]))
        return {"kept": True, "seq": r["seq"], "received_at": r["received_at"], "witness_key_id": self.signer.key_id,
                "signature": base64.b64encode(sig).decode()}

    def held(self, key_id: str) -> list[dict[str, Any]]:
        return self._file(key_id).read()


def read_witness(source: str, key_id: str, api_key: str | None = None) -> list[dict[str, Any]]:
    """The checkpoints a witness holds for the log signed by `key_id`: from a peer's URL or a file."""
    if source.startswith(("http://", "https://")):
        try:
            r = httpx.get(f"{source.rstrip('/')}/{key_id}", headers={"X-API-Key": api_key or ""}, timeout=30)
        except httpx.HTTPError as e:
            raise WitnessError(f"见证节点无法访问 / the witness at {source} cannot be reached: {e}") from None
        if r.status_code != 200:
            raise WitnessError(f"见证节点拒绝 / the witness at {source} answered HTTP {r.status_code}: {r.text[:200]}")
        return list(r.json()["checkpoints"])
    return WitnessFile(source).read(key_id)


class Witnessing:
    """Sends this node's checkpoints to its witnesses, in order, again and again until each is kept."""

    def __init__(self, store: ExchangeLog, settings: WitnessSettings, node: str, data_dir: Path,
                 key_id: str) -> None:
        self.store, self.settings, self.node, self.key_id = store, settings, node, key_id
        self.file = WitnessFile(settings.file) if settings.file else None
        self.acks = WitnessFile(data_dir / "witness-acks.jsonl")
        self._wake = asyncio.Event()
        self.sent: dict[str, int] = {}  # witness -> highest checkpoint entry it holds from this node
        self.failures = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            try:
                await self.flush()
                wait = None
            except Exception as e:  # the witness is down or refuses: intake goes on, the copy waits
                self.failures += 1
                log.warning("witness: sending checkpoints failed (%s); will try again", e)
                wait = self.settings.retry_seconds
            self._wake.clear()
            try:
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def flush(self) -> None:
        """Send every checkpoint entry a witness does not hold yet."""
        async with httpx.AsyncClient(timeout=10) as http:
            if self.settings.url:
                await self._send("url", lambda r: self._post(http, r))
            if self.file is not None:
                file = self.file
                await self._send("file", lambda r: asyncio.to_thread(file.append, r))

    async def _held(self, target: str) -> int:
        """Where to go on from: after the newest checkpoint the witness holds that the log still has."""
        if target == "url":
            assert self.settings.url
            key = self.settings.api_key.resolve() if self.settings.api_key else None
            held = await asyncio.to_thread(read_witness, self.settings.url, self.key_id, key)
        else:
            assert self.file is not None
            held = await asyncio.to_thread(self.file.read, self.key_id)
        for w in sorted(held, key=lambda r: -int(r["seq"]))[:50]:
            at = await self.store.audit_entries(after_seq=int(w["seq"]) - 1, limit=1)
            if at and at[0].seq == int(w["seq"]) and at[0].entry_hash == w["entry_hash"]:
                return int(w["seq"]) + 1
        return 0

    async def _send(self, target: str, put: Any) -> None:
        if target not in self.sent:
            self.sent[target] = await self._held(target)
        after = self.sent[target]
        while True:
            rows = await self.store.audit_entries(after_seq=after, limit=_PAGE)
            if not rows:
                return
            for e in rows:
                if e.action == CHECKPOINT:
                    d = json.loads(e.detail)
                    await put({"node": e.node, **{k: d[k] for k in FIELDS[1:]}})
                after = e.seq
                self.sent[target] = after

    async def _post(self, http: httpx.AsyncClient, record: dict[str, Any]) -> None:
        assert self.settings.url
        key = self.settings.api_key.resolve() if self.settings.api_key else ""
        r = await http.post(self.settings.url, json=record, headers={"X-API-Key": key})
        if r.status_code != 200:
            raise WitnessError(f"HTTP {r.status_code}: {r.text[:200]}")
        await asyncio.to_thread(self.acks.append, {**r.json(), "key_id": record["key_id"], "node": record["node"]})
