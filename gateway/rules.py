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
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache, lru_cache
from importlib import resources
from operator import mul
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import Problem
from gateway.model import Attachment
from gateway.standard import string_value

NS = "urn:cn:justice:case-exchange:1"
_CLARK = f"{{{NS}}}"
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
    total = sum(map(mul, map(int, v[:17]), _ID_WEIGHTS))  # map, not a generator: it runs per person
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
    """The code exactly as written is listed (as the expanded form: see `expand`)."""
    code = string_value(value[0]) if isinstance(value, list) and value else str(value or "")
    return code in code_list(_text(name))


def nearest(value: str, codes: Any) -> str:
    """The listed code closest to `value` (by case-insensitive similarity), to suggest in a finding."""
    wanted = value.strip().lower()
    return max(codes, key=lambda c: (difflib.SequenceMatcher(None, wanted, c.lower()).ratio(), c), default="")


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


def _distinct(_ctx: Any, nodes: Any) -> bool:
    """No node has the string-value of a node under another parent.

    `cx:distinct(c:File/c:SHA256)` from the dossier: no two files list the same hash. XPath 1.0
    can only say it by comparing each file with all before it, `c:File[c:SHA256 =
    preceding-sibling::c:File/c:SHA256]`, which for a 15-file dossier costs more than all the
    other rules together; this is one pass, with the same verdict (values within one file are
    not compared with each other, as there).
    """
    if not isinstance(nodes, list):
        return True
    owner: dict[str, Any] = {}
    for node in nodes:
        parent = node.getparent() if isinstance(node, etree._Element) else None
        if owner.setdefault(string_value(node), parent) is not parent:
            return False
    return True


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
    "distinct": _distinct,
}
EXTENSIONS = {(FN_NS, name): fn for name, fn in FUNCTIONS.items()}


_IN_CODES = re.compile(r"cx:in-codes\(\s*'([a-z-]+)'\s*,\s*([^()]+?)\s*\)")
_DAYS = re.compile(r"cx:days\(([^()]+)\)")
_ID = re.compile(r"cx:resident-id-ok\(([^()]+)\)")


def expand(xpath: str) -> str:
    """Rewrite the helpers XPath can express into plain XPath (no call into Python per node)."""

    def codes(m: re.Match[str]) -> str:
        # The code as written, not whitespace-normalised: the rules compare it exactly
        # (c:Action='judgment'), so a code they would not recognise must not pass as known.
        listed = "|".join(code_list(m.group(1)))
        return f"contains('|{listed}|', concat('|', string({m.group(2)}), '|'))"

    xpath = _IN_CODES.sub(codes, xpath)
    # a string crosses into Python more cheaply than a node (same value: the node's string-value)
    xpath = _ID.sub(lambda m: f"cx:resident-id-ok(string({m.group(1)}))", xpath)
    xpath = _DAYS.sub(lambda m: f"number(translate(substring({m.group(1)}, 1, 10), '-', ''))", xpath)
    return xpath.replace("cx:today()", "$today").replace("cx:has-attachments()", "$has_attachments")


_CHILD_PATH = r"c:[A-Za-z_][\w.\-]*(?:/c:[A-Za-z_][\w.\-]*)*"
_HAS_CHILD_EQUAL = re.compile(rf"\s*({_CHILD_PATH})\[\s*({_CHILD_PATH})\s*=\s*('[^']*'|\"[^\"]*\")\s*\]\s*")


def expand_test(test: str) -> str:
    """A test as evaluated: expanded, and a whole test of the form `A/B[C = 'x']` (is there a B
    with that C?) written `A/B/C = 'x'`, true for exactly the same nodes: libxml2 then compares
    one node-set with the string instead of evaluating a predicate for each B."""
    m = _HAS_CHILD_EQUAL.fullmatch(test)
    if m is not None:
        test = f"{m.group(1)}/{m.group(2)} = {m.group(3)}"
    return expand(test)


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


XSL = "http://www.w3.org/1999/XSL/Transform"
_HERE = re.compile(r"\$\s*here\b")


def _compile(rules: list[tuple[int, Rule]]) -> etree.XSLT:
    """The rules given (with their index in the rule set) as one stylesheet, as Schematron does,
    so a check is one pass inside libxslt.

    For every context node whose test is false it writes <f r="index">/*[i]/*[j]...</f>, the
    node's position path, which `check` turns back into the node for its name, text and line.
    Consecutive rules sharing a context (a group's rules) share one selection of it, and `$here`
    is bound only where a test reads it: selecting is most of a rule's cost. Where the tests
    allow it (no $here, current(), position() or last(), which read the xsl:for-each), the
    selection is guarded by one XPath asking whether any context node fails any of them: a clean
    record is then judged in one evaluation per context, not one per node and rule, and the
    per-node pass runs only to report what failed. Only the check functions the tests still call
    are registered: lxml registers each one on every run.
    """
    x = f"{{{XSL}}}"
    sheet = etree.Element(f"{x}stylesheet", nsmap={"xsl": XSL, **PREFIXES}, version="1.0")
    for name in ("today", "has_attachments"):
        etree.SubElement(sheet, f"{x}param", name=name)
    etree.SubElement(sheet, f"{x}variable", name="record", select="/*")
    top = etree.SubElement(etree.SubElement(sheet, f"{x}template", match="/"), "out")
    used: set[str] = set()
    for run in _runs(rules):
        context = expand(run[0][1].context)
        tests = [expand_test(rule.test) for _, rule in run]
        used.update(_CALLS.findall(" ".join([context, *tests])))
        parent = top
        if not any(_READS_FOR_EACH.search(rule.test) for _, rule in run):
            parent = etree.SubElement(top, f"{x}if", test=_failing(context, tests))
        each = etree.SubElement(parent, f"{x}for-each", select=context)
        if any(_HERE.search(rule.test) for _, rule in run):
            etree.SubElement(each, f"{x}variable", name="here", select=".")
        for (i, _), test in zip(run, tests, strict=True):
            fail = etree.SubElement(etree.SubElement(each, f"{x}if", test=f"not({test})"), "f", r=str(i))
            step = etree.SubElement(fail, f"{x}for-each", select="ancestor-or-self::*")
            etree.SubElement(step, f"{x}text").text = "/*["
            etree.SubElement(step, f"{x}value-of", select="count(preceding-sibling::*) + 1")
            etree.SubElement(step, f"{x}text").text = "]"
    return etree.XSLT(sheet, extensions=_extensions(used), access_control=etree.XSLTAccessControl.DENY_ALL)


_READS_FOR_EACH = re.compile(r"\$\s*here\b|\b(?:current|position|last)\s*\(")
_POSITIONAL = re.compile(r"\b(?:position|last)\s*\(")
# functions of XSLT, not of XPath: an expression calling one is only ever run in the stylesheet
_XSLT_ONLY = re.compile(r"\b(?:current|key|document|format-number|generate-id|system-property|"
                        r"element-available|function-available|unparsed-entity-uri)\s*\(")


def _runs(rules: list[tuple[int, Rule]]) -> list[list[tuple[int, Rule]]]:
    """Consecutive rules sharing a context, grouped."""
    runs: list[list[tuple[int, Rule]]] = []
    for i, rule in rules:
        if runs and runs[-1][0][1].context == rule.context:
            runs[-1].append((i, rule))
        else:
            runs.append([(i, rule)])
    return runs


def _failing(context: str, tests: list[str]) -> str:
    """The context nodes failing any of the (expanded) tests, as one XPath."""
    return f"({context})[not({' and '.join(f'({t})' for t in tests)})]"


def _extensions(names: set[str]) -> dict[tuple[str, str], Callable[..., Any]]:
    return {key: fn for key, fn in EXTENSIONS.items() if key[1] in names}


_VARIABLE = re.compile(r"\$\s*([A-Za-z_][\w.\-]*)")


class _Query:
    """An XPath run outside the stylesheet, given only the variables and check functions it uses
    (lxml registers every one passed on each call)."""

    def __init__(self, expr: str) -> None:
        self.xpath = etree.XPath(expr, namespaces=PREFIXES, extensions=_extensions(set(_CALLS.findall(expr))))
        self.variables = tuple(sorted(set(_VARIABLE.findall(expr))))

    def __call__(self, node: etree._Element | etree._ElementTree, values: dict[str, Any]) -> Any:
        # a variable no check binds is left unbound: XPath refuses it and the stylesheet decides
        return self.xpath(node, **{name: values[name] for name in self.variables if name in values})


class _Plan:
    """How one selection of rules is checked.

    The stylesheet finds and reports every failure. Most records have none, and for them the
    stylesheet's fixed cost (a libxslt transformation context, the result document) is most of
    the check, so a record is first judged by plain XPath: one expression for all the groups
    judged by `_failing` in the stylesheet, and a loop over the context nodes, with `$here`
    bound, for groups whose tests read it. Only when one of them finds a failure, or cannot be
    evaluated outside the stylesheet, does the stylesheet run, and it alone reports. So the
    findings are always the stylesheet's.
    """

    def __init__(self, rules: list[tuple[int, Rule]]) -> None:
        self.xslt = _compile(rules)
        self.quick = True
        gated: list[str] = []
        self.here: list[tuple[_Query, list[_Query]]] = []
        for run in _runs(rules):
            context = expand(run[0][1].context)
            tests = [expand_test(rule.test) for _, rule in run]
            everything = " ".join([run[0][1].context, *(r.test for _, r in run)])
            if _XSLT_ONLY.search(everything) or _POSITIONAL.search(" ".join(r.test for _, r in run)):
                self.quick = False  # position() and last() read the xsl:for-each too
            elif any(_HERE.search(rule.test) for _, rule in run):
                self.here.append((_Query(context), [_Query(f"boolean({t})") for t in tests]))
            else:
                gated.append(_failing(context, tests))
        self.gate = _Query(f"boolean({' | '.join(gated)})") if gated else None

    def clean(self, root: etree._Element, today: float, has_attachments: bool) -> bool:
        """True when no rule can fail on this record (False: let the stylesheet look)."""
        if not self.quick or root.getparent() is not None:
            return False  # the stylesheet sees a subtree as a document of its own
        doc = root.getroottree()
        values = {"record": root, "today": today, "has_attachments": has_attachments}
        try:
            if self.gate is not None and self.gate(doc, values):
                return False
            for context, tests in self.here:
                nodes = context(doc, values)
                if not isinstance(nodes, list):
                    return False
                for node in nodes:
                    if not isinstance(node, etree._Element):
                        return False
                    values["here"] = node
                    for test in tests:
                        if not test(node, values):
                            return False
        except etree.XPathError:
            return False
        return True
_CALLS = re.compile(r"cx:([a-z][a-z-]*)\s*\(")


# -- which rules can select anything in a record -------------------------------------------------
# A check runs only the rules whose context can select a node in the record at hand, through a
# stylesheet compiled once per such selection. What a context requires is read from its own
# text: its first step (`/c:CaseRecord`, the root's name) and that step's predicates of the forms
# `c:Path = 'literal'`, `c:Path` and `cx:has-attachments()`, alone or joined by `and`. Python
# reads those few values from the record (children of the root, no XPath) and leaves a rule out
# only when one of them certainly fails; any other predicate or step is left to the XPath. Every
# rule kept is still decided by its full context and test, so the findings are those of all rules.

_ROOT_STEP = re.compile(r"\s*/c:([A-Za-z_][\w.\-]*)")
_REL_PATH = re.compile(r"c:[A-Za-z_][\w.\-]*(?:/c:[A-Za-z_][\w.\-]*)*")
_ATOM = re.compile(rf"""({_REL_PATH.pattern})(?:\s*=\s*(?:'([^']*)'|"([^"]*)"))?""")
_ATTACHMENTS = ("attachments",)

# A requirement: ("root", name) the root element is c:name; ("attachments",) the transport
# carries files; (path, literal) a node at path below the root has that string-value; (path, None)
# a node at path exists. path is a tuple of names in the standard's namespace.
Requirement = tuple[Any, ...]


_LITERAL = re.compile(r"'[^']*'|\"[^\"]*\"")
_OR = re.compile(r"(?<![\w.:\-])or(?![\w.:\-])")


def _conjuncts(pred: str) -> list[str]:
    """The parts of `pred` joined by a top-level `and` ([]: it has an `or`, so no part is required)."""
    bare = _LITERAL.sub(lambda m: "'" + "_" * (len(m.group()) - 2) + "'", pred)  # same offsets
    if _OR.search(bare) or bare.count("'") % 2 or '"' in bare:
        return []
    parts, depth, start = [], 0, 0
    for m in re.finditer(r"[()\[\]]|(?<=\s)and(?=\s)", bare):
        if m.group() in "([":
            depth += 1
        elif m.group() in ")]":
            depth -= 1
        elif depth == 0:
            parts.append(pred[start:m.start()])
            start = m.end()
    return [*parts, pred[start:]]


def _predicates(text: str, pos: int) -> tuple[list[str], int] | None:
    """The predicates `[...]` starting at `pos`, and where they end (None: unbalanced)."""
    preds: list[str] = []
    while pos < len(text) and text[pos] == "[":
        depth, quote, i = 0, "", pos
        while i < len(text):
            ch = text[i]
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "[":
                depth += 1
            elif ch == "]":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        else:
            return None
        preds.append(text[pos + 1:i])
        pos = i + 1
    return preds, pos


def requirements(context: str) -> frozenset[Requirement]:
    """What a record must hold for `context` to select a node (empty: nothing is known)."""
    if "|" in context:  # a union: any branch may select
        return frozenset()
    m = _ROOT_STEP.match(context)
    if m is None:
        return frozenset()
    needs: set[Requirement] = {("root", m.group(1))}
    found = _predicates(context, m.end())
    for pred in found[0] if found else []:
        for atom in _conjuncts(pred):
            atom = atom.strip()
            if atom == "cx:has-attachments()":
                needs.add(_ATTACHMENTS)
                continue
            a = _ATOM.fullmatch(atom)
            if a is not None:
                path = tuple(step[2:] for step in a.group(1).split("/"))
                needs.add((path, a.group(2) if a.group(2) is not None else a.group(3)))
    return frozenset(needs)


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


class _ReadTree:
    """A path below the root that requirements read: what each value or its presence proves."""

    def __init__(self) -> None:
        self.below: dict[str, _ReadTree] = {}  # child tag -> its node
        self.exists = 0  # fact bits met when a node is here
        self.equals: dict[str, int] = {}  # string-value -> fact bit met when a node here has it
        self.any_value = 0  # all the bits of equals


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
        mask = 0
        for bit, needs in self._sets:
            if needs & facts == needs:
                mask |= bit
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
