"""Files of several records (a pack's `batch:`): split, taken in and answered per record, over real HTTP.

The pack is the prison format built for these tests (tests/fixtures/packs/prison): attribute-only
elements, dates written 2026年3月5日, a day's proposals and receipts in one file, its own code lists;
it is data only (XSLT, XSD, YAML, CSV).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.memory import MemoryOutbound
from adapters.soap.inbound import receipt_element
from gateway.api.app import create_app
from gateway.batch import file_receipt
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.mapping import MappingPack, load_pack
from gateway.model import MessageStatus, Receipt
from gateway.packcheck import run_received, run_samples
from gateway.runtime import Gateway
from gateway.schemaload import load_schema

from .support.ports import free_port
from .support.receiver import Receiver
from .support.serving import serving
from .support.waiting import wait_for

PACKS = Path(__file__).parent / "fixtures" / "packs"
SAMPLES = PACKS / "prison" / "samples"
DAY = (SAMPLES / "valid" / "day-batch.xml").read_bytes()
BAD_NAME = "batch-with-one-bad-record.xml"
BAD = (SAMPLES / "invalid" / BAD_NAME).read_bytes()
SOAP_XSD = Path(__file__).parents[1] / "standards" / "soap" / "case-exchange-soap.xsd"


@pytest.fixture(scope="module")
def prison() -> MappingPack:
    return load_pack("prison", (str(PACKS),))


def test_the_prison_pack_passes_its_own_mapping_test(prison: MappingPack) -> None:
    # the Windows-era system writes UTF-16 little-endian with a byte order mark, and so reads it back
    assert DAY.startswith(b"\xff\xfe<\x00") and BAD.startswith(b"\xff\xfe<\x00")
    assert prison.spec.encoding == "UTF-16"
    results = run_samples(prison)
    assert [r.name for r in results] == [
        "day-batch.xml record 1", "day-batch.xml record 2", "day-batch.xml record 3",
        "batch-with-one-bad-record.xml record 1", "batch-with-one-bad-record.xml record 2"]
    assert all(r.ok for r in results), [f for r in results for f in r.failures]
    assert [r.outcome.blocked for r in results if r.outcome] == [False, False, False, True, False]
    assert all(r.ok for r in run_received(prison))
    assert not list((PACKS / "prison").rglob("*.py"))


def test_each_record_carries_the_header_and_nothing_of_the_others(prison: MappingPack) -> None:
    assert prison.batch is not None
    parts = prison.batch.split(etree.fromstring(DAY))
    assert len(parts) == 3
    for part, name in zip(parts, ("李秀兰", "赵军", "王建国"), strict=True):
        tree = etree.fromstring(part)
        assert [el.tag for el in tree] == ["PCXX", "ZF"]
        assert tree[0].get("RQ") == "2026年3月5日" and tree[1].get("XM") == name
        assert prison.check_legacy(tree) == []
    std = prison.to_standard(etree.fromstring(parts[0]))
    ns = {"c": "urn:cn:justice:case-exchange:1"}
    assert std.findtext("c:SentAt", namespaces=ns) == "2026-03-05"
    assert std.findtext("c:Persons/c:Person/c:BirthDate", namespaces=ns) == "1978-01-15"
    assert std.findtext("c:Sentences/c:Sentence/c:TermMonths", namespaces=ns) == "42"


def test_a_batch_xpath_that_does_not_compile_is_a_config_error(tmp_path: Path) -> None:
    pack = tmp_path / "broken"
    pack.mkdir()
    (pack / "pack.yaml").write_text("batch:\n  record: /JYJH/ZF[\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"batch\.record.*not a valid XPath"):
        load_pack("broken", (str(tmp_path),))


def test_the_files_receipt_lists_its_records_in_json_xml_and_soap() -> None:
    ok = Receipt("m1", "h1", MessageStatus.ACCEPTED, "A1", destinations=("PROC",))
    no = Receipt("m2", "h2", MessageStatus.REJECTED, "A2", reasons=("[ID-01] bad",))
    both = file_receipt("hf", 1.0, [ok, no])
    assert both.status == MessageStatus.REJECTED and both.reasons == ("record 2: [ID-01] bad",)
    assert Receipt.from_dict(both.as_dict()) == both
    ns = {"r": "urn:case-exchange:receipt:1"}
    xml = etree.fromstring(both.to_xml())
    assert xml.xpath("r:Records/r:Receipt/r:MessageId/text()", namespaces=ns) == ["m1", "m2"]
    soap = receipt_element(both)
    schema = load_schema(SOAP_XSD, root=SOAP_XSD.parent, label="soap schema")
    assert schema.validate(soap), schema.error_log
    assert len(soap.findall("{*}Records/{*}Receipt")) == 2
    assert file_receipt("hf", 1.0, [ok, ok]).status == MessageStatus.ACCEPTED


def _config(data_dir: Path, receiver_url: str) -> dict[str, Any]:
    http_out = {"adapter": "http", "settings": {"url": receiver_url, "read_timeout": 2}}
    return {
        "gateway": {"node": "batches", "data_dir": str(data_dir), "store": {"durability": "normal"},
                    "mapping_dirs": [str(PACKS)], "api": {"min_key_length": 1}},
        "agencies": [
            {"code": "PRISON", "name": "Prison", "role": "prison", "api_key": {"env": "PRISON_KEY"},
             "inbound": [{"name": "prison-in", "adapter": "http", "mapping": "prison"}],
             "outbound": {"name": "prison-out", "adapter": "memory", "mapping": "prison"}},
            {"code": "PROC", "name": "Procuratorate", "role": "procuratorate",
             "outbound": {"name": "proc-out", **http_out}},
            {"code": "COURT", "name": "Court", "role": "court", "outbound": {"name": "court-out", **http_out}},
        ],
        "routes": [
            {"stage": "execution", "action": "commutation-proposal", "to": ["PROC", "COURT"]},
            {"stage": "execution", "action": "offender-received", "to": ["COURT"]},
        ],
    }


async def test_a_live_gateway_routes_each_record_and_answers_the_bad_one_with_one_notice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISON_KEY", "prison-key-1")
    key = {"X-API-Key": "prison-key-1"}
    rcv = Receiver()
    prison_out = MemoryOutbound()
    gw = Gateway(parse_config(_config(tmp_path / "data", rcv.url)), outbound={"PRISON": prison_out})
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/inbound/prison-in", content=DAY, headers={**key, "X-File-Name": "day.xml"})
        assert r.status_code == 202, r.text
        day = r.json()
        records = day["records"]
        assert [x["status"] for x in records] == ["accepted"] * 3
        assert [x["case_number"] for x in records] == ["A1401052026030001", "A1401052025110007",
                                                       "A1401052026010042"]
        assert [x["destinations"] for x in records] == [["PROC", "COURT"], ["PROC", "COURT"], ["COURT"]]
        ids = [x["message_id"] for x in records]
        assert len(set(ids)) == 3 and day["message_id"] == ""

        async def all_delivered() -> bool:
            return sum(rcv.arrivals[m] for m in ids) == 5

        await wait_for(all_delivered)
        assert "赵军".encode() in rcv.bodies[ids[1]] and "李秀兰".encode() not in rcv.bodies[ids[1]]

        again = await http.post("/inbound/prison-in", content=DAY, headers=key)
        assert again.status_code == 200
        assert [x["message_id"] for x in again.json()["records"]] == ids
        assert all(x["duplicate"] for x in again.json()["records"])

        r = await http.post("/inbound/prison-in", content=BAD, headers={**key, "Accept": "application/xml"})
        assert r.status_code == 422
        ns = {"r": "urn:case-exchange:receipt:1"}
        answer = etree.fromstring(r.content)
        status = answer.xpath("r:Records/r:Receipt/r:Status/text()", namespaces=ns)
        assert status == ["rejected", "accepted"]
        bad_id, good_id = answer.xpath("r:Records/r:Receipt/r:MessageId/text()", namespaces=ns)

        async def noticed() -> bool:
            return len(prison_out.received) == 1 and rcv.arrivals[good_id] == 2

        await wait_for(noticed)
        notice = etree.fromstring(prison_out.received[0].body)
        assert notice.tag == "JYTH" and notice.get("YXX") == bad_id and notice.get("AH") == "A1401052026030002"
        assert [w.get("GZ") for w in notice] == ["ID-01", "SEN-01", "DATE-03"]
        assert all(" | " in (w.get("NR") or "") for w in notice)
        # in the prison system's own terms: its element and attribute, never the standard's path
        assert [w.get("WZ") for w in notice] == ["/JYJH/ZF/@SFZH", "/JYJH/ZF", "/JYJH/ZF"]
        assert all(w.get("HH") for w in notice)
        assert (await gw.store.get_deliveries(bad_id))[0].destination == "PRISON"


class _StoreFailsOnce:
    """The intake store, failing its `nth` write once (a database gone mid-file), then itself again."""

    def __init__(self, store: Any, nth: int) -> None:
        self.store, self.nth, self.calls = store, nth, 0

    async def record_message(self, *args: Any) -> Receipt:
        self.calls += 1
        if self.calls == self.nth:
            raise OSError("database connection lost")
        return await self.store.record_message(*args)  # type: ignore[no-any-return]


async def test_a_store_failure_mid_file_keeps_whole_records_and_the_resend_takes_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISON_KEY", "prison-key-1")
    key = {"X-API-Key": "prison-key-1"}
    rcv = Receiver()
    gw = Gateway(parse_config(_config(tmp_path / "data", rcv.url)), outbound={"PRISON": MemoryOutbound()})
    async with serving(rcv.app(), rcv.port), serving(create_app(gw), free_port()) as base, \
            httpx.AsyncClient(base_url=base) as http:
        assert gw.pipeline is not None
        real = gw.pipeline.store
        gw.pipeline.store = _StoreFailsOnce(real, 2)  # type: ignore[assignment]
        r = await http.post("/inbound/prison-in", content=DAY, headers=key)
        assert r.status_code == 503 and r.headers["retry-after"]
        assert "record 2 of 3" in r.json()["error"] and "前 1 条已接收" in r.json()["error"]
        again = await http.post("/inbound/prison-in", content=DAY, headers=key)
        assert again.status_code == 202, again.text
        records = again.json()["records"]
        assert [x["duplicate"] for x in records] == [True, False, False]
        assert [x["status"] for x in records] == ["accepted"] * 3
        for x in records:
            assert (await gw.store.get_message(x["message_id"])) is not None


async def test_the_soap_answer_to_a_batch_lists_each_records_receipt(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from adapters.soap.envelope import TNS
    from gateway.sim.soap_agency import username_token

    monkeypatch.setenv("PRISON_KEY", "prison-key-1")
    monkeypatch.setenv("PRISON_SOAP_PW", "prison-soap-secret")
    cfg = _config(tmp_path / "data", "http://127.0.0.1:9/unused")
    cfg["agencies"][0]["inbound"] = [{"name": "prison-soap", "adapter": "soap", "mapping": "prison",
                                      "settings": {"password": {"env": "PRISON_SOAP_PW"}}}]
    gw = Gateway(parse_config(cfg), outbound={"PRISON": MemoryOutbound()})
    envelope = (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cx="{TNS}"><s:Header>'
                f'{username_token("PRISON", "prison-soap-secret")}</s:Header><s:Body><cx:SubmitCaseRecord>'
                f"<cx:Record>{base64.b64encode(BAD).decode()}</cx:Record></cx:SubmitCaseRecord></s:Body></s:Envelope>")
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/soap/prison-soap", content=envelope.encode(), headers={
            "Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{TNS}/SubmitCaseRecord"'})
    assert r.status_code == 200, r.text
    [receipt] = etree.fromstring(r.content).iterfind(f".//{{{TNS}}}SubmitCaseRecordResponse/{{{TNS}}}Receipt")
    schema = load_schema(SOAP_XSD, root=SOAP_XSD.parent, label="soap schema")
    assert schema.validate(receipt), schema.error_log
    records = receipt.findall(f"{{{TNS}}}Records/{{{TNS}}}Receipt")
    assert [x.findtext(f"{{{TNS}}}Status") for x in records] == ["rejected", "accepted"], r.text
    assert receipt.findtext(f"{{{TNS}}}Status") == "rejected" and receipt.findtext(f"{{{TNS}}}MessageId") == ""
    assert all(x.findtext(f"{{{TNS}}}MessageId") for x in records)


async def test_a_dropped_batch_goes_to_error_with_each_records_fate_and_its_good_record_is_forwarded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRISON_KEY", "prison-key-1")
    src, court = tmp_path / "prison-drop", MemoryOutbound()
    src.mkdir()
    cfg = _config(tmp_path / "data", "http://127.0.0.1:9/unused")
    cfg["agencies"][0]["inbound"] = [{"name": "prison-drop", "adapter": "folder", "mapping": "prison",
                                      "settings": {"path": str(src), "poll_interval": 0.1}}]
    gw = Gateway(parse_config(cfg), outbound={"PRISON": MemoryOutbound(), "COURT": court,
                                              "PROC": MemoryOutbound()})
    (src / "day.xml").write_bytes(BAD)
    await gw.start()
    try:
        await wait_for(lambda: (src / "error" / "day.xml.error.txt").is_file(), what="the file moved to error/")
        why = (src / "error" / "day.xml.error.txt").read_text(encoding="utf-8").splitlines()
        assert why[0].startswith("record 1, message ") and why[0].endswith(": rejected")
        assert [w.split("]")[0] for w in why[1:4]] == ["[ID-01", "[SEN-01", "[DATE-03"]
        assert why[4].startswith("record 2, message ") and why[4].endswith(": accepted")
        await wait_for(lambda: len(court.received) == 1, what="the good record at the court")
        assert b"A1401052026030003" in court.received[0].body
    finally:
        await gw.stop()


def test_validate_explains_each_record_of_a_batch() -> None:
    import typer
    from typer.testing import CliRunner

    from gateway.mapping_cli import validate

    app = typer.Typer()
    app.command()(validate)
    r = CliRunner().invoke(app, [str(SAMPLES / "invalid" / BAD_NAME), "--agency", "PRISON", "--dir", str(PACKS)],
                           env={"COLUMNS": "200"})
    assert r.exit_code == 1, r.output
    first, second = r.output.split("record 2 of 2")
    assert "record 1 of 2" in first and "[ID-01]" in first and "[SEN-01]" in first and "BLOCKED" in first
    assert "ACCEPTED" in second and "BLOCKED" not in second


async def test_the_validation_service_answers_a_batch_per_record_over_rest_and_soap(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sqlite3

    import zeep
    from zeep.wsse.username import UsernameToken

    monkeypatch.setenv("PRISON_KEY", "prison-key-1")
    monkeypatch.setenv("PRISON_SOAP_PW", "prison-soap-secret")
    cfg = _config(tmp_path / "data", "http://127.0.0.1:9/unused")
    cfg["agencies"][0]["inbound"].append({"name": "prison-soap", "adapter": "soap", "mapping": "prison",
                                          "settings": {"password": {"env": "PRISON_SOAP_PW"}}})
    gw = Gateway(parse_config(cfg), outbound={"PRISON": MemoryOutbound()})
    async with serving(create_app(gw), free_port()) as base, httpx.AsyncClient(base_url=base) as http:
        key = {"X-API-Key": "prison-key-1", "Content-Type": "application/xml"}
        r = await http.post("/api/v1/validate", content=BAD, headers=key)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["outcome"] == "blocked" and answer["accepted"] is False and answer["stored"] is False
        bad, good = answer["records"]
        assert (bad["record"], bad["outcome"]) == (1, "blocked") and bad["destinations"] == []
        assert [f["rule"] for f in bad["findings"]] == ["ID-01", "SEN-01", "DATE-03"]
        assert bad["findings"][0]["location"] == "/JYJH/ZF/@SFZH"  # in the prison system's own terms
        assert (good["record"], good["accepted"], good["findings"]) == (2, True, [])
        assert good["destinations"] == ["PROC", "COURT"] == answer["destinations"]
        # the file's findings are every record's, each naming its record
        assert [(f["record"], f["rule"]) for f in answer["findings"]] == [(1, "ID-01"), (1, "SEN-01"),
                                                                          (1, "DATE-03")]
        day = (await http.post("/api/v1/validate", content=DAY, headers=key)).json()
        assert day["outcome"] == "accepted" and [x["outcome"] for x in day["records"]] == ["accepted"] * 3
        assert [x["destinations"] for x in day["records"]] == [["PROC", "COURT"], ["PROC", "COURT"], ["COURT"]]
        tree = etree.fromstring(DAY)
        for extra in tree.findall("ZF")[1:]:
            tree.remove(extra)
        one = (await http.post("/api/v1/validate", content=etree.tostring(tree, encoding="UTF-16"),
                               headers=key)).json()
        assert one["accepted"] is True and one["destinations"] == ["PROC", "COURT"]
        assert "records" not in one  # a file of one record is answered as a record

        client = await asyncio.to_thread(zeep.Client, f"{base}/soap/prison-soap?wsdl",
                                         wsse=UsernameToken("PRISON", "prison-soap-secret", use_digest=True))
        soap = await asyncio.to_thread(client.service.ValidateCaseRecord, FileName=BAD_NAME, Record=BAD)
        assert soap.Outcome == "blocked" and soap.Accepted is False
        sbad, sgood = soap.Records.Record
        assert (sbad.number, sbad.Outcome) == (1, "blocked")
        assert [f.Rule for f in sbad.Findings.Finding] == ["ID-01", "SEN-01", "DATE-03"]
        assert (sgood.number, sgood.Accepted, list(sgood.Destinations.Agency)) == (2, True, ["PROC", "COURT"])
        assert [f.Rule for f in soap.Findings.Finding] == ["ID-01", "SEN-01", "DATE-03"]
        single = (SAMPLES / "expected" / "day-batch.1.standard.xml").read_bytes()  # not the prison's format
        plain = await asyncio.to_thread(client.service.ValidateCaseRecord, Record=single)
        assert plain.Outcome == "blocked" and plain.Records is None  # a single record's answer is as it was
    with sqlite3.connect(tmp_path / "data" / "gateway.db") as db:
        assert db.execute("SELECT count(*) FROM messages").fetchone()[0] == 0


def test_a_batch_verdict_follows_the_soap_schema() -> None:
    from adapters.soap.inbound import verdict_element
    from gateway.verdict import Verdict, file_verdict

    finding = {"rule": "ID-01", "severity": "block", "message": "bad", "message_zh": "错", "location": "/JYJH/ZF"}
    bad = Verdict("PRISON", "prison-soap", True, [finding])
    good = Verdict("PRISON", "prison-soap", False, [], ["COURT"], {"COURT": b"<x/>"})
    schema = load_schema(SOAP_XSD, root=SOAP_XSD.parent, label="soap schema")
    both = verdict_element(file_verdict([bad, good], 0.1), with_outbound=True)
    assert schema.validate(both), schema.error_log
    assert [r.get("number") for r in both.findall("{*}Records/{*}Record")] == ["1", "2"]
    assert both.find("{*}Records/{*}Record[@number='2']/{*}Outbound") is not None
    single = verdict_element(good)
    assert schema.validate(single), schema.error_log
    assert single.find("{*}Records") is None
