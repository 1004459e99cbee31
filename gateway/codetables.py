"""Code tables written into a mapping's XSLT at load time, so a translation is a string search.

A pack's XSLT translates codes with `m:to-standard('TABLE', value)` / `m:to-legacy('TABLE', value)`
(gateway/mapping.py). Calling out of libxslt into Python for each code is most of a mapping's
cost, so when a pack is loaded each call with a literal table name is rewritten into plain XPath
over the table held as one string literal, built from the pack's CSV (still the only source):

    substring-before(substring-after(TABLE, concat(LF, normalize-space(value), TAB)), LF)

where TABLE is LF key TAB code LF key TAB code ... LF. normalize-space() never returns LF or
TAB, so a lookup can only match a whole key. A value with no entry (and not empty) calls back
into Python, lazily through `or`, only then: `m:untranslated` refuses the record naming the
table exactly as before, or, when Python's own lookup does find the code (a key padded with
non-XML white space such as U+3000), asks for the record to be mapped again by the original
stylesheet, so the result never differs from the Python lookup's.
"""

from __future__ import annotations

import re

from lxml import etree

XSL_NS = "http://www.w3.org/1999/XSL/Transform"
_CALL = re.compile(r"([A-Za-z_][\w.\-]*):(to-standard|to-legacy)\s*\(")
_LITERAL = re.compile(r"""\s*(?:'([^']*)'|"([^"]*)")\s*,""")
_SEP_ENTRY, _SEP_CODE = "\n", "\t"
_UNSAFE = re.compile(r"[\s'{}]")  # white space, the literal's quote, AVT braces
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


class Remap(Exception):
    """An inlined lookup missed a code that Python's lookup translates: map with the original sheet."""


def table_literal(table: dict[str, str]) -> str:
    """The table as one XPath string literal; entries it cannot hold exactly are left to Python."""
    kept = [f"{k}{_SEP_CODE}{v}" for k, v in table.items()
            if k and not _UNSAFE.search(k) and not re.search(r"[\n\t'{}]", v)]
    return "'" + _SEP_ENTRY + _SEP_ENTRY.join(kept) + _SEP_ENTRY + "'"


def _argument_end(expr: str, start: int) -> int | None:
    """Index of the ')' closing a call whose last argument starts at `start` (None: not found)."""
    depth, i = 0, start
    while i < len(expr):
        ch = expr[i]
        if ch in "'\"":
            j = expr.find(ch, i + 1)
            if j < 0:
                return None
            i = j
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            if depth == 0:
                return i if ch == ")" else None
            depth -= 1
        elif ch == "," and depth == 0:
            return None  # a third argument: not a call this rewrite understands
        i += 1
    return None


def rewrite(expr: str, prefixes: set[str], tables: dict[str, str]) -> str:
    """`expr` with every to-standard/to-legacy call on a known, literal table turned into XPath.

    `prefixes` are the prefixes bound to the mapping namespace where `expr` sits; `tables` maps
    "direction:table" to the XPath giving that table's string, e.g. {"to-standard:stages": "$v"}.
    """
    out, pos = [], 0
    for m in _CALL.finditer(expr):
        if m.start() < pos or m.group(1) not in prefixes:
            continue
        lit = _LITERAL.match(expr, m.end())
        if lit is None:
            continue
        table = lit.group(1) if lit.group(1) is not None else lit.group(2)
        literal = tables.get(f"{m.group(2)}:{table}")
        end = _argument_end(expr, lit.end())
        if literal is None or end is None:
            continue
        value = rewrite(expr[lit.end():end].strip(), prefixes, tables)
        if not value:
            continue
        key = f"concat('{_SEP_ENTRY}', normalize-space({value}), '{_SEP_CODE}')"
        found = f"contains({literal}, {key})"
        direction = "0" if m.group(2) == "to-standard" else "1"
        miss = (f"{found} or normalize-space({value}) = '' or "
                f"{m.group(1)}:untranslated('{table}', {value}, {direction})")
        out.append(expr[pos:m.start()])
        out.append(f"concat(substring-before(substring-after({literal}, {key}), '{_SEP_ENTRY}'), "
                   f"substring('', 1, number({miss})))")
        pos = end + 1
    out.append(expr[pos:])
    return "".join(out)


Tables = dict[str, tuple[dict[str, str], dict[str, str]]]  # table -> (legacy -> standard, back)


def inline(sheet: etree._ElementTree, ns: str, tables: Tables) -> bool:
    """Rewrite the lookups of `sheet` in place; True when any was rewritten.

    Each table becomes a top-level variable so the literal is written once per stylesheet.
    """
    root = sheet.getroot()
    names: dict[str, tuple[str, str]] = {}
    for table, (fwd, back) in tables.items():
        if not _NAME.fullmatch(table):  # not usable in a variable name: this table stays with Python
            continue
        for direction, entries in (("to-standard", fwd), ("to-legacy", back)):
            var = f"m-codes-{'in' if direction == 'to-standard' else 'out'}-{table}"
            names[f"{direction}:{table}"] = (f"${var}", table_literal(entries))
    refs = {k: var for k, (var, _) in names.items()}
    used: set[str] = set()
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        prefixes = {p for p, u in el.nsmap.items() if u == ns and p}
        if not prefixes:
            continue
        for attr, value in el.attrib.items():
            if ":to-" not in value:
                continue
            new = rewrite(value, prefixes, refs)
            if new != value:
                el.set(attr, new)
                used.update(k for k, (var, _) in names.items() if var in new)
    for k in sorted(used):
        var, literal = names[k]
        etree.SubElement(root, f"{{{XSL_NS}}}variable", name=var[1:], select=literal)
    return bool(used)
