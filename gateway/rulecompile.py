"""How a selection of rules is checked: one stylesheet that reports every failure, and a plain
XPath gate that clears a record with none without running it (see `_Plan`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.rulefunctions import EXTENSIONS, PREFIXES, expand, expand_test

if TYPE_CHECKING:
    from gateway.rules import Rule

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
