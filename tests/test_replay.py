"""An operator's replay delivers again, always: for every outbound adapter, a record delivered and then
lost at the receiver is there again after the replay, under a key of its own that says it is a replay.

(A replay used to reuse the delivery's idempotency key: a folder or SFTP receiver's crash marker
answered "already in place" and wrote nothing, and HTTP and SOAP receivers that deduplicate by key
answered the first receipt again without acting.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.config import parse_config
from gateway.runtime import Gateway
from gateway.sim.soap_agency import SoapAgency
from gateway.sim.sshd import SshServer

from .support.config import base_config
from .support.receiver import Receiver
from .support.records import record
from .support.waiting import wait_for


async def _delivered(gw: Gateway, message_id: str, n: int) -> list[Any]:
    async def done() -> bool:
        ds = await gw.store.get_deliveries(message_id)
        return len(ds) == n and all(d.state == "delivered" for d in ds)

    await wait_for(done, 20, f"{n} deliveries delivered")
    return await gw.store.get_deliveries(message_id)


async def _replay_after_loss(gw: Gateway, lose: Callable[[str], None]) -> tuple[str, Any, Any]:
    receipt = await gw.inbound["police-in"].submit(record(case="C-REPLAY-1"))  # type: ignore[attr-defined]
    (first,) = await _delivered(gw, receipt.message_id, 1)
    lose(receipt.message_id)
    new_id = await gw.replay(first.id, "operator:ops-wang", "the receiver lost the record", expect_state="delivered")
    deliveries = await _delivered(gw, receipt.message_id, 2)
    (again,) = [d for d in deliveries if d.id == new_id]
    assert again.replay_of == first.id
    return receipt.message_id, first, again


@pytest.fixture
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Any]]:
    """A gateway whose PROC receives through the adapter named by the test's parameter, and that receiver."""
    kind = request.param
    receiver: Any
    if kind == "folder":
        receiver = tmp_path / "proc"
        out: dict[str, Any] = {"adapter": "folder", "settings": {"path": str(receiver)}}
    elif kind == "sftp":
        sshd: SshServer = request.getfixturevalue("sshd")
        receiver = tmp_path / "proc"
        out = {"adapter": "sftp", "settings": sshd.settings(receiver)}
    elif kind == "http":
        receiver = Receiver()
        receiver.start()
        out = {"adapter": "http", "settings": {"url": receiver.url}}
    else:
        receiver = SoapAgency()
        receiver.start()
        out = {"adapter": "soap", "settings": {"wsdl": receiver.wsdl_url, "case_field": "CaseNumber"}}
    data = base_config(tmp_path / "data")
    data["agencies"][1]["outbound"] = {"name": "proc-out", **out}
    gw = Gateway(parse_config(data))
    await gw.start()
    try:
        yield gw, receiver
    finally:
        await gw.stop()
        if kind in ("http", "soap"):
            receiver.stop()


@pytest.mark.parametrize("node", ["folder", "sftp"], indirect=True)
async def test_a_replay_to_a_drop_writes_the_record_again(node: tuple[Gateway, Path]) -> None:
    gw, folder = node
    mid, first, again = await _replay_after_loss(gw, lambda mid: (folder / f"{mid}.xml").unlink())
    assert not (folder / f"{mid}.xml").exists()
    replayed = folder / f"{mid}.replay-{again.id}.xml"  # the receiver sees it is a replay, and of which record
    assert replayed.exists() and b"C-REPLAY-1" in replayed.read_bytes()


@pytest.mark.parametrize("node", ["http"], indirect=True)
async def test_a_replay_over_http_is_acted_on_with_a_key_of_its_own(node: tuple[Gateway, Receiver]) -> None:
    gw, receiver = node
    mid, first, again = await _replay_after_loss(gw, lambda mid: receiver.bodies.pop(mid))
    assert receiver.arrivals[mid] == 2 and receiver.duplicate_arrivals == 0
    assert b"C-REPLAY-1" in receiver.bodies[mid]
    keys = [h["idempotency-key"] for h in receiver.headers]
    assert keys == [f"{mid}:PROC", f"{mid}:PROC:replay-{again.id}"]
    assert receiver.headers[-1]["x-replay-of"] == first.id


@pytest.mark.parametrize("node", ["soap"], indirect=True)
async def test_a_replay_to_a_soap_service_is_acted_on_with_a_key_of_its_own(node: tuple[Gateway, SoapAgency]) -> None:
    gw, agency = node
    mid, first, again = await _replay_after_loss(gw, lambda mid: None)
    keys = [a.key for a in agency.arrivals]  # the service acts once per key it has not seen
    assert keys == [f"{mid}:PROC", f"{mid}:PROC:replay-{again.id}"]
