"""The gateway's own port over HTTPS, with client certificates required: a real node process.

Agencies' systems push records (personal data of suspects and victims) to the gateway: with
`gateway.api.tls` they travel encrypted, and with `client_ca_file` only systems holding a
certificate from the agencies' CA get a connection at all, whatever API key they know.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from .support.certs import Authority
from .support.config import base_config
from .support.nodes import Node
from .support.ports import free_port
from .support.records import record

KEYS = {"POLICE_KEY": "police-key-1", "OPS_KEY": "operator-key-1", "AUDIT_KEY": "auditor-key-1"}


def node_config(tmp: Path, port: int, tls: dict[str, Any], **api: Any) -> Path:
    cfg = base_config(tmp / "data")
    cfg["gateway"]["api"].update(host="127.0.0.1", port=port, tls=tls, **api)
    police = cfg["agencies"][0]
    police["api_key"] = {"env": "POLICE_KEY"}
    police["inbound"] = [{"name": "police-in", "adapter": "http"}]
    cfg["access"] = {"operators": [{"name": "ops", "key": {"env": "OPS_KEY"}}],
                     "auditors": [{"name": "audit", "key": {"env": "AUDIT_KEY"}}]}
    path = tmp / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    ca = Authority("agencies CA")
    server_cert, server_key = ca.issue(tmp_path, "gateway", ip="127.0.0.1")
    police_cert, police_key = ca.issue(tmp_path, "police-system")
    stranger_cert, stranger_key = Authority("someone else").issue(tmp_path, "stranger")
    return {"ca": ca.write(tmp_path / "ca.pem"), "server_cert": server_cert, "server_key": server_key,
            "police_cert": police_cert, "police_key": police_key,
            "stranger_cert": stranger_cert, "stranger_key": stranger_key}


HANDSHAKE_TIMEOUT = 3.0  # gateway.api.header_timeout: the deadline of the TLS handshake too


@pytest.fixture
def node(tmp_path: Path, pki: dict[str, Path]) -> Iterator[tuple[str, Path, Path]]:
    """(URL, configuration, log) of a node requiring client certificates."""
    port = free_port()
    cfg = node_config(tmp_path, port, {"cert_file": str(pki["server_cert"]), "key_file": str(pki["server_key"]),
                                       "client_ca_file": str(pki["ca"])}, header_timeout=HANDSHAKE_TIMEOUT)
    node = Node("tls-node", port, cfg, KEYS)
    node.start()
    assert node.log is not None
    try:
        node.wait_listening()
        yield f"https://127.0.0.1:{port}", cfg, node.log
    finally:
        assert node.stop(), "the node did not stop on SIGTERM"


def tls(pki: dict[str, Path], who: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    if who:
        ctx.load_cert_chain(pki[f"{who}_cert"], pki[f"{who}_key"])
    return ctx


def test_records_arrive_over_mutual_tls_and_nothing_else_gets_in(node: tuple[str, Path, Path],
                                                                   pki: dict[str, Path]) -> None:
    url, cfg, _ = node
    with httpx.Client(base_url=url, verify=tls(pki, "police"), timeout=10) as police:
        assert police.get("/health").json()["status"] == "alive"
        r = police.post("/inbound/police-in", content=record(case="TLS-1"), headers={"X-API-Key": "police-key-1"})
        assert r.status_code == 202, r.text
    for who in (None, "stranger"):  # no certificate, or one the agencies' CA did not issue
        with httpx.Client(base_url=url, verify=tls(pki, who), timeout=10) as other, \
                pytest.raises(httpx.TransportError):
            other.get("/health")
    with httpx.Client(base_url=url.replace("https:", "http:"), timeout=10) as clear, \
            pytest.raises(httpx.TransportError):
        clear.get("/health")

    env = {**os.environ, "GATEWAY_API_KEY": "operator-key-1", "GATEWAY_CA_BUNDLE": str(pki["ca"]),
           "GATEWAY_CLIENT_CERT": str(pki["police_cert"]), "GATEWAY_CLIENT_KEY": str(pki["police_key"])}
    queues = subprocess.run([sys.executable, "-m", "gateway.cli", "queues", "--config", str(cfg)],
                            env=env, capture_output=True, text=True, timeout=60)
    assert queues.returncode == 0, queues.stdout + queues.stderr
    assert "PROC" in queues.stdout


def test_refused_handshakes_are_counted_and_logged_once_a_minute_per_peer(node: tuple[str, Path, Path],
                                                                          pki: dict[str, Path]) -> None:
    url, _, node_log = node
    for who in (None, None, None, "stranger"):  # three without a certificate, one with a foreign one
        with httpx.Client(base_url=url, verify=tls(pki, who), timeout=10) as other, \
                pytest.raises(httpx.TransportError):
            other.get("/health")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as silent:  # no handshake at all
        assert silent.recv(100) == b""
    assert HANDSHAKE_TIMEOUT - 0.2 < time.monotonic() - started < HANDSHAKE_TIMEOUT + 2

    want = {"no_certificate": 3.0, "bad_certificate": 1.0, "timeout": 1.0, "plain_http": 0.0}
    with httpx.Client(base_url=url, verify=tls(pki, "police"), timeout=10,
                      headers={"Authorization": "Bearer operator-key-1"}) as ops:
        deadline = time.monotonic() + 10
        while True:
            text = ops.get("/metrics").text
            got = {m[0]: float(m[1]) for m in
                   re.findall(r'^gateway_tls_handshake_refusals_total\{reason="(\w+)"\} (\S+)$', text, re.M)}
            if all(got.get(k) == v for k, v in want.items()) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert all(got.get(k) == v for k, v in want.items()), got
    with httpx.Client(base_url=url, verify=tls(pki, "police"), timeout=10,
                      headers={"X-API-Key": "auditor-key-1"}) as auditor:
        entries = auditor.get("/api/v1/audit").json()["entries"]
    refused = {json.loads(e["detail"])["rule"]: e for e in entries if e["action"] == "access-refused"}
    assert set(refused) == {"tls.no_certificate", "tls.bad_certificate", "tls.timeout"}, entries
    assert refused["tls.no_certificate"]["actor"] == "client 127.0.0.1"
    assert "TLS handshake refused" in json.loads(refused["tls.bad_certificate"]["detail"])["why"]

    lines = node_log.read_text().splitlines()
    for reason in ("no_certificate", "bad_certificate", "timeout"):
        mine = [line for line in lines if f"TLS handshake refused ({reason}) from 127.0.0.1" in line]
        assert len(mine) == 1, (reason, lines)  # the second and third refusal without one are folded in
    assert any("unable to get local issuer certificate" in line for line in lines)


def test_a_certificate_file_that_cannot_be_loaded_is_named(tmp_path: Path, pki: dict[str, Path]) -> None:
    cfg = node_config(tmp_path, free_port(), {"cert_file": str(pki["server_cert"]),
                                              "key_file": str(tmp_path / "missing.key")})
    r = subprocess.run([sys.executable, "-m", "gateway", str(cfg)], env={**os.environ, **KEYS},
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert "gateway.api.tls: cannot load" in r.stderr and "missing.key" in r.stderr
    assert "Traceback" not in r.stderr
