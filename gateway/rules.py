"""Business rules as data: YAML files of XPath tests, evaluated on records in the standard.

Why YAML + XPath and not ISO Schematron: the people who own evidence and acceptance standards
are agency staff, not XSLT authors. A rule here is five plain fields (id, severity, context,
test, message in Chinese and English), grouped under a shared context; Schematron would add a
compile-to-XSLT step, an XML syntax for the same XPath, and report lines of the generated
stylesheet rather than of the record. XPath tests are precompiled once; line numbers come from
the record's own `sourceline`.

Checks XPath 1.0 cannot express are Python functions registered by name in the namespace
`urn:cn:justice:case-exchange:rules` (prefix `cx`), e.g. `cx:resident-id-ok(.)`, so a rule file
names them but cannot run anything else. Calls out of libxml2 into Python are the slow part of
an evaluation, so the helpers that XPath *can* express are expanded at load time into plain
XPath: `cx:in-codes('stages', x)` becomes a `contains()` over the code list, `cx:days(x)` a
YYYYMMDD number, `cx:today()` and `cx:has-attachments()` variables bound per check.
"""

from __future__ import annotations

import contextvars
import csv
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import Problem
from gateway.model import Attachment

NS = "urn:cn:justice:case-exchange:1"
FN_NS = "urn:cn:justice:case-exchange:rules"
PREFIXES = {"c": NS, "cx": FN_NS}

# The attachments travelling with the record being checked (dossier completeness needs them).
_attachments: contextvars.ContextVar[tuple[Attachment, ...] | None] = contextvars.ContextVar(
    "attachments", default=None
)


# -- functions a rule may call -------------------------------------------------------------------
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def resident_id_ok(value: str) -> bool:
    """ISO 7064 MOD 11-2 check character of an 18-character PRC resident ID number."""
    v = value.strip().upper()
    if len(v) != 18 or not v[:17].isdigit():
        return False
    total = sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == v[17]


def _text(arg: Any) -> str:
    """The XPath string-value of an argument (a node-set gives its first node's text)."""
    if isinstance(arg, list):
        if not arg:
            return ""
        arg = arg[0]
    if isinstance(arg, etree._Element):
        return "".join(arg.itertext()).strip()
    return str(arg).strip()


@cache
def code_list(name: str, major: str = "1") -> dict[str, tuple[str, str]]:
    """A standard code list: code -> (Chinese label, English label)."""
    path = resources.files("standards") / "case-exchange" / f"v{major}" / "codes" / f"{name}.csv"
    if not path.is_file():
        raise ConfigError(f"the standard has no code list '{name}'")
    rows = csv.DictReader(path.read_text(encoding="utf-8").splitlines())
    return {r["code"]: (r["zh"], r["en"]) for r in rows}


def _in_codes(_ctx: Any, name: Any, value: Any) -> bool:
    return _text(value) in code_list(_text(name))


def _days(_ctx: Any, value: Any) -> float:
    """A date as the number YYYYMMDD (same as the expanded form), comparable with < and >."""
    try:
        return float(dt.date.fromisoformat(_text(value)[:10]).strftime("%Y%m%d"))
    except ValueError:
        return float("nan")


def _today(_ctx: Any) -> float:
    d = dt.date.today()  # YYYYMMDD by arithmetic: strftime costs more than the rest of a check's Python
    return float(d.year * 10000 + d.month * 100 + d.day)


def _has_attachments(_ctx: Any) -> bool:
    return bool(_attachments.get())


def _attachment_ok(_ctx: Any, files: Any) -> bool:
    """The dossier file entry names an attachment present in this transport with the same hash and size."""
    if not isinstance(files, list) or not files:
        return False
    f = files[0]
    name = _text(f.xpath("c:Name/text()", namespaces=PREFIXES))
    digest = _text(f.xpath("c:SHA256/text()", namespaces=PREFIXES))
    size = _text(f.xpath("c:Size/text()", namespaces=PREFIXES))
    return any(
        a.name == name and a.sha256 == digest and str(a.size) == size for a in _attachments.get() or ()
    )


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "resident-id-ok": lambda _ctx, v: resident_id_ok(_text(v)),
    "in-codes": _in_codes,
    "days": _days,
    "today": _today,
    "has-attachments": _has_attachments,
    "attachment-ok": _attachment_ok,
}
EXTENSIONS = {(FN_NS, name): fn for name, fn in FUNCTIONS.items()}


_IN_CODES = re.compile(r"cx:in-codes\(\s*'([a-z-]+)'\s*,\s*([^()]+?)\s*\)")
_DAYS = re.compile(r"cx:days\(([^()]+)\)")
_ID = re.compile(r"cx:resident-id-ok\(([^()]+)\)")


def expand(xpath: str) -> str:
    """Rewrite the helpers XPath can express into plain XPath (no call into Python per node)."""

    def codes(m: re.Match[str]) -> str:
        listed = "|".join(code_list(m.group(1)))
        return f"contains('|{listed}|', concat('|', normalize-space({m.group(2)}), '|'))"

    xpath = _IN_CODES.sub(codes, xpath)
    # a string crosses into Python more cheaply than a node (same value: the node's string-value)
    xpath = _ID.sub(lambda m: f"cx:resident-id-ok(string({m.group(1)}))", xpath)
    xpath = _DAYS.sub(lambda m: f"number(translate(substring({m.group(1)}, 1, 10), '-', ''))", xpath)
    return xpath.replace("cx:today()", "$today").replace("cx:has-attachments()", "$has_attachments")


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

    def problem(self, node: etree._Element) -> Problem:
        value = _text(node.text or "")[:80]
        return Problem(
            self.id,
            self.en.replace("{value}", value),
            severity=self.severity,
            line=node.sourceline,
            location=xpath_of(node),
            message_zh=self.zh.replace("{value}", value),
        )


XSL = "http://www.w3.org/1999/XSL/Transform"
_HERE = re.compile(r"\$\s*here\b")


def _compile(rules: list[Rule]) -> etree.XSLT:
    """All rules as one stylesheet (as Schematron does), so a check is one pass inside libxslt.

    For every context node whose test is false it writes <f r="index">/*[i]/*[j]...</f>, the
    node's position path, which `check` turns back into the node for its name, text and line.
    Consecutive rules sharing a context (a group's rules) share one selection of it, and `$here`
    is bound only where a test reads it: selecting is most of a rule's cost.
    """
    x = f"{{{XSL}}}"
    sheet = etree.Element(f"{x}stylesheet", nsmap={"xsl": XSL, **PREFIXES}, version="1.0")
    for name in ("today", "has_attachments"):
        etree.SubElement(sheet, f"{x}param", name=name)
    etree.SubElement(sheet, f"{x}variable", name="record", select="/*")
    top = etree.SubElement(etree.SubElement(sheet, f"{x}template", match="/"), "out")
    each, here, context = top, False, None
    for i, rule in enumerate(rules):
        if rule.context != context:
            each = etree.SubElement(top, f"{x}for-each", select=expand(rule.context))
            here, context = False, rule.context
        if _HERE.search(rule.test) and not here:
            etree.SubElement(each, f"{x}variable", name="here", select=".")
            here = True
        fail = etree.SubElement(
            etree.SubElement(each, f"{x}if", test=f"not({expand(rule.test)})"), "f", r=str(i)
        )
        step = etree.SubElement(fail, f"{x}for-each", select="ancestor-or-self::*")
        etree.SubElement(step, f"{x}text").text = "/*["
        etree.SubElement(step, f"{x}value-of", select="count(preceding-sibling::*) + 1")
        etree.SubElement(step, f"{x}text").text = "]"
    return etree.XSLT(sheet, extensions=EXTENSIONS, access_control=etree.XSLTAccessControl.DENY_ALL)


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
        self._xslt = _compile(rules)

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
                severity = str(r.get("severity", "block"))
                if severity not in ("block", "warn"):
                    raise ConfigError(f"{where}: severity must be block or warn, not {severity}")
                msg = r.get("message") or {}
                if not msg.get("zh") or not msg.get("en"):
                    raise ConfigError(f"{where}: the message needs both zh and en")
                context = str(r.get("context") or g.get("context") or "/c:CaseRecord")
                test = str(r["test"]) if "test" in r else ""
                for expr in (context, test):  # compiled alone first, so an error names its rule
                    try:
                        etree.XPath(expand(expr), namespaces=PREFIXES, extensions=EXTENSIONS)
                    except etree.XPathSyntaxError as e:
                        raise ConfigError(f"{where}: XPath error in '{expr}': {e}") from None
                rules.append(
                    Rule(rid, str(g.get("name", "")), severity, context, test, str(msg["zh"]), str(msg["en"]))
                )
        return cls(rules, str(path))

    def check(self, root: etree._Element, attachments: tuple[Attachment, ...] = ()) -> list[Problem]:
        token = _attachments.set(attachments)
        try:
            result = self._xslt(
                root, today=str(_today(None)), has_attachments="true()" if attachments else "false()"
            )
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


@cache
def standard_rules(major: str = "1") -> RuleSet:
    path = resources.files("standards") / "case-exchange" / f"v{major}" / "rules.yaml"
    with resources.as_file(path) as p:
        return RuleSet.load(Path(p))
