"""A record's findings in the agency's own terms: one list, each naming the sender's field and line.

The gateway judges the standard form of a record (schema, rules), but the officer who must
correct it works in their own system. `in_agency_terms` is the one place a list of findings
(`Problem`) is put in those terms, for the pipeline, `gateway validate` and the notices alike:
each finding about the standard record names the agency's element or attribute and line it came
from (gateway/sourcetrace.py), keeping the standard path and line as secondary detail; one that
repeats a schema finding about the very same field of the file (the legacy schema refused the
date, so the standard schema refuses it too) is left out, since correcting the first corrects it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from lxml import etree

from gateway.mapping import Problem
from gateway.sourcetrace import Sources
from gateway.standard import NS

_N = {"c": NS}


def in_agency_terms(problems: list[Problem], standard: etree._Element | None,
                    trace: Callable[[], Sources | None]) -> list[Problem]:
    """`problems` located in the agency's file where they are about the standard record `standard`.

    `trace` gives the sources of the standard record's elements (None: none known, e.g. the file
    is the standard record itself); it is called only if some finding is about the standard record.
    """
    about = [p.location.startswith("/c:") and not p.standard_location for p in problems]
    if standard is None or not any(about):
        return problems
    sources = trace()
    out: list[Problem] = []
    schema_at: dict[tuple[str, int | None], str] = {}  # a field of the file -> the schema that refused it
    for p, is_about in zip(problems, about, strict=True):
        exact = p.rule == "legacy.schema"
        if is_about:
            p, exact = _located(p, standard, sources)
        key = (p.location, p.line)
        if exact and key in schema_at and schema_at[key] != p.rule:
            continue  # the same field, already refused by a schema
        if exact and p.rule.endswith(".schema") and p.severity == "block":
            schema_at.setdefault(key, p.rule)
        out.append(p)
    return out


def _located(p: Problem, standard: etree._Element, sources: Sources | None) -> tuple[Problem, bool]:
    """The finding at its source in the file, and whether that is the element's own source (not
    an enclosing element's)."""
    std = replace(p, standard_location=p.location, standard_line=p.line)
    if sources is None:  # none known: the standard path is the best there is
        return std, False
    try:
        found = standard.getroottree().xpath(p.location, namespaces=_N)
    except etree.XPathError:
        return std, False
    node = found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else None
    tree, exact = standard.getroottree(), True
    while node is not None:
        src = sources.get(tree.getpath(node))
        if src is not None:
            return replace(std, location=src.location, line=src.line), exact and src.read
        node, exact = node.getparent(), False
    return std, False
