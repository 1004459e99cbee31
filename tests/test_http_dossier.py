"""Records with their dossier files over HTTP, both ways, on real loopback servers.

The sender's form is built by httpx's own multipart encoder and the receiver reads the gateway's
with Starlette's form parser, so neither side is checked only against the gateway's own code.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.http import HttpOutbound, OutboundSettings
from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.files import FileStore
from gateway.model import Attachment, OutboundMessage, Outcome
from gateway.runtime import Gateway

from .support.config import http_config
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.waiting import wait_for

SCAN = os.urandom(3 * 1024 * 1024 + 17)  # larger than any one read or write chunk
NOTE = "讯问笔录（第一次）".encode() * 40
FILES = [("起诉意见书-扫描件.pdf", SCAN, "application/pdf"), ("讯问笔录.pdf", NOTE, "application/pdf")]


def listed(case: str, files: list[tuple[str, bytes, str]]) -> bytes:
    """A standard record whose dossier lists exactly these files."""
    entries = "".join(
        f"<File id='f{i}'><Name>{name}</Name><MediaType>{media}</MediaType><Size>{len(data)}</Size>"
        f"<SHA256>{hashlib.sha256(data).hexdigest()}</SHA256></File>"
        for i, (name, data, media) in enumerate(files))
    return re.sub(rb"<Dossier>.*</Dossier>", f"<Dossier>{entries}</Dossier>".encode(), record(case=case))


def config(tmp: Path, receiver_url: str, **inbound: Any) -> dict[str, Any]:
    cfg = http_config(tmp, receiver_url)
    cfg["agencies"][1]["outbound"]["settings"]["dossier"] = "multipart"
    if inbound:
        cfg["agencies"][0]["inbound"][0]["settings"] = inbound
    return cfg


async def test_a_dossier_travels_in_and_out_as_multipart_byte_exact(tmp_path: Path, police_key: dict[str, str]) -> None:
    rcv = Receiver()
    gw = Gateway(parse_config(config(tmp_path, rcv.url)))
    body = listed("HTTP-D1", FILES)
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post("/inbound/police-in", headers=police_key, files=[
            ("record", ("transfer.xml", body, "application/xml")),
            *(("file", (name, data, media)) for name, data, media in FILES)])
        assert r.status_code == 202, r.text
        mid = r.json()["message_id"]
        store = FileStore.for_data_dir(tmp_path)
        assert all(store.path_for(hashlib.sha256(d).hexdigest()).read_bytes() == d for _, d, _ in FILES)

        async def delivered() -> bool:
            return (await gw.store.get_deliveries(mid))[0].state == "delivered"

        await wait_for(delivered)
        d = (await gw.store.get_deliveries(mid))[0]
        detail = (await gw.store.get_attempts(d.id))[-1].detail
    assert "record and 2 dossier file(s) sent" in detail, detail
    form = rcv.forms[0]
    assert form["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert "transfer-encoding" not in form["headers"], "some legacy receivers refuse chunked uploads"
    assert int(form["headers"]["content-length"]) > len(SCAN)
    assert form["headers"]["idempotency-key"] == f"{mid}:PROC"
    name, rec, media = form["record"]
    assert media == "application/xml" and b"<CaseNumber>HTTP-D1</CaseNumber>" in rec
    assert form["files"] == FILES, "names, bytes and media types arrive as sent"


async def test_a_listed_file_not_sent_blocks_the_record(tmp_path: Path, police_key: dict[str, str]) -> None:
    gw = Gateway(parse_config(config(tmp_path, f"http://127.0.0.1:{free_port()}/receive")))
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", headers=police_key, files=[
            ("record", ("t.xml", listed("HTTP-D2", FILES), "application/xml")),
            ("file", FILES[1])])
        assert r.status_code == 422, r.text
        reasons = r.json()["reasons"]
        assert len(reasons) == 1 and reasons[0].startswith("[DOS-01]") and "File[1]" in reasons[0], r.text
        assert r.json()["destinations"] == ["POLICE"], "the defect notice goes back to the sender"


@pytest.mark.parametrize(("parts", "status", "says"), [
    ([("file", FILES[1])], 400, "no part named 'record'"),
    ([("record", ("t.xml", b"<x/>", "application/xml")), ("evidence", FILES[1])], 400, "a part named 'evidence'"),
    ([("record", ("t.xml", b"<x/>", "application/xml")), ("file", FILES[0])], 413, "dossier files are over the limit"),
])
async def test_bad_forms_are_refused_with_the_rule_and_logged(tmp_path: Path, police_key: dict[str, str],
                                                               parts: list[Any], status: int, says: str) -> None:
    gw = Gateway(parse_config(config(tmp_path, "http://127.0.0.1:9/x", max_dossier_bytes=1024 * 1024)))
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", headers=police_key, files=parts)
        assert r.status_code == status and says in r.json()["error"], r.text
        assert "nothing was accepted" in r.json()["error"]
        refused = [e for e in await gw.store.audit_entries() if e.action == "refused"]
        assert len(refused) == 1 and says in refused[0].detail
        assert await gw.store.list_deliveries() == []
    tmp = tmp_path / "files" / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir()), "a refused upload leaves no half-written file"


async def test_a_refused_body_leaves_none_of_its_files_in_the_store(tmp_path: Path, police_key: dict[str, str]) -> None:
    """Twenty files taken, then one over the limit: the 413 says nothing was accepted, and nothing was
    kept (the files used to stay in the store until retention's grace period ended)."""
    gw = Gateway(parse_config(config(tmp_path, "http://127.0.0.1:9/x", max_dossier_bytes=1024 * 1024)))
    parts: list[Any] = [("record", ("t.xml", record(), "application/xml"))]
    parts += [("file", (f"page-{i}.pdf", os.urandom(4000), "application/pdf")) for i in range(20)]
    parts.append(("file", ("too-big.pdf", os.urandom(2 * 1024 * 1024), "application/pdf")))
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", headers=police_key, files=parts)
        assert r.status_code == 413 and "nothing was accepted" in r.json()["error"], r.text
    kept = [p for p in (tmp_path / "files").glob("*/*") if p.parent.name != "tmp"]
    assert kept == [], f"{len(kept)} files of a refused body stayed in the store"
    tmp = tmp_path / "files" / "tmp"
    assert not tmp.exists() or not list(tmp.iterdir())


async def test_a_body_cut_off_before_its_closing_boundary_is_refused(tmp_path: Path,
                                                                      police_key: dict[str, str]) -> None:
    gw = Gateway(parse_config(config(tmp_path, "http://127.0.0.1:9/x")))
    whole = httpx.Request("POST", "http://x/", files=[("record", ("t.xml", record(), "application/xml")),
                                                      ("file", FILES[1])])
    cut = whole.read()[:-60]
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/police-in", content=cut,
                            headers={**police_key, "Content-Type": whole.headers["content-type"]})
        assert r.status_code == 400 and r.json()["rule"] == "http.multipart", r.text
        assert "closing boundary" in r.json()["error"]


async def test_a_file_gone_from_the_store_dead_letters_with_the_reason(tmp_path: Path) -> None:
    files = FileStore.for_data_dir(tmp_path)
    out = HttpOutbound(OutboundSettings(url="http://127.0.0.1:9/x", dossier="multipart"), files=files)
    gone = Attachment("scan.pdf", hashlib.sha256(b"gone").hexdigest(), 4, "application/pdf")
    msg = OutboundMessage(delivery_id="d", message_id="m", idempotency_key="m:PROC", destination="PROC",
                          case_number="C1", body=record(), attachments=(gone,))
    r = await out.deliver(msg)
    assert r.outcome == Outcome.PERMANENT and "scan.pdf" in r.detail and "file store" in r.detail
    await out.aclose()
