"""Findings: every problem of a record at once, in the agency's own terms, with hints."""

from __future__ import annotations

from lxml import etree

from gateway.mapping import load_pack
from gateway.packcheck import check_file
from gateway.rules import RuleSet, make_rule

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
