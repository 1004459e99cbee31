"""Findings: every problem of a record at once, in the agency's own terms, with hints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from lxml import etree
from typer.testing import CliRunner

from gateway import xmlsafe
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.mapping import load_pack
from gateway.mapping_cli import validate
from gateway.model import MessageStatus
from gateway.packcheck import check_file
from gateway.rules import RuleSet, make_rule, standard_rules
from gateway.schemamessages import plain
from gateway.sourcetrace import SOURCE_NS

from .support.api import keyed_config
from .test_exchange_flow import _gateway, _received

SAMPLE = "01-request-arrest-approval.xml"


def _police_file(*edits: tuple[str, str]) -> bytes:
    """The police sample with text edits (the sample is GB18030; the edits are ASCII)."""
    body = (load_pack("police").samples / "valid" / SAMPLE).read_bytes()
    for old, new in edits:
        assert old.encode() in body
        body = body.replace(old.encode(), new.encode(), 1)
    return body


BAD_DATE = ("<SJRQ>20260301</SJRQ>", "<SJRQ>20260231</SJRQ>")  # the legacy pattern lets Feb 31 through
BAD_ID = ("<SFZH>14010519850312203X</SFZH>", "<SFZH>140105198503122031</SFZH>")


def test_a_bad_date_and_a_bad_resident_id_are_reported_together() -> None:
    out = check_file(_police_file(BAD_DATE, BAD_ID), load_pack("police"), sender="POLICE", source="x.xml")
    assert out.blocked
    rules = [p.rule for p in out.problems]
    assert "standard.schema" in rules and "ID-01" in rules, rules


def test_a_record_with_only_a_schema_finding_is_still_refused() -> None:
    out = check_file(_police_file(BAD_DATE), load_pack("police"), sender="POLICE", source="x.xml")
    assert out.blocked and [p.rule for p in out.problems] == ["standard.schema"]


def test_the_notice_of_a_schema_failure_carries_the_case_number() -> None:
    out = check_file(_police_file(BAD_DATE), load_pack("police"), sender="POLICE", source="x.xml")
    notice = etree.fromstring(out.notice or b"")
    assert notice.findtext("TYAJBH") == "A1401052026030001"


def test_a_rule_that_cannot_be_evaluated_is_a_finding_of_its_own() -> None:
    rules = RuleSet([
        make_rule({"id": "OK-1", "context": "/c:CaseRecord", "test": "c:CaseNumber",
                   "message": {"zh": "缺案号", "en": "no case number"}}, "g", "test"),
        # count() of a string is a type error only when evaluated, never when compiled
        make_rule({"id": "BAD-1", "context": "/c:CaseRecord", "test": "count(string(c:CaseNumber)) = 1",
                   "message": {"zh": "坏规则", "en": "broken rule"}}, "g", "test"),
    ], "test")
    tree = etree.fromstring(b'<CaseRecord xmlns="urn:cn:justice:case-exchange:1" version="1.0"/>')
    found = {p.rule: p for p in rules.check(tree)}
    assert set(found) == {"OK-1", "BAD-1"}
    assert found["BAD-1"].severity == "block"
    assert "BAD-1" in found["BAD-1"].message and found["BAD-1"].message_zh


def test_findings_name_the_agencys_own_field_and_line_with_the_standard_path_as_detail() -> None:
    out = check_file(_police_file(BAD_DATE, BAD_ID), load_pack("police"), sender="POLICE", source="x.xml")
    found = {p.rule: p for p in out.problems}
    rid, date = found["ID-01"], found["standard.schema"]
    assert (rid.location, rid.line) == ("/AJXX/RY/SFZH", 13)
    assert rid.standard_location == "/c:CaseRecord/c:Persons/c:Person/c:ResidentId" and rid.standard_line
    assert (date.location, date.line) == ("/AJXX/SJ[1]/SJRQ", 25)
    assert date.standard_location == "/c:CaseRecord/c:Events/c:Event[1]/c:Date"
    notice = etree.fromstring(out.notice or b"")
    assert [(w.findtext("WZ"), w.findtext("HH")) for w in notice.iter("WT")] == [
        ("/AJXX/SJ[1]/SJRQ", "25"), ("/AJXX/RY/SFZH", "13")]


def test_a_field_the_legacy_schema_refused_is_not_reported_again_in_standard_terms() -> None:
    pack = load_pack("police")
    out = check_file((pack.samples / "invalid" / "date-not-yyyymmdd.xml").read_bytes(), pack,
                     sender="POLICE", source="x.xml")
    assert [p.rule for p in out.problems if p.location == "/AJXX/RY/CSRQ"] == ["legacy.schema"]
    assert not [p for p in out.problems if "BirthDate" in p.standard_location + p.location]


@pytest.mark.parametrize("name", ["police", "procuratorate", "court", "justice"])
def test_every_value_a_shipped_mapping_reads_is_traced_to_its_field_and_line(name: str) -> None:
    pack = load_pack(name)
    inbound = (pack.root / pack.spec.inbound).read_text(encoding="utf-8") if pack.spec.inbound else ""
    for sample in sorted((pack.samples / "valid").glob("*.xml")):
        legacy = xmlsafe.parse(sample.read_bytes(), source=sample.name)
        record = pack.to_standard(legacy)
        sources = pack.trace(legacy)
        assert sources, sample
        tree, file = record.getroottree(), legacy.getroottree()
        prefixes = {k: v for e in legacy.iter() if isinstance(e.tag, str) for k, v in e.nsmap.items() if k}
        for el in record.iter():
            if not isinstance(el.tag, str) or len(el):
                continue
            src = sources.get(tree.getpath(el))
            if src is None or not src.read:  # only a constant of the mapping is not read from the file
                assert f">{el.text}<" in inbound, (sample.name, tree.getpath(el), el.text)
                continue
            element, _, attribute = src.location.partition("/@")
            [node] = file.xpath(element, namespaces=prefixes)
            assert node.sourceline == src.line
            value = node.get(attribute) if attribute else "".join(node.itertext())
            assert value.strip(), (sample.name, src)
        assert SOURCE_NS.encode() not in etree.tostring(record)


_CHECKER_WORDS = re.compile(r"\b(Element|value|valid|expected|attribute|facet|pattern|type|not|is)\b")


@pytest.mark.parametrize(("message", "zh", "en"), [
    ("Element '{urn:cn:justice:case-exchange:1}ResidentId': [facet 'pattern'] The value '123' is not accepted by "
     "the pattern '[0-9]{17}[0-9X]'.", "ResidentId 的值“123”不符合规定的格式", "ResidentId: the value '123' is not in"),
    ("Element 'Gender': [facet 'enumeration'] The value 'm' is not an element of the set {'male', 'female'}.",
     "Gender 的值“m”不是允许的取值（可选：male, female）", "'m' is not one of the allowed values (male, female)"),
    ("Element '{urn:x}CaseRecord': Missing child element(s). Expected is ( {urn:x}Action ).",
     "CaseRecord 缺少必填项：Action", "CaseRecord: a required element is missing: Action"),
    ("Element '{urn:x}Bogus': This element is not expected. Expected is one of ( {urn:x}Persons, {urn:x}Events ).",
     "Bogus 不应出现在此处（此处应为：Persons, Events）",
     "Bogus is not expected here (expected here: Persons, Events)"),
    ("Element '{urn:x}Date': '2026-02-31' is not a valid value of the atomic type 'xs:date'.",
     "Date 的值“2026-02-31”不是有效的日期", "Date: '2026-02-31' is not a valid date"),
    ("Element 'SentAt': '2026-13-01T00:00' is not a valid value of the atomic type 'xs:dateTime'.",
     "SentAt 的值“2026-13-01T00:00”不是有效的日期时间", "is not a valid date and time"),
    ("Element 'Size': '-1' is not a valid value of the atomic type 'xs:nonNegativeInteger'.",
     "Size 的值“-1”不是零或正整数", "Size: '-1' is not a whole number of zero or more"),
    ("Element 'Size': 'x' is not a valid value of the atomic type 'xs:integer'.", "Size 的值“x”不是整数",
     "is not a whole number"),
    ("Element 'CaseNumber': [facet 'minLength'] The value has a length of '2'; this underruns the allowed minimum "
     "length of '4'.", "CaseNumber 的值过短：2 个字符，至少应有 4 个", "too short (2 characters, at least 4)"),
    ("Element 'Name': [facet 'maxLength'] The value has a length of '120'; this exceeds the allowed maximum length "
     "of '100'.", "Name 的值过长：120 个字符，最多 100 个", "too long (120 characters, at most 100)"),
    ("Element 'Person': The attribute 'id' is required but missing.", "Person 缺少必填属性 id",
     "the required attribute 'id' is missing"),
])
def test_schema_messages_are_plain_sentences_in_both_languages(message: str, zh: str, en: str) -> None:
    got_zh, got_en = plain(message)
    assert got_zh.startswith(zh) and en in got_en
    assert not _CHECKER_WORDS.search(got_zh), got_zh
    assert "{urn:" not in got_zh + got_en


def test_an_uncommon_schema_message_keeps_the_english_out_of_the_chinese() -> None:
    zh, en = plain("Element '{urn:x}Thing': Something else entirely went wrong.")
    assert zh == "Thing 不符合格式规定（详细说明见英文信息）" and en == "Thing: Something else entirely went wrong."


def test_the_chinese_text_of_a_notice_carries_no_checker_english() -> None:
    pack = load_pack("police")
    for body in (_police_file(BAD_DATE, BAD_ID), (pack.samples / "invalid" / "date-not-yyyymmdd.xml").read_bytes()):
        out = check_file(body, pack, sender="POLICE", source="x.xml")
        notice = etree.fromstring(out.notice or b"")
        texts = [w.findtext("SM") or "" for w in notice.iter("WT")]
        assert texts and not [t for t in texts if _CHECKER_WORDS.search(t)], texts


def test_the_notice_of_a_record_in_a_version_not_accepted_carries_the_case_number() -> None:
    out = check_file(_police_file(), load_pack("police"), sender="POLICE", source="x.xml", versions=("2",))
    assert [p.rule for p in out.problems] == ["standard.version"]
    assert etree.fromstring(out.notice or b"").findtext("TYAJBH") == "A1401052026030001"


def test_a_rules_hint_travels_on_the_finding_and_into_the_notice() -> None:
    pack = load_pack("police")
    out = check_file((pack.samples / "invalid" / "evidence-and-id-defects.xml").read_bytes(), pack,
                     sender="POLICE", source="x.xml")
    video = next(p for p in out.problems if p.rule == "EV-DD-05")
    assert (video.hint_zh, video.hint_en) == ("附现场执法视频", "attach the on-scene enforcement video")
    assert video.as_dict()["hint_zh"] == "附现场执法视频"
    notice = etree.fromstring(out.notice or b"")
    [wt] = [w for w in notice.iter("WT") if w.findtext("GZBH") == "EV-DD-05"]
    assert (wt.findtext("SM") or "").endswith("。处理建议：附现场执法视频")
    assert (wt.findtext("SMEN") or "").endswith(". What to do: attach the on-scene enforcement video")


def test_validate_prints_every_finding_with_its_field_line_and_hint(tmp_path: Path) -> None:
    f = tmp_path / "bad.xml"
    f.write_bytes(_police_file(BAD_DATE, BAD_ID))
    app = typer.Typer()
    app.command()(validate)
    result = CliRunner().invoke(app, [str(f), "--agency", "POLICE"])
    assert result.exit_code == 1, result.output
    out = re.sub(r"\s", "", result.output)  # the console wraps lines at its width
    for text in ("[standard.schema] at /AJXX/SJ[1]/SJRQ, line 25", "[ID-01] at /AJXX/RY/SFZH, line 13",
                 "Date 的值“2026-02-31”不是有效的日期",
                 "处理建议 / what to do: 核对居民身份证，重新录入18位公民身份号码 / check the number against",
                 "标准 / standard: /c:CaseRecord/c:Persons/c:Person/c:ResidentId"):
        assert re.sub(r"\s", "", text) in out, text


def test_every_shipped_evidence_rule_says_what_to_do_in_both_languages() -> None:
    rules = standard_rules("1").rules
    evidence = [r for r in rules if r.id.startswith(("EV-", "ACC-"))]
    assert evidence and all(r.hint_zh and r.hint_en for r in evidence), [r.id for r in evidence if not r.hint_en]


def test_a_hint_needs_both_languages() -> None:
    with pytest.raises(ConfigError, match="rule X: the hint needs both zh and en"):
        make_rule({"id": "X", "test": "true()", "message": {"zh": "a", "en": "b"}, "hint": {"zh": "只有中文"}},
                  "g", "rule X")


def test_a_deployments_own_rule_may_carry_a_hint(tmp_path: Path) -> None:
    data = keyed_config(tmp_path / "data")
    data["rules"] = {"add": [{"id": "LOCAL-1", "test": "c:SentAt", "reason": "r",
                              "message": {"zh": "缺发送时间", "en": "no send time"},
                              "hint": {"zh": "填写发送时间", "en": "fill in the send time"}}]}
    [added] = parse_config(data).rule_adaptations()
    assert (added.rule.hint_zh, added.rule.hint_en) == ("填写发送时间", "fill in the send time")
    assert added.as_dict()["hint"] == {"zh": "填写发送时间", "en": "fill in the send time"}


async def test_a_live_gateway_answers_every_problem_at_once_in_the_police_systems_terms(tmp_path: Path) -> None:
    gw, outs = await _gateway(tmp_path)
    try:
        r = await gw.inbound["police-in"].submit(_police_file(BAD_DATE, BAD_ID))  # type: ignore[attr-defined]
        assert r.status == MessageStatus.REJECTED
        await _received(outs["POLICE"])
        notice = etree.fromstring(outs["POLICE"].received[0].body)
        assert notice.findtext("TYAJBH") == "A1401052026030001"
        assert [(w.findtext("GZBH"), w.findtext("WZ"), w.findtext("HH")) for w in notice.iter("WT")] == [
            ("standard.schema", "/AJXX/SJ[1]/SJRQ", "25"), ("ID-01", "/AJXX/RY/SFZH", "13")]
        stored = await gw.store.get_message(r.message_id)
        assert stored is not None and stored.case_number == "A1401052026030001"
        assert [p["rule"] for p in stored.summary["problems"]] == ["standard.schema", "ID-01"]
    finally:
        await gw.stop()


async def test_a_warned_record_is_located_for_the_sender_but_stored_and_delivered_without_marks(
        tmp_path: Path) -> None:
    gw, outs = await _gateway(tmp_path)
    try:
        body = (load_pack("police").samples / "valid" / "02-transfer-for-prosecution.xml").read_bytes()
        body = re.sub(rb"\s*<AJBH DW=\"POLICE\">.*?</AJBH>", b"", body, flags=re.S)  # ACC-PR-14 warns
        r = await gw.inbound["police-in"].submit(body)  # type: ignore[attr-defined]
        assert r.status == MessageStatus.ACCEPTED
        await _received(outs["PROC"])
        stored = await gw.store.get_message(r.message_id)
        assert stored is not None
        [warning] = stored.summary["problems"]
        assert (warning["rule"], warning["location"], warning["standard_location"]) == (
            "ACC-PR-14", "/AJXX", "/c:CaseRecord")
        standard = await gw.store.get_blob(stored.canonical_hash)
        assert standard and b"<Location>/c:CaseRecord</Location>" in standard  # the receiver's terms
        for data in (standard, outs["PROC"].received[0].body):
            assert SOURCE_NS.encode() not in data and b"gws" not in data
    finally:
        await gw.stop()


def test_a_record_the_mapping_refuses_for_an_unknown_code_still_names_its_case() -> None:
    pack = load_pack("police")
    out = check_file((pack.samples / "invalid" / "unknown-offence-code.xml").read_bytes(), pack,
                     sender="POLICE", source="x.xml")
    [p] = out.problems
    assert p.rule == "mapping.code" and "“999999”" in p.message_zh and "offences" in p.message_zh
    notice = etree.fromstring(out.notice or b"")
    assert notice.findtext("TYAJBH") == "A1401052026030001"
    assert notice.findtext("WT/SM") == p.message_zh
