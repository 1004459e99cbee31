"""Business rules as data: YAML files of XPath tests, evaluated on records in the standard.

Why YAML + XPath and not ISO Schematron: the people who own evidence and acceptance standards
are agency staff, not XSLT authors. A rule here is five plain fields (id, severity, context,
test, message in Chinese and English), grouped under a shared context; Schematron would add a
compile-to-XSLT step, an XML syntax for the same XPath, and report lines of the generated
stylesheet rather than of the record. XPath tests are precompiled once; line numbers come from
the record's own `sourceline`.

The check functions a rule may call and the rewriting of its XPath are in gateway/rulefunctions.py,
how a selection of rules is compiled and run in gateway/rulecompile.py, which rules can apply to a
record in gateway/ruleselect.py; this module loads rule sets and reports their findings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import Problem
from gateway.model import Attachment
from gateway.rulecompile import _Plan
from gateway.rulefunctions import (
    _CLARK,
    _IN_CODES,
    EXTENSIONS,
    FN_NS,
    FUNCTIONS,
    NS,
    PREFIXES,
    _attachments,
    _text,
    _today,
    code_list,
    expand,
    expand_test,
    nearest,
    resident_id_ok,
)
from gateway.ruleselect import _ATTACHMENTS, Requirement, _ReadTree, requirements
from gateway.standard import string_value

__all__ = ["EXTENSIONS", "FN_NS", "FUNCTIONS", "NS", "PREFIXES", "Requirement", "Rule", "RuleSet", "code_list",
           "expand", "expand_test", "make_rule", "nearest", "readable_path", "requirements", "resident_id_ok",
           "standard_rules", "xpath_of"]


# -- rules ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    id: str
    group: str
    severity: str
    context: str
    test: str
    zh: str
    en: str
    hint_zh: str = ""  # what to do about a failure, for the officer ("" : the message says it)
    hint_en: str = ""

    @property
    def codes(self) -> str:
        """The code list a code-list rule checks against ("" for any other rule)."""
        m = _IN_CODES.search(self.test)
        return m.group(1) if m else ""

    def problem(self, node: etree._Element) -> Problem:
        codes = self.codes
        # a code is quoted as written: ' judgment' is not 'judgment' to the rules that compare it
        value = string_value(node)[:80] if codes else _text(node.text or "")[:80]
        near = nearest(value, code_list(codes)) if codes and "{nearest}" in self.en + self.zh else ""
        return Problem(
            self.id,
            self.en.replace("{value}", value).replace("{nearest}", near),
            severity=self.severity,
            line=node.sourceline,
            location=xpath_of(node),
            message_zh=self.zh.replace("{value}", value).replace("{nearest}", near),
            hint_zh=self.hint_zh.replace("{value}", value),
            hint_en=self.hint_en.replace("{value}", value),
        )


def make_rule(spec: dict[str, Any], group: str, where: str, default_context: str = "/c:CaseRecord") -> Rule:
    """One rule from its fields (id, severity, context, test, message zh/en, optional hint zh/en: what
    to do), checked as it is loaded:
    a mistake is a ConfigError that begins with `where`."""
    severity = str(spec.get("severity", "block"))
    if severity not in ("block", "warn"):
        raise ConfigError(f"{where}: severity must be block or warn, not {severity}")
    msg = spec.get("message") or {}
    if not msg.get("zh") or not msg.get("en"):
        raise ConfigError(f"{where}: the message needs both zh and en")
    hint = spec.get("hint") or {}
    if hint and (not isinstance(hint, dict) or not hint.get("zh") or not hint.get("en")):
        raise ConfigError(f"{where}: the hint needs both zh and en")
    context = str(spec.get("context") or default_context)
    test = str(spec["test"]) if "test" in spec else ""
    for expr in (context, test):  # compiled alone first, so an error names its rule
        try:
            etree.XPath(expand(expr), namespaces=PREFIXES, extensions=EXTENSIONS)
        except (etree.XPathSyntaxError, ConfigError) as e:
            raise ConfigError(f"{where}: XPath error in '{expr}': {e}") from None
    return Rule(str(spec.get("id", "")), group, severity, context, test, str(msg["zh"]), str(msg["en"]),
                str(hint.get("zh", "")), str(hint.get("en", "")))



def xpath_of(node: etree._Element) -> str:
    """A readable location: /c:CaseRecord/c:Persons/c:Person[2]/c:ResidentId."""
    parts = []
    el: etree._Element | None = node
    while el is not None:
        q = etree.QName(el)
        prefix = "c:" if q.namespace == NS else ""
        parent = el.getparent()
        same = [s for s in parent if s.tag == el.tag] if parent is not None else [el]
        idx = f"[{same.index(el) + 1}]" if len(same) > 1 else ""
        parts.append(f"{prefix}{q.localname}{idx}")
        el = parent
    return "/" + "/".join(reversed(parts))


def readable_path(tree: etree._Element, path: str | None) -> str:
    """libxml2 reports /*/*[8]/*/*[3] for namespaced nodes; name them as the rules do."""
    if not path:
        return ""
    try:
        found = tree.getroottree().xpath(path)
    except etree.XPathError:
        return path
    return (
        xpath_of(found[0])
        if isinstance(found, list) and found and isinstance(found[0], etree._Element)
        else path
    )



class RuleSet:
    """Rules loaded from one YAML file; `check` returns every failure, blocking and warning."""

    def __init__(self, rules: list[Rule], source: str) -> None:
        self.rules = rules
        self.source = source
        # One bit per distinct set of requirements: a selection of rules is the mask of its sets.
        sets: dict[frozenset[Requirement], int] = {}
        self._bit = [sets.setdefault(requirements(r.context), 1 << len(sets)) for r in rules]
        # One bit per requirement: a record's facts are the mask of those it meets.
        fact: dict[Requirement, int] = {}
        for needs in sets:
            for need in sorted(needs, key=repr):
                fact.setdefault(need, 1 << len(fact))
        self._sets = [(bit, sum(fact[n] for n in needs)) for needs, bit in sets.items()]
        self._root_facts = {_CLARK + n[1]: bit for n, bit in fact.items() if n[0] == "root"}
        self._attachment_fact = fact.get(_ATTACHMENTS, 0)
        self._tree = _ReadTree()  # the paths below the root that requirements read
        for need, bit in fact.items():
            if isinstance(need[0], tuple):
                node = self._tree
                for name in need[0]:
                    node = node.below.setdefault(_CLARK + name, _ReadTree())
                if need[1] is None:
                    node.exists |= bit
                else:
                    node.equals[need[1]] = bit
                    node.any_value |= bit
        self._masks: dict[int, int] = {}  # facts -> the selection they give
        self._sheets = lru_cache(maxsize=256)(self._compile_selection)
        self._sheets((1 << len(sets)) - 1)  # every rule, compiled now so a broken rule fails the load

    def _compile_selection(self, mask: int) -> _Plan:
        return _Plan([(i, r) for i, r in enumerate(self.rules) if self._bit[i] & mask])

    def _facts(self, root: etree._Element, attachments: tuple[Attachment, ...]) -> int:
        """The mask of the requirements this record meets, of those the rules' contexts name."""
        facts = self._root_facts.get(root.tag, 0)
        if attachments:
            facts |= self._attachment_fact
        level = [(self._tree, root)]
        while level:  # level by level, only along the paths read
            below = []
            for read, node in level:
                for child in node:  # cheaper than iterchildren(*tags), which parses the tags each call
                    sub = read.below.get(child.tag)
                    if sub is None:
                        continue
                    facts |= sub.exists
                    if sub.equals:
                        if len(child):  # mixed content: its string-value is not its text; assume any
                            facts |= sub.any_value
                        else:
                            facts |= sub.equals.get(child.text or "", 0)
                    if sub.below:
                        below.append((sub, child))
            level = below
        return facts

    def selection(self, root: etree._Element, attachments: tuple[Attachment, ...] = ()) -> int:
        """The mask of the rules whose context can select a node in this record."""
        facts = self._facts(root, attachments)
        mask = self._masks.get(facts)
        if mask is None:
            mask = 0
            for bit, needs in self._sets:
                if needs & facts == needs:
                    mask |= bit
            if len(self._masks) < 4096:  # records meet few combinations of facts; bounded all the same
                self._masks[facts] = mask
        return mask

    @classmethod
    def load(cls, path: Path) -> RuleSet:
        try:
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from None
        rules: list[Rule] = []
        seen: set[str] = set()
        for g in spec.get("groups", []):
            for r in g.get("rules", []):
                rid = str(r.get("id", ""))
                where = f"{path}: group {g.get('name')}, rule {rid or '?'}"
                if not rid or rid in seen:
                    raise ConfigError(f"{where}: every rule needs a unique id")
                seen.add(rid)
                rules.append(make_rule(r, str(g.get("name", "")), where, str(g.get("context") or "/c:CaseRecord")))
        return cls(rules, str(path))

    def adapted(self, disabled: set[str], severities: dict[str, str], added: list[Rule], source: str) -> RuleSet:
        """These rules as a deployment adapted them: some left out, some of another severity, some added."""
        rules = [replace(r, severity=severities.get(r.id, r.severity)) for r in self.rules if r.id not in disabled]
        return RuleSet([*rules, *added], source)

    def check(self, root: etree._Element, attachments: tuple[Attachment, ...] = (), *,
              strict: bool = False) -> list[Problem]:
        """Every failure of the rules that apply. A rule that cannot be evaluated on this record
        (the tree may fail the schema: the rules run on what the mapping produced) is a finding
        of its own, with the rule's severity, never an exception (`strict`: the exception, for
        trying a rule before it is put in force)."""
        mask = self.selection(root, attachments)
        if not mask:
            return []
        if strict:
            return self._check(self._sheets(mask), root, attachments)
        try:
            return self._check(self._sheets(mask), root, attachments)
        except Exception as e:  # noqa: BLE001 - one rule's error must not hide the others' findings
            if len(self.rules) == 1:
                return [self._not_evaluated(self.rules[0], root, e)]
            return [p for i, rule in enumerate(self.rules) if self._bit[i] & mask
                    for p in _alone(rule).check(root, attachments)]

    @staticmethod
    def _not_evaluated(rule: Rule, root: etree._Element, e: Exception) -> Problem:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return Problem(rule.id, f"rule {rule.id} could not be evaluated on this record ({why}); correct the "
                                "other findings first, or ask the gateway's operators",
                       severity=rule.severity, location=xpath_of(root),
                       message_zh=f"规则 {rule.id} 无法对本记录进行检查（{why}），请先改正其他问题，"
                                  "或联系交换网关运维人员")

    def _check(self, plan: _Plan, root: etree._Element, attachments: tuple[Attachment, ...]) -> list[Problem]:
        today = _today(None)
        token = _attachments.set(attachments)
        try:
            if plan.clean(root, today, bool(attachments)):
                return []
            result = plan.xslt(root, today=str(today), has_attachments="true()" if attachments else "false()")
        finally:
            _attachments.reset(token)
        out = result.getroot()
        if out is None or not len(out):
            return []
        doc = root.getroottree()
        problems = []
        # rule by rule, each rule's nodes in document order (rules sharing a context run node by node)
        for f in sorted(out, key=lambda f: int(f.get("r", "0"))):
            found = doc.xpath(f.text or "/*")
            if isinstance(found, list) and found and isinstance(found[0], etree._Element):
                problems.append(self.rules[int(f.get("r", "0"))].problem(found[0]))
        return problems


@lru_cache(maxsize=1024)
def _alone(rule: Rule) -> RuleSet:
    """One rule as a set of its own, to tell which rule of a set cannot be evaluated."""
    return RuleSet([rule], f"rule {rule.id}")


@cache
def standard_rules(major: str = "1") -> RuleSet:
    path = resources.files("standards") / "case-exchange" / f"v{major}" / "rules.yaml"
    with resources.as_file(path) as p:
        return RuleSet.load(Path(p))
