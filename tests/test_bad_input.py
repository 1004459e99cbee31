"""Every bad input over real HTTP: a clear refusal with rule and line, a log entry, and a healthy gateway."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from gateway.api.app import create_app
from gateway.config import parse_config
from gateway.runtime import Gateway

from .support.badinput import BAD_INPUTS, BadInput, oversized
from .support.config import http_config
from .support.ports import free_port
from .support.receiver import Receiver
from .support.records import record
from .support.serving import serving
from .support.waiting import wait_for

LIMIT = 64 * 1024
CASES = [*BAD_INPUTS, oversized(LIMIT)]


@pytest.mark.parametrize("bad", CASES, ids=[c.name for c in CASES])
async def test_bad_input_is_refused_logged_and_survived(bad: BadInput, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICE_KEY", "k")
    rcv = Receiver()
    gw = Gateway(parse_config(http_config(tmp_path, rcv.url, max_message_bytes=LIMIT)))
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base, headers={"X-API-Key": "k"}) as http:
        before = (await gw.store.audit_head())[0]
        r = await http.post("/inbound/police-in", content=bad.body)
        assert r.status_code in (413, 422), r.text
        answer = r.json()
        reasons = answer.get("reasons", [])  # a rejection receipt: "[rule] words (line N)"
        said = " ".join(reasons) or answer["error"]
        assert bad.rule in {answer.get("rule"), *[x[1:x.index("]")] for x in reasons]}, said
        if bad.line is not None:
            assert f"line {bad.line}" in said, said
        assert "Traceback" not in r.text and "root:" not in r.text  # nothing leaked, no stack
        entries = await gw.store.audit_entries(after_seq=before)
        logged = [e for e in entries if e.action in ("rejected", "refused")]
        assert len(logged) == 1, [e.action for e in entries]
        assert bad.rule in logged[0].detail

        ok = await http.post("/inbound/police-in", content=record(case="C2026-GOOD"))
        assert ok.status_code == 202, ok.text
        mid = ok.json()["message_id"]

        async def delivered() -> bool:
            return rcv.arrivals[mid] == 1 and (await gw.store.get_deliveries(mid))[0].state == "delivered"

        await wait_for(delivered)
