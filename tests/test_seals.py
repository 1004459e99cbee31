"""Electronic seals on legal documents: SM2 over SM3 checked by the gateway against OpenSSL 3's
command line (each signs, the other verifies), and the seal step deciding records by its trust
store: good seal, wrong key, revoked key, expired certificate and validity, altered file."""

from __future__ import annotations

import base64
import datetime
import hashlib
import re
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from Cryptodome.Util.asn1 import DerSequence
from gmssl import sm2 as gm
from lxml import etree

from adapters.memory import MemoryOutbound
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.files import FileStore
from gateway.model import Attachment, MessageStatus, Receipt
from gateway.runtime import Gateway
from gateway.seals import sm2
from gateway.seals.truststore import parse_pem
from gateway.sim.records import MINIMAL_CONTENT

from .support.config import base_config
from .support.records import NS
from .support.waiting import wait_for

ID = "distid:1234567812345678"  # GM/T 0009's default ID; OpenSSL 3.0's pkeyutl uses none unless told
TODAY = datetime.datetime.now(datetime.UTC).date()
FILE = "起诉意见书 原件扫描 — sealed file bytes\n".encode() * 50


def openssl(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], input=data, capture_output=True, timeout=30)


@dataclass(frozen=True)
class Key:
    pem: Path  # private key
    pub: Path
    private_hex: str

    def pub_pem(self) -> str:
        return self.pub.read_text()

    def point(self) -> bytes:
        body = [line for line in self.pub_pem().splitlines() if "-----" not in line]
        return sm2.point_from_spki(base64.b64decode("".join(body)))


def make_key(folder: Path, name: str) -> Key:
    pem, pub = folder / f"{name}.pem", folder / f"{name}.pub"
    assert openssl("genpkey", "-algorithm", "SM2", "-out", str(pem)).returncode == 0
    assert openssl("pkey", "-in", str(pem), "-pubout", "-out", str(pub)).returncode == 0
    text = openssl("pkey", "-in", str(pem), "-text", "-noout").stdout.decode()
    hexd = re.search(r"priv:\s*([0-9a-f:\s]+?)\s*pub:", text, re.S)
    assert hexd is not None
    return Key(pem, pub, hexd.group(1).replace(":", "").replace("\n", "").replace(" ", "").rjust(64, "0")[-64:])


def openssl_sign(key: Key, data: bytes, folder: Path) -> bytes:
    src = folder / "to-sign.bin"
    src.write_bytes(data)
    r = openssl("pkeyutl", "-sign", "-rawin", "-digest", "sm3", "-inkey", str(key.pem), "-pkeyopt", ID,
                "-in", str(src))
    assert r.returncode == 0, r.stderr
    return r.stdout


def openssl_verifies(key: Key, data: bytes, signature: bytes, folder: Path) -> bool:
    (folder / "v.bin").write_bytes(data)
    (folder / "v.sig").write_bytes(signature)
    r = openssl("pkeyutl", "-verify", "-rawin", "-digest", "sm3", "-pubin", "-inkey", str(key.pub), "-pkeyopt", ID,
                "-in", str(folder / "v.bin"), "-sigfile", str(folder / "v.sig"))
    return r.returncode == 0 and b"Signature Verified Successfully" in r.stdout


def gmssl_sign(key: Key, data: bytes) -> bytes:
    signer = gm.CryptSM2(private_key=key.private_hex, public_key=key.point()[1:].hex())
    rs = signer.sign_with_sm3(data, secrets.token_hex(32))  # gmssl's own nonce comes from `random`
    return bytes(DerSequence([int(rs[:64], 16), int(rs[64:], 16)]).encode())


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("sm2")
    assert openssl("version").stdout.startswith(b"OpenSSL 3")
    k = {n: make_key(folder, n) for n in ("seal", "other", "old", "y2025", "expired")}
    cert = folder / "seal.crt"
    r = openssl("req", "-new", "-x509", "-key", str(k["seal"].pem), "-sm3", "-sigopt", ID, "-days", "30",
                "-subj", "/CN=POLICE-SEAL-01/O=City Police", "-out", str(cert))
    assert r.returncode == 0, r.stderr
    return {**k, "cert": cert.read_text(), "expired_cert": past_certificate(k["expired"], folder), "folder": folder}


def past_certificate(key: Key, folder: Path) -> str:
    """A certificate valid only in the first half of 2025 (OpenSSL 3.0's `ca` sets past dates)."""
    ca = folder / "ca"
    ca.mkdir()
    (ca / "index.txt").touch()
    (ca / "serial").write_text("01\n")
    (ca / "ca.cnf").write_text("[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
                               "default_md = sm3\npolicy = p\n[p]\ncommonName = supplied\n")
    csr = ca / "r.csr"
    assert openssl("req", "-new", "-key", str(key.pem), "-sm3", "-subj", "/CN=POLICE-SEAL-CERT-2025",
                   "-out", str(csr)).returncode == 0
    r = subprocess.run(["openssl", "ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", str(key.pem),
                        "-in", "r.csr", "-startdate", "20250101000000Z", "-enddate", "20250630000000Z",
                        "-out", "old.crt"], cwd=ca, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return (ca / "old.crt").read_text()


# -- the algorithm, cross-checked ------------------------------------------------------------------
def test_openssl_seals_verify_with_the_gateway_and_changes_do_not(keys: dict[str, Any]) -> None:
    seal: Key = keys["seal"]
    sig = openssl_sign(seal, FILE, keys["folder"])
    assert sm2.verify(seal.point(), [FILE], sig)
    assert sm2.verify(seal.point(), [FILE[:100], FILE[100:]], sig)  # streamed in chunks, as files are
    assert not sm2.verify(seal.point(), [FILE + b"x"], sig)
    assert not sm2.verify(keys["other"].point(), [FILE], sig)
    r, s = (int(x) for x in DerSequence().decode(sig))
    n = int(gm.default_ecc_table["n"], 16)
    assert not sm2.verify(seal.point(), [FILE], bytes(DerSequence([r + n, s]).encode()))  # r out of range
    assert not sm2.verify(seal.point(), [FILE], b"\x30\x00")


def test_gateway_side_signatures_verify_with_openssl(keys: dict[str, Any]) -> None:
    seal: Key = keys["seal"]
    sig = gmssl_sign(seal, FILE)
    assert openssl_verifies(seal, FILE, sig, keys["folder"])
    assert not openssl_verifies(seal, FILE + b"x", sig, keys["folder"])
    assert not openssl_verifies(keys["other"], FILE, sig, keys["folder"])
    assert sm2.verify(seal.point(), [FILE], sig)


def test_trust_store_reads_sm2_keys_and_certificates_and_refuses_others(keys: dict[str, Any]) -> None:
    seal: Key = keys["seal"]
    from_cert = parse_pem("POLICE", "K", keys["cert"], None, None, None, "")
    assert from_cert.point == seal.point() and from_cert.valid_from == TODAY
    assert from_cert.valid_until == TODAY + datetime.timedelta(days=30)
    assert "CN=POLICE-SEAL-01" in from_cert.source
    ec = openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256").stdout
    ec_pub = openssl("pkey", "-pubout", data=ec).stdout.decode()
    with pytest.raises(ValueError, match="not an SM2 key"):
        parse_pem("POLICE", "K", ec_pub, None, None, None, "")


# -- the pipeline step -----------------------------------------------------------------------------
def sealed_record(case: str, signature: bytes | None, *, date: datetime.date = TODAY,
                  key_id: str = "POLICE-SEAL-01", data: bytes = FILE) -> bytes:
    digest = hashlib.sha256(data).hexdigest()
    seal = (f"<Signature algorithm='SM2-SM3' keyId='{key_id}'>{base64.b64encode(signature).decode()}</Signature>"
            if signature is not None else "")
    docs = ("<Documents><Document><Type>prosecution-recommendation</Type><Number>公诉-2026-7</Number>"
            f"<Date>{date.isoformat()}</Date><Issuer>POLICE</Issuer><FileRef>f1</FileRef>{seal}</Document>"
            "<Document><Type>indictment</Type><Number>N-1</Number><Date>2026-01-02</Date><Issuer>X</Issuer>"
            "</Document></Documents>")
    content = MINIMAL_CONTENT[: MINIMAL_CONTENT.index("<Documents>")] + docs + (
        f"<Dossier><File id='f1'><Name>recommendation.pdf</Name><MediaType>application/pdf</MediaType>"
        f"<Size>{len(data)}</Size><SHA256>{digest}</SHA256></File></Dossier>")
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="1.0">'
            f"<CaseNumber>{case}</CaseNumber><Stage>prosecution-review</Stage><Action>transfer-for-prosecution"
            f"</Action><Sender>POLICE</Sender><LocalNumbers><LocalNumber agency='POLICE'>L-{case}</LocalNumber>"
            f"</LocalNumbers>{content}</CaseRecord>").encode()


def seal_config(tmp_path: Path, keys: dict[str, Any], **seals: Any) -> dict[str, Any]:
    cfg = base_config(tmp_path / "data")
    cfg["seals"] = {"must_seal": ["prosecution-recommendation"], "trust": [
        {"agency": "POLICE", "key_id": "POLICE-SEAL-01", "certificate": keys["cert"]},
        {"agency": "POLICE", "key_id": "POLICE-SEAL-OLD", "public_key": keys["old"].pub_pem(),
         "revoked_on": (TODAY - datetime.timedelta(days=10)).isoformat(), "revocation_reason": "key compromised"},
        {"agency": "POLICE", "key_id": "POLICE-SEAL-2025", "public_key": keys["y2025"].pub_pem(),
         "valid_from": "2025-01-01", "valid_until": "2025-12-31"},
        {"agency": "POLICE", "key_id": "POLICE-SEAL-CERT-2025", "certificate": keys["expired_cert"]},
    ], **seals}
    return cfg


class Node:
    def __init__(self, gw: Gateway, proc: MemoryOutbound) -> None:
        self.gw, self.proc = gw, proc

    async def send(self, body: bytes, data: bytes = FILE) -> Receipt:
        files = FileStore.for_data_dir(self.gw.config.gateway.data_dir)
        sha, size = files.put_stream([data])
        return await self.gw.inbound["police-in"].submit(  # type: ignore[attr-defined,no-any-return]
            body, attachments=(Attachment("recommendation.pdf", sha, size, "application/pdf"),))

    def rules(self, r: Receipt) -> list[str]:
        return [re.sub(r"^\[([^\]]+)\].*", r"\1", x, flags=re.S) for x in r.reasons]


@pytest.fixture
async def node(tmp_path: Path, keys: dict[str, Any]) -> Any:
    proc = MemoryOutbound()
    gw = Gateway(parse_config(seal_config(tmp_path, keys)), outbound={"PROC": proc})  # type: ignore[dict-item]
    await gw.start()
    try:
        yield Node(gw, proc)
    finally:
        await gw.stop()


async def test_good_seal_is_accepted_and_logged(node: Node, keys: dict[str, Any]) -> None:
    r = await node.send(sealed_record("S-GOOD", openssl_sign(keys["seal"], FILE, keys["folder"])))
    assert r.status == MessageStatus.ACCEPTED, r.reasons
    entries = await node.gw.store.audit_entries(message_id=r.message_id)
    (ok,) = [e for e in entries if e.action == "seals-verified"]
    assert "POLICE-SEAL-01" in ok.detail and "公诉-2026-7" in ok.detail


async def test_seal_by_another_key_is_refused(node: Node, keys: dict[str, Any]) -> None:
    r = await node.send(sealed_record("S-WRONG", openssl_sign(keys["other"], FILE, keys["folder"])))
    assert r.status == MessageStatus.REJECTED and node.rules(r) == ["seal.invalid"]
    assert "POLICE-SEAL-01" in r.reasons[0]


async def test_altered_file_is_refused(node: Node, keys: dict[str, Any]) -> None:
    sig = openssl_sign(keys["seal"], FILE, keys["folder"])
    altered = FILE.replace("原件".encode(), "复印".encode(), 1)
    r = await node.send(sealed_record("S-ALTERED", sig, data=altered), data=altered)
    assert r.status == MessageStatus.REJECTED and node.rules(r) == ["seal.invalid"]
    assert "changed after sealing" in r.reasons[0]


async def test_revoked_key_fails_from_its_revocation_day_on(node: Node, keys: dict[str, Any]) -> None:
    sig = openssl_sign(keys["old"], FILE, keys["folder"])
    r = await node.send(sealed_record("S-REVOKED", sig, key_id="POLICE-SEAL-OLD"))
    assert r.status == MessageStatus.REJECTED and node.rules(r) == ["seal.revoked"]
    assert "key compromised" in r.reasons[0]
    before = await node.send(sealed_record("S-BEFORE-REVOCATION", sig, key_id="POLICE-SEAL-OLD",
                                           date=TODAY - datetime.timedelta(days=11)))
    assert before.status == MessageStatus.ACCEPTED, before.reasons


async def test_expired_certificate_and_validity_period_fail(node: Node, keys: dict[str, Any]) -> None:
    sig = openssl_sign(keys["expired"], FILE, keys["folder"])
    late = await node.send(sealed_record("S-CERT-EXPIRED", sig, key_id="POLICE-SEAL-CERT-2025"))
    assert late.status == MessageStatus.REJECTED and node.rules(late) == ["seal.expired"]
    assert "CN=POLICE-SEAL-CERT-2025" in late.reasons[0] and "2025-06-30" in late.reasons[0]
    in_time = await node.send(sealed_record("S-CERT-IN-TIME", sig, key_id="POLICE-SEAL-CERT-2025",
                                            date=datetime.date(2025, 3, 1)))
    assert in_time.status == MessageStatus.ACCEPTED, in_time.reasons
    old = openssl_sign(keys["y2025"], FILE, keys["folder"])
    r = await node.send(sealed_record("S-2025-KEY-IN-2026", old, key_id="POLICE-SEAL-2025"))
    assert r.status == MessageStatus.REJECTED and node.rules(r) == ["seal.expired"]
    ok = await node.send(sealed_record("S-2025", old, key_id="POLICE-SEAL-2025", date=datetime.date(2025, 6, 1)))
    assert ok.status == MessageStatus.ACCEPTED, ok.reasons


async def test_missing_and_unknown_seals_block_documents_that_must_be_sealed(node: Node, keys: dict[str, Any]) -> None:
    r = await node.send(sealed_record("S-NONE", None))
    assert r.status == MessageStatus.REJECTED and node.rules(r) == ["seal.none"]
    sig = openssl_sign(keys["seal"], FILE, keys["folder"])
    u = await node.send(sealed_record("S-UNKNOWN", sig, key_id="POLICE-SEAL-99"))
    assert u.status == MessageStatus.REJECTED and node.rules(u) == ["seal.unknown-key"]


async def test_warn_setting_forwards_with_the_finding(tmp_path: Path, keys: dict[str, Any]) -> None:
    proc = MemoryOutbound()
    gw = Gateway(parse_config(seal_config(tmp_path, keys, failure="warn")), outbound={"PROC": proc})  # type: ignore[dict-item]
    await gw.start()
    try:
        node = Node(gw, proc)
        r = await node.send(sealed_record("S-WARN", openssl_sign(keys["other"], FILE, keys["folder"])))
        assert r.status == MessageStatus.ACCEPTED and node.rules(r) == ["seal.invalid"]
        await wait_for(lambda: proc.received, what="the forwarded record")
        doc = etree.fromstring(proc.received[0].body)
        assert doc.xpath("string(//c:Warnings/c:Warning/c:Rule)", namespaces={"c": NS}) == "seal.invalid"
    finally:
        await gw.stop()


def test_a_key_that_is_not_sm2_is_a_configuration_error(tmp_path: Path, keys: dict[str, Any]) -> None:
    cfg = base_config(tmp_path / "data")
    cfg["seals"] = {"trust": [{"agency": "POLICE", "key_id": "K", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n"
                                                                              "-----END PUBLIC KEY-----"}]}
    with pytest.raises(ConfigError, match=r"seals\.trust\.0.*SubjectPublicKeyInfo"):
        parse_config(cfg)
    cfg["seals"] = {"trust": [{"agency": "POLICE", "key_id": "K"}]}
    with pytest.raises(ConfigError, match="exactly one of public_key and certificate"):
        parse_config(cfg)
