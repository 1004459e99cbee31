"""The check functions a rule may call (prefix `cx`), and the rewriting of rule XPath before it is compiled.

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
import time
from collections.abc import Callable
from functools import cache
from importlib import resources
from operator import mul
from typing import Any

from lxml import etree

from gateway.errors import ConfigError
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
    d = time.localtime()  # today's local date, as dt.date.today(), without building a date object
    return float(d.tm_year * 10000 + d.tm_mon * 100 + d.tm_mday)  # strftime costs more than the rest


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
    # No value twice (the usual dossier): no parent to compare, and no parent proxy to build.
    values = [(n.text or "") if isinstance(n, etree._Element) and not len(n) else string_value(n) for n in nodes]
    if len(set(values)) == len(values):
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
