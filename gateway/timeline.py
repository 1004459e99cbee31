"""A record's place on its case's timeline: what the store keeps beside the message, and how a
timeline row reads to people (stage and action named in Chinese and English).

The entry is taken from the standard record while the pipeline holds it, so the store never
re-reads a payload (which retention may have dropped) to show a case.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from lxml import etree

from gateway.errors import ConfigError
from gateway.mapping import Problem
from gateway.rules import code_list
from gateway.standard import NS, string_value
from gateway.store.rows import CaseEntryRow, NewCaseEntry

_N = {"c": NS}
# one XPath call for what the entry needs: each legal document's type and number, each dossier file's size
_PARTS = etree.XPath("c:Documents/c:Document/c:Type | c:Documents/c:Document/c:Number | c:Dossier/c:File/c:Size",
                     namespaces=_N)
_TYPE, _NUMBER, _SIZE = (f"{{{NS}}}{n}" for n in ("Type", "Number", "Size"))
RETURN_PREFIX = "return-"  # an action sending a case back (return-supplementary-investigation, ...)


def entry(tree: etree._Element | None, receivers: Sequence[str], problems: Iterable[Problem]) -> NewCaseEntry:
    """The timeline entry of a record: `receivers` are its destinations (a blocked record's: the
    receivers it named); the rules are those that blocked it."""
    documents: list[tuple[str, str]] = []
    files = size = 0
    kind = ""
    for node in _PARTS(tree) if tree is not None else ():
        text = string_value(node).strip()
        if node.tag == _TYPE:
            documents.append((text, ""))
        elif node.tag == _NUMBER and documents and not documents[-1][1] and kind == _TYPE:
            documents[-1] = (documents[-1][0], text)
        elif node.tag == _SIZE:
            files += 1
            size += int(text) if text.isdigit() else 0
        kind = node.tag
    rules = tuple(dict.fromkeys(p.rule for p in problems if p.severity == "block"))
    return NewCaseEntry(tuple(receivers), rules, tuple(documents), files, size)


def names(table: str, code: str) -> dict[str, str] | None:
    """{zh, en} of a code of the standard's `stages` or `actions` list; None for a code it does not list."""
    try:
        listed = code_list(table).get(code)
    except ConfigError:
        return None
    return {"zh": listed[0], "en": listed[1]} if listed else None


def is_return(action: str) -> bool:
    return action.startswith(RETURN_PREFIX)


def described(row: CaseEntryRow) -> dict[str, Any]:
    """A timeline row as the API answers it: with the stage's and action's names, and marked when
    it was blocked or sends the case back."""
    shown = row.as_json()
    return {**shown, "stage_name": names("stages", row.stage), "action_name": names("actions", row.action),
            "blocked": str(row.status) == "rejected", "returned": is_return(row.action),
            "documents": [{**d, "name": names("document-types", d["type"])} for d in shown["documents"]]}
