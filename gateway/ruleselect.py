"""Which rules can select anything in a record, read from the text of their contexts."""

from __future__ import annotations

import re
from typing import Any

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



class _ReadTree:
    """A path below the root that requirements read: what each value or its presence proves."""

    def __init__(self) -> None:
        self.below: dict[str, _ReadTree] = {}  # child tag -> its node
        self.exists = 0  # fact bits met when a node is here
        self.equals: dict[str, int] = {}  # string-value -> fact bit met when a node here has it
        self.any_value = 0  # all the bits of equals
