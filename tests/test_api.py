"""The REST API on a real uvicorn server on loopback: each role's rights and refusals, history,
dead letters with replay (from the raw record, to the chosen destination only) and discard."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.model import DeliveryResult, OutboundMessage
from gateway.runtime import Gateway
from gateway.store.rows import DeliveryRow
from gateway.store.sqlite import iso_now

from .support.api import KEYS, Running, keyed_config, log, serve
from .support.records import record
from .support.waiting import wait_for


async def refusals(r: Running) -> list[dict[str, Any]]:
    entries = await r.gateway.store.audit_entries(limit=10_000)
    return [e.as_dict() for e in entries if e.action == "access-refused"]


async def test_health_and_readiness_need_no_key(api: Running) -> None:
    assert (await api.call(None, "GET", "/health")).json()["status"] == "alive"
    ready = await api.call(None, "GET", "/ready")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert ready.json()["checks"]["store"]["ok"] is True


async def test_missing_and_unknown_keys_are_refused_and_logged(api: Running) -> None:
    assert (await api.call(None, "GET", "/api/v1/queues")).status_code == 401
    async with httpx.AsyncClient(base_url=api.url, headers={"X-API-Key": "guessed"}) as c:
        assert (await c.get("/api/v1/queues")).status_code == 401
    bearer = {"Authorization": f"Bearer {KEYS['OPERATOR']}"}
    async with httpx.AsyncClient(base_url=api.url, headers=bearer) as c:
        assert (await c.get("/api/v1/queues")).status_code == 200
    whys = [e["detail"] for e in await refusals(api)]
    assert any("no API key presented" in d for d in whys)
    assert any("unknown API key" in d for d in whys)
    assert all("guessed" not in d for d in whys), "a presented key must never be logged"


async def test_a_rotated_key_stops_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, key in KEYS.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)
    async with serve(tmp_path / "data") as first:
        assert (await first.submit("POLICE", record(case="ROT-1"))).status_code == 202
    monkeypatch.setenv("TEST_POLICE_KEY", "police-key-2")
    async with serve(tmp_path / "data") as again:
        old = await again.submit("POLICE", record(case="ROT-2"))
        assert old.status_code == 401
        async with httpx.AsyncClient(base_url=again.url, headers={"X-API-Key": "police-key-2"}) as c:
            new = await c.post("/api/v1/messages", content=record(case="ROT-2"))
        assert new.status_code == 202, new.text


@pytest.mark.parametrize(("shared", "named"), [
    (("POLICE", "PROC"), "agency POLICE and agency PROC"),
    (("OPERATOR", "AUDITOR"), "operator ops-wang and auditor audit-li"),
    (("COURT", "OPERATOR"), "agency COURT and operator ops-wang"),
])
async def test_a_key_two_principals_share_stops_the_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         shared: tuple[str, str], named: str) -> None:
    keys = {**KEYS, shared[1]: KEYS[shared[0]]}
    for name, key in keys.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)
    gw = Gateway(parse_config(keyed_config(tmp_path / "data")))
    with pytest.raises(ConfigError) as refused:
        await gw.start()
    assert f"{named} have the same API key" in str(refused.value)
    assert KEYS[shared[0]] not in str(refused.value)
    assert not (tmp_path / "data").exists(), "nothing is opened before the keys are checked"


async def test_a_short_key_stops_the_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    strong = {name: f"{name.lower()}-{'k' * 24}" for name in KEYS}
    for name, key in {**strong, "AUDITOR": "a" * 23}.items():
        monkeypatch.setenv(f"TEST_{name}_KEY", key)
    data = keyed_config(tmp_path / "data")
    del data["gateway"]["api"]["min_key_length"]  # the default, 24
    with pytest.raises(ConfigError) as refused:
        await Gateway(parse_config(data)).start()
    assert "auditor audit-li: the API key has 23 characters, fewer than gateway.api.min_key_length (24)" \
        in str(refused.value)
    assert "a" * 23 not in str(refused.value)
    monkeypatch.setenv("TEST_AUDITOR_KEY", "a" * 24)
    gw = Gateway(parse_config(data))
    async with gw.running():
        assert gw.started


async def test_keys_are_stored_hashed(api: Running) -> None:
    db = (Path(api.gateway.config.gateway.data_dir) / "gateway.db").read_bytes()
    for key in KEYS.values():
        assert key.encode() not in db


async def test_agency_submits_only_as_itself(api: Running) -> None:
    ok = await api.submit("POLICE", record())
    assert ok.status_code == 202, ok.text
    assert ok.json()["destinations"] == ["PROC"]
    assert (await api.submit("POLICE", record())).json()["duplicate"] is True
    spoof = await api.submit("POLICE", record(case="CASE-2"), agency="PROC")
    assert spoof.status_code == 403
    claimed = await api.submit("POLICE", record(case="CASE-3", sender="COURT"))
    assert claimed.status_code == 422 and "standard.sender" in claimed.json()["reasons"][0]
    other_channel = await api.submit("POLICE", record(case="CASE-4"), channel="proc-in")
    assert other_channel.status_code == 403
    too_big = record(case="CASE-7", extra="x" * api.gateway.config.gateway.max_message_bytes)
    assert (await api.submit("POLICE", too_big)).status_code == 413
    for role in ("OPERATOR", "AUDITOR"):
        assert (await api.submit(role, record(case="CASE-6"))).status_code == 403
    whys = " ".join(e["detail"] for e in await refusals(api))
    assert "used to submit as PROC" in whys and "channel proc-in" in whys and "role operator" in whys
    assert "body over" in whys


async def test_agency_reads_only_its_own_messages_with_full_history(api: Running) -> None:
    mid = (await api.submit("POLICE", record(case="C-READ"))).json()["message_id"]

    async def delivered() -> bool:
        return (await api.call("OPERATOR", "GET", f"/api/v1/messages/{mid}")).json()["deliveries"][0][
            "state"] == "delivered"

    await wait_for(delivered)
    for who in ("POLICE", "PROC", "OPERATOR", "AUDITOR"):
        assert (await api.call(who, "GET", f"/api/v1/messages/{mid}")).status_code == 200, who
    court = await api.call("COURT", "GET", f"/api/v1/messages/{mid}/history")
    assert court.status_code == 403
    assert any(e["actor"] == "COURT" and mid in e["detail"] for e in await refusals(api))
    assert (await api.call("POLICE", "GET", "/api/v1/messages/nope")).status_code == 404

    h = (await api.call("POLICE", "GET", f"/api/v1/messages/{mid}/history")).json()
    steps = [s["action"] for s in h["steps"]]
    assert [s for s in steps if s != "evidence-delivery"] == [  # delivery evidence follows the delivery
        "received", "mapped", "validated", "routed", "queued", "evidence-submission", "delivered"]
    assert all(s["time"] and s["actor"] for s in h["steps"])
    assert h["steps"][0]["actor"] == "POLICE"
    (attempts,) = h["attempts"].values()
    assert [a["outcome"] for a in attempts] == ["delivered"]


async def test_role_rights(api: Running) -> None:
    expected = {
        ("GET", "/api/v1/queues"): {"POLICE": 403, "OPERATOR": 200, "AUDITOR": 200},
        ("GET", "/api/v1/dead-letters"): {"PROC": 403, "OPERATOR": 200, "AUDITOR": 200},
        ("GET", "/api/v1/audit"): {"COURT": 403, "OPERATOR": 200, "AUDITOR": 200},
        ("GET", "/api/v1/audit/checkpoints"): {"POLICE": 403, "AUDITOR": 200},
        ("POST", "/api/v1/witness"): {"POLICE": 403, "OPERATOR": 403, "AUDITOR": 403},  # the witness role only
        ("GET", "/api/v1/witness/0123456789abcdef"): {"POLICE": 403, "OPERATOR": 403, "AUDITOR": 200},
        ("POST", "/api/v1/deliveries/x/replay"): {"POLICE": 403, "AUDITOR": 403, "OPERATOR": 404},
        ("POST", "/api/v1/deliveries/x/discard"): {"PROC": 403, "AUDITOR": 403, "OPERATOR": 404},
    }
    for (method, path), by_role in expected.items():
        for who, code in by_role.items():
            got = (await api.call(who, method, path)).status_code
            assert got == code, f"{who} {method} {path}: {got}, expected {code}"


async def _dead_judgment(api: Running, case: str) -> tuple[str, dict[str, DeliveryRow]]:
    """A judgment that reaches POLICE but is refused by PROC's system: one dead letter."""
    api.fail_proc.add(case)
    r = await api.submit("COURT", record(case=case, stage="trial", action="judgment", sender="COURT"))
    assert r.status_code == 202, r.text
    message_id = r.json()["message_id"]

    async def settled() -> bool:
        ds = await api.gateway.store.get_deliveries(message_id)
        return sorted(d.state for d in ds) == ["dead", "delivered"]

    await wait_for(settled)
    api.fail_proc.discard(case)
    return message_id, {d.destination: d for d in await api.gateway.store.get_deliveries(message_id)}


async def test_dead_letter_replay_goes_to_the_chosen_destination_only(api: Running) -> None:
    message_id, by_dest = await _dead_judgment(api, "C-DEAD")
    dead = by_dest["PROC"]
    assert by_dest["POLICE"].state == "delivered"
    letters = (await api.call("AUDITOR", "GET", "/api/v1/dead-letters")).json()
    assert [d["id"] for d in letters] == [dead.id]
    assert "dossier incomplete" in letters[0]["reason"]
    assert (await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{by_dest['POLICE'].id}/discard",
                           json={"reason": "x"})).status_code == 409  # delivered: nothing to give up

    r = await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead.id}/replay",
                       json={"reason": "receiver fixed its schema"})
    assert r.status_code == 200, r.text
    new = r.json()["new_delivery"]
    assert r.json()["destination"] == "PROC"

    async def redelivered() -> bool:
        d = await api.gateway.store.get_delivery(new)
        return d is not None and d.state == "delivered"

    await wait_for(redelivered)
    assert [m.case_number for m in api.outs["POLICE"].received].count("C-DEAD") == 1
    proc_copies = [m for m in api.outs["PROC"].received if m.case_number == "C-DEAD"]
    assert len(proc_copies) == 2 and proc_copies[0].body == proc_copies[1].body
    assert (await api.call("OPERATOR", "GET", "/api/v1/dead-letters")).json() == []

    steps = (await api.call("OPERATOR", "GET", f"/api/v1/messages/{message_id}/history")).json()["steps"]
    (replayed,) = [s for s in steps if s["action"] == "replayed"]
    assert replayed["actor"] == "operator:ops-wang" and "receiver fixed its schema" in replayed["detail"]
    assert (await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{new}/replay")).status_code == 200


async def test_replay_of_a_delivery_still_on_its_way_is_refused(api: Running) -> None:
    hold = asyncio.Event()

    async def slow(m: OutboundMessage) -> DeliveryResult:
        await hold.wait()
        return DeliveryResult.delivered()

    api.outs["PROC"].handler = slow
    mid = (await api.submit("POLICE", record(case="C-SLOW"))).json()["message_id"]
    (d,) = await api.gateway.store.get_deliveries(mid)
    r = await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{d.id}/replay")
    assert r.status_code == 409 and "deliver it twice" in r.json()["detail"]
    hold.set()


async def test_discard_is_logged_with_who_and_why(api: Running) -> None:
    _, by_dest = await _dead_judgment(api, "C-GIVEUP")
    dead = by_dest["PROC"].id
    r = await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead}/discard",
                       json={"reason": "case withdrawn by the court"})
    assert r.status_code == 200
    d = await api.gateway.store.get_delivery(dead)
    assert d is not None and d.state == "discarded"
    assert (await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead}/discard")).status_code == 409
    (entry,) = [e for e in await log(api, case="C-GIVEUP") if e["action"] == "discarded"]
    assert entry["actor"] == "operator:ops-wang" and "case withdrawn by the court" in entry["detail"]
    assert (await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead}/replay")).status_code == 200


async def test_queue_depths_and_log_queries(api: Running) -> None:
    before = iso_now()
    await _dead_judgment(api, "C-Q1")
    ok = (await api.submit("POLICE", record(case="C-Q2"))).json()["message_id"]

    async def done() -> bool:
        return (await api.gateway.store.get_deliveries(ok))[0].state == "delivered"

    await wait_for(done)
    depths = {(q["destination"], q["state"]): q["count"]
              for q in (await api.call("OPERATOR", "GET", "/api/v1/queues")).json()}
    assert depths == {("POLICE", "delivered"): 1, ("PROC", "dead"): 1, ("PROC", "delivered"): 1}

    by_case = await log(api, case="C-Q2")
    assert by_case and {e["case_number"] for e in by_case} == {"C-Q2"}
    by_agency = await log(api, agency="COURT")
    assert {e["case_number"] for e in by_agency if e["case_number"]} == {"C-Q1"}
    since = await log(api, since=before)
    assert since and all(e["time"] >= before for e in since)
    until = await log(api, until=before)
    assert all(e["time"] < before for e in until) and {e["action"] for e in until} == {"node-started"}
    page = (await api.call("AUDITOR", "GET", "/api/v1/audit", params={"limit": 2})).json()
    assert len(page["entries"]) == 2 and page["next_after_seq"] == page["entries"][-1]["seq"]


async def test_a_stale_replay_is_refused_so_a_dead_letter_is_not_delivered_twice(api: Running) -> None:
    _, by_dest = await _dead_judgment(api, "C-TWICE")
    dead = by_dest["PROC"].id
    seen = {"reason": "fixed", "expect_state": "dead"}  # what both operators' screens showed
    first = await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead}/replay", json=seen)
    assert first.status_code == 200
    second = await api.call("OPERATOR", "POST", f"/api/v1/deliveries/{dead}/replay", json=seen)
    assert second.status_code == 409 and "someone else acted on it first" in second.json()["detail"]
    replays = [e for e in await log(api, case="C-TWICE") if e["action"] == "replayed"]
    assert len(replays) == 1


async def test_dead_letters_of_a_destination_are_replayed_oldest_first_in_pages(api: Running) -> None:
    for case in ("C-OUT-1", "C-OUT-2", "C-OUT-3"):
        await _dead_judgment(api, case)
    api.fail_proc.clear()  # the receiver is back
    body = {"destination": "PROC", "reason": "receiver back after its outage", "limit": 2}
    assert (await api.call("AUDITOR", "POST", "/api/v1/dead-letters/replay", json=body)).status_code == 403
    first = (await api.call("OPERATOR", "POST", "/api/v1/dead-letters/replay", json=body)).json()
    assert [r["case"] for r in first["replayed"]] == ["C-OUT-1", "C-OUT-2"] and first["dead_left"] == 1
    second = (await api.call("OPERATOR", "POST", "/api/v1/dead-letters/replay", json=body)).json()
    assert [r["case"] for r in second["replayed"]] == ["C-OUT-3"] and second["dead_left"] == 0
    assert second["skipped"] == []

    async def all_delivered() -> bool:
        got = [m.case_number for m in api.outs["PROC"].received]
        return all(got.count(c) == 2 for c in ("C-OUT-1", "C-OUT-2", "C-OUT-3"))

    await wait_for(all_delivered)
    for case in ("C-OUT-1", "C-OUT-2", "C-OUT-3"):
        (entry,) = [e for e in await log(api, case=case) if e["action"] == "replayed"]
        assert entry["actor"] == "operator:ops-wang" and "receiver back after its outage" in entry["detail"]
    assert (await api.call("OPERATOR", "GET", "/api/v1/dead-letters")).json() == []


async def test_agencies_see_neutral_states_never_the_receivers_words(api: Running) -> None:
    """The sender sees that its record was not delivered, in neutral words; the receiver's address and
    answer body, which operators need, are not the sending agency's to read."""
    case = "C-NEUTRAL"
    api.fail_proc.add(case)
    mid = (await api.submit("POLICE", record(case=case))).json()["message_id"]

    async def dead() -> bool:
        m = (await api.call("OPERATOR", "GET", f"/api/v1/messages/{mid}")).json()
        return m["deliveries"][0]["state"] == "dead"

    await wait_for(dead)
    operator = (await api.call("OPERATOR", "GET", f"/api/v1/messages/{mid}/history")).text
    assert "proc-cms.internal" in operator  # operators see what the receiver said
    police = [(await api.call("POLICE", "GET", path)).text for path in (
        f"/api/v1/messages/{mid}", f"/api/v1/messages/{mid}/history", "/api/v1/receipts")]
    for text in police:
        assert "proc-cms" not in text and "stack trace" not in text, text
    assert "已通知网关运维人员" in police[0] and mid in police[2]
    api.fail_proc.discard(case)


async def test_an_internal_error_is_logged_once_and_answered_honestly(api: Running,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """No traceback reaches a caller: a store outage is a 503 with Retry-After, a defect a plain 500."""
    import sqlite3

    store = api.gateway.store

    async def outage() -> list[Any]:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "queue_depths", outage)
    r = await api.call("OPERATOR", "GET", "/api/v1/queues")
    assert r.status_code == 503 and r.headers["retry-after"] == "2" and "try again" in r.json()["detail"]

    async def defect() -> list[Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(store, "queue_depths", defect)
    r = await api.call("OPERATOR", "GET", "/api/v1/queues")
    assert r.status_code == 500 and "RuntimeError" in r.json()["detail"] and "Traceback" not in r.text
    logged = [e for e in await store.audit_entries(limit=10_000) if e.action == "internal-error"]
    assert [json.loads(e.detail)["error"] for e in logged] == ["OperationalError", "RuntimeError"]
