"""The case timeline on both backends: a case through several hand-overs (an arrest request and
its approval, a transfer with a dossier, a blocked record, a return), in order, with delivered
and answered times; kept by the store as records are committed and delivered, and the same after
a restart."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from adapters.memory import MemoryOutbound
from gateway.config import parse_config
from gateway.model import MessageStatus
from gateway.runtime import Gateway
from gateway.timeline import described

from .support.config import base_config
from .support.records import dossier_record, record
from .support.stores import MakeStore, store_settings, write_old_database
from .support.waiting import wait_for

CASE = "TL-2026-0001"
ARREST_REQUEST = (resources.files("standards") / "case-exchange" / "v1" / "examples" / "01-request-arrest-approval.xml"
                  ).read_bytes().replace(b"A1401052026030001", CASE.encode())
GOOD_ID, BAD_ID = "11010519491231002X", "110105194912310021"  # the second fails its check character


def _config(tmp_path: Path, backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
            ) -> dict[str, Any]:
    data = base_config(tmp_path / "data")
    data["gateway"]["store"] = store_settings(backend, request, monkeypatch)
    data["routes"] += [
        {"stage": "arrest-review", "action": "request-arrest-approval", "to": ["PROC"]},
        {"stage": "arrest-review", "action": "approve-arrest", "to": ["POLICE"]},
        {"stage": "prosecution-review", "action": "return-supplementary-investigation", "to": ["POLICE"]},
    ]
    return data


async def _delivered(gw: Gateway, message_id: str) -> bool:
    return all(d.state == "delivered" for d in await gw.store.get_deliveries(message_id))


async def test_a_case_through_several_hand_overs(tmp_path: Path, backend: str, request: pytest.FixtureRequest,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = parse_config(_config(tmp_path, backend, request, monkeypatch))
    outs = {code: MemoryOutbound() for code in ("POLICE", "PROC", "COURT")}
    gw = Gateway(cfg, outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    police, proc = gw.inbound["police-in"], gw.inbound["proc-in"]
    ids = []
    try:
        steps: list[tuple[Any, bytes]] = [
            (police, ARREST_REQUEST),
            (proc, record(CASE, "arrest-review", "approve-arrest", sender="PROC")),
            (police, dossier_record(CASE, {"起诉意见书.pdf": ("a" * 64, 120_000), "讯问笔录.pdf": ("b" * 64, 30_000)})),
            (police, record(CASE, "prosecution-review", "transfer-for-prosecution", extra="again").replace(
                GOOD_ID.encode(), BAD_ID.encode())),
            (proc, record(CASE, "prosecution-review", "return-supplementary-investigation", sender="PROC")),
        ]
        for inbound, body in steps:
            r = await inbound.submit(body)
            ids.append(r.message_id)
            if r.status == MessageStatus.ACCEPTED:
                await wait_for(lambda m=r.message_id: _delivered(gw, m), what=f"delivery of {r.message_id}")
        rows = await gw.store.case_timeline(CASE)
    finally:
        await gw.stop()

    assert [r.message_id for r in rows] == ids, "every record, in the order received, blocked ones too"
    assert [r.received_at for r in rows] == sorted(r.received_at for r in rows)
    request_, approval, transfer, blocked, ret = rows
    assert (request_.sender, request_.receivers, request_.action) == ("POLICE", ("PROC",), "request-arrest-approval")
    assert set(request_.delivered) == {"PROC"} and request_.delivered["PROC"] >= request_.received_at
    assert (request_.answered_by, request_.answered_at) == (approval.message_id, approval.received_at)
    assert approval.receivers == ("POLICE",) and approval.delivered["POLICE"] >= approval.received_at
    assert approval.answered_by == transfer.message_id, "a later record from a receiver answers"
    assert (transfer.files, transfer.file_bytes) == (2, 150_000)
    assert transfer.answered_by == ret.message_id, "the return answers the transfer"
    assert blocked.status == MessageStatus.REJECTED and blocked.delivered == {}
    assert blocked.rules and all(rule.startswith("ID-") for rule in blocked.rules), blocked.rules
    assert blocked.answered_by is None, "a blocked record reached no one, so nothing answers it"
    assert ret.answered_by is None and ret.delivered["POLICE"] is not None
    assert request_.documents == (("arrest-request", "晋公捕字〔2026〕0042号"),)
    assert (request_.files, request_.file_bytes) == (1, 11000)
    assert transfer.documents and transfer.documents[0][1] == "N-0"
    shown = [described(r) for r in rows]
    assert shown[0]["action_name"] == {"zh": "提请批准逮捕", "en": "request arrest approval"}
    assert shown[0]["stage_name"] == {"zh": "审查逮捕", "en": "arrest review"}
    assert [s["returned"] for s in shown] == [False, False, False, False, True]
    assert [s["blocked"] for s in shown] == [False, False, False, True, False]

    again = Gateway(cfg, outbound=outs)  # type: ignore[arg-type]
    await again.start()
    try:
        assert await again.store.case_timeline(CASE) == rows, "the timeline is the same after a restart"
        assert await again.store.case_timeline("TL-NEVER-SEEN") == []
    finally:
        await again.stop()


async def test_upgrade_builds_the_timeline_of_records_stored_before(backend: str, make_store: MakeStore) -> None:
    """A database of version 3: the migration puts its records on their cases' timelines, with
    delivered and answered times and a blocked record's rules, on both backends."""
    store = make_store("old")
    block = {"rule": "ID-01", "severity": "block", "message": "x", "line": 2, "location": "", "message_zh": ""}
    scan = {"name": "s.pdf", "sha256": "ef" * 32, "size": 2048, "media_type": "application/pdf"}
    rows = [  # (id, sender, action, status, received_at, summary, destination, delivered_at)
        ("m1", "POLICE", "request-arrest-approval", "accepted", 10.0, {"attachments": [scan]}, "PROC", 11.0),
        ("m2", "POLICE", "request-arrest-approval", "rejected", 12.0, {"problems": [block]}, "POLICE", 12.5),
        ("m3", "PROC", "approve-arrest", "accepted", 20.0, {}, "POLICE", None),
    ]
    statements: list[tuple[str, tuple[object, ...]]] = []
    for mid, sender, action, status, at, summary, dest, delivered in rows:
        statements += [
            ("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
             (mid, sender, "ch", None, "h" + mid, "", "OLD-1", "arrest-review", action, status, "[]", at, None,
              None, json.dumps(summary), "{}", "old")),
            ("INSERT INTO deliveries (id, message_id, destination, case_number, body_hash, content_type, state, "
             "reason, created_at, updated_at, next_attempt_at, delivered_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
             (mid + "-d", mid, dest, "OLD-1", "h" + mid, "application/xml",
              "delivered" if delivered else "queued", "", at, at, at, delivered)),
        ]
    write_old_database(store, backend, 3, statements)
    assert 4 in await store.upgrade()
    await store.open()
    try:
        request_, blocked, approval = await store.case_timeline("OLD-1")
    finally:
        await store.close()
    assert (request_.message_id, request_.receivers, request_.delivered) == ("m1", ("PROC",), {"PROC": 11.0})
    assert (request_.answered_by, request_.answered_at) == ("m3", 20.0)
    assert (request_.files, request_.file_bytes, request_.documents) == (1, 2048, ())
    assert blocked.status == MessageStatus.REJECTED and blocked.rules == ("ID-01",) and blocked.receivers == ()
    assert blocked.answered_by is None, "a defect notice's delivery is no receiver's"
    assert approval.delivered == {"POLICE": None} and approval.answered_by is None
