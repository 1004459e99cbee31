"""A record whose stage or action the standard does not know cannot be judged, so it never passes unjudged.

The rules tied to an action (evidence and acceptance standards) select records by their action
code; a made-up or respaced code would skip them all and, on a route for any action, be delivered.
It is blocked, naming the code and the nearest known one, unless the channel is in a migration
period (`unknown_codes: warn`): then it is delivered with a warning that says so, and the log
names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from adapters.memory import MemoryOutbound
from gateway.config import GatewayConfig, parse_config
from gateway.model import MessageStatus
from gateway.runtime import Gateway

from .support.config import base_config
from .support.records import record
from .support.waiting import wait_for


def _config(tmp_path: Path, **police_in: Any) -> GatewayConfig:
    data = base_config(tmp_path / "data")
    data["agencies"][0]["inbound"][0].update(police_in)
    data["routes"].append({"stage": "prosecution-review", "to": ["PROC"]})  # any action: a made-up one too
    return parse_config(data)


def theft(case: str, action: str = "transfer-for-prosecution", stage: str = "prosecution-review") -> bytes:
    """A theft case's transfer without any of the evidence the theft standard asks for."""
    return record(case=case, stage=stage, action=action).replace(b"<Code>CL303</Code>", b"<Code>CL264</Code>")


async def _started(config: GatewayConfig) -> tuple[Gateway, dict[str, MemoryOutbound]]:
    outs = {"PROC": MemoryOutbound(), "POLICE": MemoryOutbound(), "COURT": MemoryOutbound()}
    gw = Gateway(config, outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    return gw, outs


async def test_a_made_up_or_respaced_code_is_blocked_naming_it_and_the_nearest_known_one(tmp_path: Path) -> None:
    gw, outs = await _started(_config(tmp_path))
    try:
        police = gw.inbound["police-in"]
        judged = await police.submit(theft("UC-1"))  # type: ignore[attr-defined]
        assert judged.status == MessageStatus.REJECTED
        assert any("[EV-TH-01]" in r for r in judged.reasons), "the theft evidence standard judges it"

        made_up = await police.submit(theft("UC-2", action="transfer-for-prosecutoin"))  # type: ignore[attr-defined]
        assert made_up.status == MessageStatus.REJECTED, "an unknown action must not skip the evidence standard"
        assert made_up.reasons[0].startswith("[CODE-02] action code 'transfer-for-prosecutoin' is not in the "
                                             "standard code list")
        assert "nearest known code: 'transfer-for-prosecution'" in made_up.reasons[0]

        respaced = await police.submit(theft("UC-3", action=" transfer-for-prosecution "))  # type: ignore[attr-defined]
        assert respaced.status == MessageStatus.REJECTED and "[CODE-02]" in respaced.reasons[0]

        stage = await police.submit(theft("UC-4", stage="prosecution-reveiw"))  # type: ignore[attr-defined]
        assert stage.status == MessageStatus.REJECTED
        assert "[CODE-01] stage code 'prosecution-reveiw'" in stage.reasons[0]
        assert "nearest known code: 'prosecution-review'" in stage.reasons[0]

        async def noticed() -> bool:  # the sender's defect notices, in Chinese too
            return len(outs["POLICE"].received) == 4

        await wait_for(noticed)
        notices = [m.body.decode() for m in outs["POLICE"].received]
        assert any("业务动作代码“transfer-for-prosecutoin”不在标准代码表中" in n
                   and "最接近的已知代码：“transfer-for-prosecution”" in n for n in notices)
        assert outs["PROC"].received == []
        assert "rules-adapted" not in [e.action for e in await gw.store.audit_entries()]
    finally:
        await gw.stop()


async def test_in_a_migration_period_it_is_delivered_with_a_warning_the_log_names(tmp_path: Path) -> None:
    gw, outs = await _started(_config(tmp_path, unknown_codes="warn"))
    try:
        r = await gw.inbound["police-in"].submit(theft("UC-5", action="transfer-for-prosecutoin"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.ACCEPTED and r.destinations == ("PROC",)
        assert r.reasons[0].startswith("[CODE-02] action code 'transfer-for-prosecutoin' is not in the standard")
        assert "passed on only because channel police-in admits unknown codes for a migration period " \
               "(unknown_codes: warn): the rules tied to its action were not applied" in r.reasons[0]

        async def delivered() -> bool:
            return len(outs["PROC"].received) == 1

        await wait_for(delivered)
        body = outs["PROC"].received[0].body.decode()
        assert "<Rule>CODE-02</Rule>" in body and "<Severity>warn</Severity>" in body
        assert "仅因通道 police-in 处于迁移期（unknown_codes: warn）而放行" in body, "the receiver reads why"

        entries = await gw.store.audit_entries(message_id=r.message_id)
        admitted = [json.loads(e.detail) for e in entries if e.action == "unknown-code-admitted"]
        assert len(admitted) == 1
        assert admitted[0]["channel"] == "police-in" and admitted[0]["rules"] == ["CODE-02"]
        assert "transfer-for-prosecutoin" in admitted[0]["findings"][0]["message"]
        started = [json.loads(e.detail) for e in await gw.store.audit_entries() if e.action == "rules-adapted"]
        assert started == [{"node": "test-node", "adaptations": [], "unknown_codes_warn": ["police-in"]}]

        # the switch is the channel's: another channel of the same node still blocks
        other = await gw.inbound["proc-in"].submit(  # type: ignore[attr-defined]
            record(case="UC-6", stage="trial", action="indictmnet", sender="PROC"))
        assert other.status == MessageStatus.REJECTED and other.reasons[0].startswith("[CODE-02]")
        assert "nearest known code: 'indictment'" in other.reasons[0]
    finally:
        await gw.stop()
