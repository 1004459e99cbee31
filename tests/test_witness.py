"""Two real nodes over HTTP: A sends each signed checkpoint of its log to B, which keeps it append-only
and answers with its own signed acknowledgement; a witness that is down never holds up A's intake;
`gateway audit verify --witness URL` catches A's log rewritten with A's own key."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from gateway.audit.signing import Signer
from gateway.audit.verify_bundle import (
    witness_message,
)

from .support.config import http_config
from .support.forgery import log_rows, rechain, replace_log
from .support.nodes import Node, gateway_cli
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.waiting import wait_until

pytestmark = pytest.mark.slow
ENV = {"POLICE_KEY": "police-key-w", "WITNESS_KEY": "node-a-witness-key"}


def _node(tmp: Path, name: str, rcv: Receiver, **gateway: Any) -> Node:
    port = free_port()
    cfg = http_config(tmp / name, rcv.url, node=name, api={"host": "127.0.0.1", "port": port},
                      checkpoint_every=20, checkpoint_seconds=0.5, **gateway)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return Node(name, port, path, ENV)


def _held(b: Path, key_id: str) -> list[dict[str, Any]]:
    f = b / "witness" / f"{key_id}.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


def _last_checkpoint(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return int(c.execute("SELECT max(seq) FROM checkpoints").fetchone()[0] or 0)


async def _submit(url: str, n: int, tag: str) -> None:
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": ENV["POLICE_KEY"]}, timeout=10) as http:
        for i in range(n):
            t0 = asyncio.get_running_loop().time()
            r = await http.post("/inbound/police-in", content=record(case=f"C2026-{tag}{i:03d}"),
                                headers={"X-Message-Id": f"{tag}-{i}"})
            assert r.status_code in (200, 202), r.text
            assert asyncio.get_running_loop().time() - t0 < 2, "intake waited for the witness"


async def test_two_nodes_witness_and_rewrite_detected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():  # for the auditor's commands, which read A's configuration
        monkeypatch.setenv(k, v)
    rcv = Receiver()
    b = _node(tmp_path, "node-b", rcv)
    cfg_b = yaml.safe_load(b.config.read_text())
    cfg_b["access"] = {"witnesses": [{"name": "node-a", "key": {"env": "WITNESS_KEY"}}]}
    b.config.write_text(yaml.safe_dump(cfg_b))
    a = _node(tmp_path, "node-a", rcv, witness={"url": f"{b.url}/api/v1/witness", "api_key": {"env": "WITNESS_KEY"},
                                                "retry_seconds": 0.5})
    async with serving(rcv.app(), rcv.port):
        await b.start_and_wait()
        await a.start_and_wait()
        ka = Signer.load_or_create(tmp_path / "node-a" / "signing-key.pem")
        kb = Signer.load_or_create(tmp_path / "node-b" / "signing-key.pem")
        await _submit(a.url, 30, "A")
        await asyncio.to_thread(wait_until, lambda: _held(tmp_path / "node-b", ka.key_id) and max(
            w["seq"] for w in _held(tmp_path / "node-b", ka.key_id)) >= _last_checkpoint(
            tmp_path / "node-a" / "gateway.db"), 20, "B holds A's newest checkpoint")

        forged = {**_held(tmp_path / "node-b", ka.key_id)[0], "entry_hash": "0" * 64}
        r = httpx.post(f"{b.url}/api/v1/witness", json=forged, headers={"X-API-Key": ENV["WITNESS_KEY"]})
        assert r.status_code == 400 and "bad signature" in r.text, "a witness keeps only what the key signed"
        r = httpx.post(f"{b.url}/api/v1/witness", json=forged, headers={"X-API-Key": ENV["POLICE_KEY"]})
        assert r.status_code in (401, 403), "only keys of the witness role deposit checkpoints"

        b.kill()  # the witness is down: A goes on taking records in, and sends again later
        await _submit(a.url, 10, "B")
        await asyncio.sleep(1.5)
        await b.start_and_wait()
        await asyncio.to_thread(wait_until, lambda: max(w["seq"] for w in _held(tmp_path / "node-b", ka.key_id))
                                >= _last_checkpoint(tmp_path / "node-a" / "gateway.db"), 20, "B caught up")
        a.stop()
        b_url = f"{b.url}/api/v1/witness"
        r = await asyncio.to_thread(gateway_cli, "audit", "verify", "--config", str(a.config), "--key-fingerprint",
                                    ka.key_id, "--witness", b_url)
        assert r.returncode == 0 and "INTACT" in r.stdout, r.stdout + r.stderr

        # every acknowledgement verifies with B's key
        acks = [json.loads(x) for x in (tmp_path / "node-a" / "witness-acks.jsonl").read_text().splitlines()]
        held = {w["seq"]: w for w in _held(tmp_path / "node-b", ka.key_id)}
        assert len(acks) >= len(held) > 3
        for ack in acks:
            w = held[ack["seq"]]
            kb.public.verify(base64.b64decode(ack["signature"]),
                             witness_message("node-a", w["seq"], w["entry_hash"], ack["received_at"]))
            assert ack["witness_key_id"] == kb.key_id

        # someone with the database and A's key rewrites A's log from entry 25 and signs it anew
        db = tmp_path / "node-a" / "gateway.db"
        _rewrite_from(db, 25, ka)
        r = await asyncio.to_thread(gateway_cli, "audit", "verify", "--config", str(a.config), "--key-fingerprint",
                                    ka.key_id)
        assert r.returncode == 0, "without the witness nothing shows"
        r = await asyncio.to_thread(gateway_cli, "audit", "verify", "--config", str(a.config), "--key-fingerprint",
                                    ka.key_id, "--witness", b_url)
        assert r.returncode == 1 and "TAMPERED (witness)" in r.stdout, r.stdout + r.stderr
        b.stop()
    print(f"\nwitness: B holds {len(held)} checkpoints of A, {len(acks)} signed acknowledgements verified")


def _rewrite_from(db: Path, k: int, signer: Signer) -> None:
    es = log_rows(db)
    es[k - 1]["actor"] = "someone-else"
    replace_log(db, rechain(es, signer))
