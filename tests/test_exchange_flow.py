"""The four packs inside a running gateway: defect notices, warnings, and Chinese text over two hops."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from lxml import etree

from adapters.memory import MemoryOutbound
from gateway.config import parse_config
from gateway.mapping import load_pack
from gateway.model import MessageStatus
from gateway.runtime import Gateway

PACKS = {"POLICE": "police", "PROC": "procuratorate", "COURT": "court", "JUSTICE": "justice"}


def _config(data_dir: Path) -> dict[str, Any]:
    return {
        "gateway": {"node": "flow", "data_dir": str(data_dir), "store": {"durability": "normal"}},
        "agencies": [
            {
                "code": code,
                "name": code,
                "role": role,
                "inbound": [{"name": f"{pack}-in", "adapter": "memory", "mapping": pack}],
                "outbound": {"name": f"{pack}-out", "adapter": "memory", "mapping": pack},
            }
            for (code, pack), role in zip(
                PACKS.items(), ("police", "procuratorate", "court", "justice-bureau"), strict=True
            )
        ],
        "routes": [
            {"stage": "prosecution-review", "action": "transfer-for-prosecution", "to": ["PROC"]},
            {"stage": "trial", "action": "indictment", "to": ["COURT"]},
            {"stage": "trial", "action": "judgment", "to": ["PROC", "POLICE"]},
            {"stage": "execution", "action": "execution-notice", "to": ["JUSTICE"]},
        ],
    }


async def _gateway(tmp_path: Path) -> tuple[Gateway, dict[str, MemoryOutbound]]:
    outs = {code: MemoryOutbound() for code in PACKS}
    gw = Gateway(parse_config(_config(tmp_path / "data")), outbound=outs)  # type: ignore[arg-type]
    await gw.start()
    return gw, outs


async def _received(out: MemoryOutbound, n: int = 1) -> None:
    for _ in range(500):
        if len(out.received) >= n:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not delivered in time")


def _sample(pack: str, kind: str, name: str) -> bytes:
    return (load_pack(pack).samples / kind / name).read_bytes()


async def test_blocked_record_returns_to_the_police_as_a_defect_notice(tmp_path: Path) -> None:
    gw, outs = await _gateway(tmp_path)
    try:
        body = _sample("police", "invalid", "evidence-and-id-defects.xml")
        r = await gw.inbound["police-in"].submit(body, sender_message_id="GA-7")  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED and r.destinations == ("POLICE",)
        await _received(outs["POLICE"])
        notice = outs["POLICE"].received[0]
        assert notice.message_id == r.message_id and not outs["PROC"].received
        assert notice.body.startswith(b"<?xml version='1.0' encoding='GB18030'?>")
        doc = etree.fromstring(notice.body)
        assert (
            doc.tag == "THTZ" and doc.findtext("YXXBH") == r.message_id and doc.findtext("FSXXBH") == "GA-7"
        )
        assert [(w.findtext("GZBH"), w.findtext("WZ")) for w in doc.iter("WT")] == [
            ("ID-01", "/AJXX/RY/SFZH"),  # the police system's own fields, not the standard's
            ("EV-DD-02", "/AJXX/ZJ[1]"),
            ("EV-DD-05", "/AJXX"),
        ]
        assert all(w.findtext("HH") for w in doc.iter("WT"))
        assert "现场执法视频" in notice.body.decode("gb18030")
        log = await gw.store.audit_entries(message_id=r.message_id)
        detail = next(e.detail for e in log if e.action == "defect-notice")
        detail = json.loads(detail) if isinstance(detail, str) else detail
        assert detail["destination"] == "POLICE" and detail["rules"] == ["ID-01", "EV-DD-02", "EV-DD-05"]
        assert [e.action for e in log][:3] == ["received", "mapped", "validated"]
    finally:
        await gw.stop()


async def test_warnings_travel_to_the_receiver(tmp_path: Path) -> None:
    gw, outs = await _gateway(tmp_path)
    try:
        body = _sample("police", "valid", "02-transfer-for-prosecution.xml").decode("gb18030")
        body = re.sub(r"\s*<AJBH DW=\"POLICE\">.*?</AJBH>", "", body)  # no own case number: ACC-PR-14 warns
        r = await gw.inbound["police-in"].submit(body.encode("gb18030"))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.ACCEPTED and r.destinations == ("PROC",)
        await _received(outs["PROC"])
        doc = etree.fromstring(outs["PROC"].received[0].body)
        alerts = doc.findall(".//{urn:cn:procuratorate:tyyw:2}Alert")
        assert [(a.get("rule"), a.get("level")) for a in alerts] == [("ACC-PR-14", "warn")]
        assert "本单位案件编号" in (alerts[0].findtext("{urn:cn:procuratorate:tyyw:2}Zh") or "")
        actions = [e.action for e in await gw.store.audit_entries(message_id=r.message_id)]
        assert "warned" in actions
    finally:
        await gw.stop()


async def test_chinese_names_and_addresses_survive_police_to_procuratorate_to_court(tmp_path: Path) -> None:
    name, address = "欧阳䶮", "山西省太原市杏花岭区𠀋胡同7号"  # rare characters outside the BMP / GBK
    gw, outs = await _gateway(tmp_path)
    try:
        police = _sample("police", "valid", "02-transfer-for-prosecution.xml").decode("gb18030")
        police = police.replace("王建国", name).replace("山西省太原市小店区长治路123号", address)
        raw = police.encode("gb18030")
        assert raw.decode("gb18030") == police and "王建国" not in police
        r1 = await gw.inbound["police-in"].submit(raw)  # type: ignore[attr-defined]
        assert r1.status == MessageStatus.ACCEPTED, r1.reasons
        await _received(outs["PROC"])

        # the procuratorate's system reads its SOAP message and answers with an indictment to the court
        proc = load_pack("procuratorate")
        std = proc.to_standard(etree.fromstring(outs["PROC"].received[0].body))
        c = "{urn:cn:justice:case-exchange:1}"
        std.find(f"{c}Stage").text = "trial"  # type: ignore[union-attr]
        std.find(f"{c}Action").text = "indictment"  # type: ignore[union-attr]
        std.find(f"{c}Sender").text = "PROC"  # type: ignore[union-attr]
        for rcv in std.findall(f"{c}Receiver"):
            rcv.text = "COURT"
        doc = std.find(f"{c}Documents/{c}Document")
        assert doc is not None
        doc.find(f"{c}Type").text = "indictment"  # type: ignore[union-attr]
        doc.find(f"{c}Issuer").text = "PROC"  # type: ignore[union-attr]
        std.find(f"{c}Persons/{c}Person/{c}Role").text = "defendant"  # type: ignore[union-attr]
        r2 = await gw.inbound["procuratorate-in"].submit(proc.from_standard(std))  # type: ignore[attr-defined]
        assert r2.status == MessageStatus.ACCEPTED, r2.reasons
        await _received(outs["COURT"])

        court = etree.fromstring(outs["COURT"].received[0].body)
        pn = court.find("Body/Parties/Party/Identity/PersonName")
        assert pn is not None
        assert (pn.findtext("FamilyName"), pn.findtext("GivenName")) == ("欧阳", "䶮")  # a compound surname
        assert court.findtext("Body/Parties/Party/Identity/Contact/ResidenceAddress") == address
    finally:
        await gw.stop()
