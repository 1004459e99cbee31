"""Rules run only where their context can select something, and clean records skip the stylesheet.

Both are shortcuts: the findings must be those of every rule run through the full stylesheet,
in the same order, with the same lines, for records that fail, pass, or are odd (padded codes,
comments inside a code, duplicated elements).
"""

from __future__ import annotations

import copy
import random
from importlib import resources
from pathlib import Path

import pytest
from lxml import etree

from gateway import rules as rules_mod
from gateway import xmlsafe
from gateway.mapping import load_pack
from gateway.model import Attachment
from gateway.rules import Rule, RuleSet, requirements, standard_rules

V1 = Path(str(resources.files("standards"))) / "case-exchange" / "v1"
NS = "urn:cn:justice:case-exchange:1"
C = f"{{{NS}}}"


def _records() -> list[etree._Element]:
    out = [etree.parse(str(p)).getroot() for p in sorted((V1 / "examples").glob("*.xml"))]
    pack = load_pack("police")
    for f in sorted(pack.samples.glob("*/*.xml")):
        try:
            out.append(pack.to_standard(xmlsafe.parse(f.read_bytes())))
        except Exception:  # noqa: BLE001 - samples that do not map are not rule inputs
            continue
    return out


def _mutations(root: etree._Element, rnd: random.Random) -> etree._Element:
    root = copy.deepcopy(root)
    codes = {"Stage": ["prosecution-review", "investigation", " prosecution-review"],
             "Action": ["transfer-for-prosecution", "indictment", "judgment", "request-arrest-approval"],
             "Code": ["CL133-1", "CL264", "CL266", "CL234", "CL347", "XX"],
             "Kind": ["scene-video", "victim-statement", "bogus"],
             "Date": ["2099-01-01", "1900-01-01"], "SHA256": ["0" * 64]}
    elements = [e for e in root.iter() if isinstance(e.tag, str)]
    for _ in range(rnd.randint(1, 4)):
        e = rnd.choice(elements)
        name = etree.QName(e).localname
        op = rnd.random()
        if op < 0.5 and name in codes and not len(e):
            e.text = rnd.choice(codes[name])
        elif op < 0.6 and e.getparent() is not None:
            e.addnext(copy.deepcopy(e))
        elif op < 0.7 and e.getparent() is not None:
            e.getparent().remove(e)
        elif op < 0.8 and e.text and not len(e):
            half = len(e.text) // 2
            comment = etree.Comment("x")
            comment.tail, e.text = e.text[half:], e.text[:half]
            e.append(comment)
    return root


def _reference(rules: RuleSet, root: etree._Element, attachments: tuple[Attachment, ...]) -> list[dict]:
    """Every rule through the full stylesheet: no selection, no quick verdict."""
    everything = rules._sheets((1 << len(rules._sets)) - 1)
    saved = (rules.selection, everything.clean)
    rules.selection = lambda *_: (1 << len(rules._sets)) - 1  # type: ignore[method-assign]
    everything.clean = lambda *_: False  # type: ignore[method-assign]
    try:
        return [p.as_dict() for p in rules.check(root, attachments)]
    finally:
        rules.selection, everything.clean = saved  # type: ignore[method-assign]


def test_findings_are_those_of_every_rule_in_the_full_stylesheet() -> None:
    rules = standard_rules()
    rnd = random.Random(7)
    seen_failing = seen_clean = 0
    for base in _records():
        for k in range(25):
            root = _mutations(base, rnd) if k else copy.deepcopy(base)
            files = root.findall(f"{C}Dossier/{C}File")
            attachments = tuple(Attachment(f.findtext(f"{C}Name") or "", f.findtext(f"{C}SHA256") or "", 1)
                                for f in files) if k % 3 == 0 else ()
            expected = _reference(rules, root, attachments)
            assert [p.as_dict() for p in rules.check(root, attachments)] == expected
            seen_failing += bool(expected)
            seen_clean += not expected
    assert seen_failing > 50 and seen_clean > 20


def test_requirements_are_read_only_from_what_a_context_certainly_needs() -> None:
    assert requirements("/c:CaseRecord[c:Action='indictment']/c:Dossier") == {
        ("root", "CaseRecord"), (("Action",), "indictment")}
    assert requirements("/c:CaseRecord[c:Stage='a' and c:Offences/c:Offence/c:Code]") == {
        ("root", "CaseRecord"), (("Stage",), "a"), (("Offences", "Offence", "Code"), None)}
    # an `or`, a union, or a path not from the root: nothing is assumed
    assert requirements("/c:CaseRecord[c:Action='a' or c:Action='b']") == {("root", "CaseRecord")}
    assert requirements("/c:CaseRecord/c:Events/c:Event | /c:CaseRecord/c:Documents/c:Document") == set()
    assert requirements("//c:Event[c:Type='arrest']") == set()
    # a literal holding ' and ' is not split
    assert requirements("/c:CaseRecord[c:Action='x and c:Stage']") == {
        ("root", "CaseRecord"), (("Action",), "x and c:Stage")}


def test_a_code_with_a_comment_inside_still_selects_its_rules() -> None:
    rules = RuleSet([Rule("R-1", "g", "block", "/c:CaseRecord[c:Action='indictment']", "false()", "z", "e")], "t")
    record = etree.fromstring(f'<CaseRecord xmlns="{NS}"><Action>indict<!--x-->ment</Action></CaseRecord>'.encode())
    assert [p.rule for p in rules.check(record)] == ["R-1"]
    record[0].text, record[0][0].tail = "judg", "ment"
    assert rules.check(record) == []


@pytest.mark.parametrize(("hashes", "duplicate"), [
    (["a", "b", "c"], False),
    (["a", "b", "a"], True),
    (["a", ["b", "b"], "c"], False),  # the same hash twice inside one file was never a duplicate
    (["a", ["b", "a"]], True),
])
def test_distinct_has_the_verdict_of_the_preceding_sibling_comparison(hashes: list, duplicate: bool) -> None:
    files = "".join("<File>" + "".join(f"<SHA256>{h}</SHA256>" for h in (x if isinstance(x, list) else [x]))
                    + "</File>" for x in hashes)
    dossier = etree.fromstring(f'<Dossier xmlns="{NS}">{files}</Dossier>'.encode())
    old = dossier.xpath("count(c:File) = count(c:File[not(c:SHA256 = preceding-sibling::c:File/c:SHA256)])",
                        namespaces=rules_mod.PREFIXES)
    new = dossier.xpath("cx:distinct(c:File/c:SHA256)", namespaces=rules_mod.PREFIXES,
                        extensions=rules_mod.EXTENSIONS)
    assert old is new is (not duplicate)
