"""The Case Exchange standard v1: schema, code lists, examples, and the declarative rules."""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from gateway import standard
from gateway.errors import ConfigError
from gateway.model import Attachment
from gateway.rules import RuleSet, code_list, resident_id_ok, standard_rules

V1 = Path(str(resources.files("standards"))) / "case-exchange" / "v1"
EXAMPLES = sorted((V1 / "examples").glob("*.xml"))


def test_one_example_per_flow_table_row_and_each_is_valid_and_clean() -> None:
    assert len(EXAMPLES) == 7  # the six rows, and the ruling that answers the last (version 1.1)
    for path in EXAMPLES:
        tree = etree.parse(str(path)).getroot()
        assert standard.schema("1").validate(tree), (path.name, standard.schema("1").error_log)
        assert standard_rules().check(tree) == [], path.name


def test_code_lists_have_chinese_and_english_labels() -> None:
    for f in (V1 / "codes").glob("*.csv"):
        rows = list(csv.DictReader(f.read_text(encoding="utf-8").splitlines()))
        assert rows, f.name
        for r in rows:
            assert r["code"] and r["zh"] and r["en"], (f.name, r)
    assert len(code_list("offences")) >= 10
    for name in ("agency-roles", "stages", "actions", "document-types", "evidence-kinds"):
        assert code_list(name)


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("11010519491231002X", True),
        ("14010519850312203X", True),
        ("320508197801153627", True),
        ("110105194912310021", False),
        ("14010519850312203", False),
        ("1401051985031220AX", False),
    ],
)
def test_resident_id_check_character(value: str, ok: bool) -> None:
    assert resident_id_ok(value) is ok


def _example(name: str) -> etree._Element:
    return etree.parse(str(V1 / "examples" / name)).getroot()


NS = {"c": standard.NS}


def test_dangerous_driving_evidence_standard_blocks_what_is_missing() -> None:
    tree = _example("02-transfer-for-prosecution.xml")
    items = tree.find("c:Evidence", NS)
    assert items is not None
    for item in list(items):
        if item.findtext("c:Kind", namespaces=NS) in ("scene-video", "driving-licence-record"):
            items.remove(item)
    tree.find("c:Evidence/c:Item/c:Value", NS).text = "79.9"  # type: ignore[union-attr]
    found = {(p.rule, p.severity) for p in standard_rules().check(tree)}
    assert found == {("EV-DD-02", "block"), ("EV-DD-05", "block"), ("EV-DD-06", "warn")}


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("CL264", {"EV-TH-01", "EV-TH-02", "EV-TH-03", "EV-TH-04"}),
        ("CL266", {"EV-FR-01", "EV-FR-02", "EV-FR-03"}),
        ("CL234", {"EV-IN-01", "EV-IN-02", "EV-IN-03"}),
        ("CL347", {"EV-DR-01", "EV-DR-02", "EV-DR-03"}),
    ],
)
def test_evidence_standards_per_offence(code: str, expected: set[str]) -> None:
    tree = _example("02-transfer-for-prosecution.xml")
    tree.find("c:Offences/c:Offence/c:Code", NS).text = code  # type: ignore[union-attr]
    assert {p.rule for p in standard_rules().check(tree)} == expected


def test_problem_carries_both_languages_location_and_line() -> None:
    tree = _example("01-request-arrest-approval.xml")
    tree.find("c:Persons/c:Person/c:ResidentId", NS).text = "140105198503122031"  # type: ignore[union-attr]
    [p] = standard_rules().check(tree)
    assert p.rule == "ID-01" and p.severity == "block"
    assert "140105198503122031" in p.message and "校验位" in p.message_zh
    assert p.location == "/c:CaseRecord/c:Persons/c:Person/c:ResidentId" and p.line == 11


def test_date_coherence() -> None:
    tree = _example("04-judgment.xml")
    tree.find("c:Documents/c:Document[c:Type='judgment']/c:Date", NS).text = "2026-03-01"  # type: ignore[union-attr]
    assert [p.rule for p in standard_rules().check(tree)] == ["DATE-02"]


def test_dossier_completeness_against_the_attachments_in_the_transfer() -> None:
    tree = _example("04-judgment.xml")
    f = tree.find("c:Dossier/c:File", NS)
    assert f is not None
    name, size, digest = (f.findtext(f"c:{n}", namespaces=NS) or "" for n in ("Name", "Size", "SHA256"))
    good = Attachment(name, digest, int(size))
    assert standard_rules().check(tree, (good,)) == []
    tampered = Attachment(name, "0" * 64, int(size))
    [p] = standard_rules().check(tree, (tampered,))
    assert p.rule == "DOS-01" and p.location == "/c:CaseRecord/c:Dossier/c:File"
    # without attachments in this transport only the list itself is checkable: no finding
    assert standard_rules().check(tree, ()) == []


@pytest.mark.parametrize(("rule", "expected"), [
    ("      - id: X-1\n        severity: fatal\n        test: 'true()'\n", "X-1.*severity"),
    ("      - id: X-2\n        test: 'c:Stage['\n", "X-2.*XPath"),
])
def test_rule_file_errors_name_the_rule(tmp_path: Path, rule: str, expected: str) -> None:
    bad = tmp_path / "rules.yaml"
    head = "groups:\n  - name: g\n    rules:\n"
    bad.write_text(head + rule + "        message: {zh: a, en: b}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=expected):
        RuleSet.load(bad)


def test_reference_page_is_generated_from_the_current_standard() -> None:
    from gateway.reference import render

    page = (V1.parent.parent / "README.md").read_text(encoding="utf-8")
    assert page == render("1"), "standards/README.md is stale: run python -m gateway.reference"
    assert "`EV-DD-02`" in page and "危险驾驶罪" in page and "`/CaseRecord/Dossier/File/SHA256`" in page
