"""Standard 1.1: sentences, the person a document concerns, ruling outcomes, date-only times; 1.0 stays valid."""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from gateway import standard
from gateway.rules import standard_rules

V1 = Path(str(resources.files("standards"))) / "case-exchange" / "v1"
NS = {"c": standard.NS}
RULING = V1 / "examples" / "07-commutation-ruling.xml"


def _ruling() -> etree._Element:
    return etree.parse(str(RULING)).getroot()


def _rules(tree: etree._Element) -> set[str]:
    return {p.rule for p in standard_rules().check(tree)}


def test_every_10_example_stays_valid_and_clean_under_11() -> None:
    tens = [p for p in sorted((V1 / "examples").glob("*.xml")) if etree.parse(str(p)).getroot().get("version") == "1.0"]
    assert len(tens) == 6
    for p in tens:
        tree = etree.parse(str(p)).getroot()
        assert standard.schema("1").validate(tree), (p.name, standard.schema("1").error_log)
        assert _rules(tree) == set(), p.name


def test_the_11_example_holds_sentence_outcome_person_links_and_a_date_only_sent_at() -> None:
    tree = _ruling()
    assert standard.schema("1").validate(tree), standard.schema("1").error_log
    assert _rules(tree) == set()
    docs = tree.findall("c:Documents/c:Document", NS)
    assert [(d.findtext("c:PersonRef", namespaces=NS), d.findtext("c:Outcome", namespaces=NS)) for d in docs] == [
        ("p1", "granted"), ("p2", "refused")]
    assert tree.findtext("c:Sentences/c:Sentence/c:TermMonths", namespaces=NS) == "36"


@pytest.mark.parametrize("version", ["1.0", "1"])
def test_a_record_using_11_parts_must_say_11(version: str) -> None:
    tree = _ruling()
    tree.set("version", version)
    assert standard.schema("1").validate(tree)  # the schema is one for all of 1.x; the rule tells them apart
    assert "VER-01" in _rules(tree)


def test_a_date_only_sent_at_alone_needs_11_and_a_full_timestamp_does_not() -> None:
    tree = etree.parse(str(V1 / "examples" / "06-commutation-proposal.xml")).getroot()
    sent = tree.find("c:SentAt", NS)
    assert sent is not None
    sent.text = "2026-03-20"
    assert standard.schema("1").validate(tree)
    assert _rules(tree) == {"VER-01"}
    tree.set("version", "1.1")
    assert _rules(tree) == set()
    sent.text = "2026-03-20 09:30"
    assert not standard.schema("1").validate(tree)


def test_a_document_may_name_only_a_person_of_the_record() -> None:
    tree = _ruling()
    tree.find("c:Documents/c:Document/c:PersonRef", NS).text = "p9"  # type: ignore[union-attr]
    assert [(p.rule, p.severity) for p in standard_rules().check(tree)] == [("REF-01", "block")]


def test_sentence_codes_and_terms_are_checked() -> None:
    tree = _ruling()
    sentence = tree.find("c:Sentences/c:Sentence", NS)
    assert sentence is not None
    bad = copy.deepcopy(tree)
    bad.find("c:Sentences/c:Sentence/c:Penalty", NS).text = "fixed-term"  # type: ignore[union-attr]
    found = [p for p in standard_rules().check(bad) if p.rule == "CODE-09"]
    assert found and "fixed-term-imprisonment" in found[0].message
    sentence.remove(sentence.find("c:TermMonths", NS))  # type: ignore[arg-type]
    assert _rules(tree) == {"SEN-01"}
    outcome = tree.find("c:Documents/c:Document/c:Outcome", NS)
    assert outcome is not None
    outcome.text = "approved"
    assert _rules(tree) == {"SEN-01", "CODE-10"}


def test_a_suspended_sentence_without_probation_warns() -> None:
    tree = _ruling()
    sentence = tree.find("c:Sentences/c:Sentence", NS)
    assert sentence is not None
    etree.SubElement(sentence, f"{{{standard.NS}}}Suspended").text = "true"
    sentence.insert(3, sentence[-1])  # Suspended goes after TermMonths
    assert standard.schema("1").validate(tree), standard.schema("1").error_log
    assert [(p.rule, p.severity) for p in standard_rules().check(tree)] == [("SEN-02", "warn")]
