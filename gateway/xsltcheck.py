"""A pack's stylesheets checked when the pack is loaded, for mistakes XSLT itself lets pass silently.

Two templates matching the same element in the same mode: XSLT runs one (the later, or the one of
higher priority) and the other is never used, without a word; a pack author who copied a template
to change it edits the dead one. And `xsl:output`: the gateway serialises the result tree itself,
in the pack's `encoding:` with an XML declaration, so none of xsl:output's attributes count; an
outbound `encoding` other than the pack's would promise bytes the agency never gets.
"""

from __future__ import annotations

import re

from lxml import etree

from gateway import xmlencoding

XSL = "http://www.w3.org/1999/XSL/Transform"
# a pattern of one step naming an element, rooted or not: `/c:CaseRecord`, `Parties`
_STEP = re.compile(r"^/?(?:([A-Za-z_][\w.\-]*):)?([A-Za-z_][\w.\-]*)$")


def _matched(template: etree._Element) -> list[tuple[str, str, str]]:
    """(mode, namespace, local name) of each element a template's pattern names by a plain step."""
    match = template.get("match") or ""
    if "[" in match or "(" in match:
        return []  # predicates and functions: not compared
    out = []
    for alt in match.split("|"):
        m = _STEP.match(alt.strip())
        if m is None:
            continue
        prefix, local = m.groups()
        ns = template.nsmap.get(prefix) if prefix else ""
        out.append((template.get("mode") or "", ns or "", local))
    return out


def shadowed_templates(sheet: etree._ElementTree) -> list[str]:
    """One line per pair of templates matching the same element in the same mode, with their lines."""
    seen: dict[tuple[str, str, str], etree._Element] = {}
    out = []
    for t in sheet.getroot().iterchildren(f"{{{XSL}}}template"):
        for key in _matched(t):
            first = seen.setdefault(key, t)
            if first is not t:
                mode, ns, local = key
                name = f"{{{ns}}}{local}" if ns else local
                in_mode = f" in mode '{mode}'" if mode else ""
                out.append(
                    f"两个模板匹配同一元素 {local}，只有一个会生效 / the templates at line {first.sourceline} "
                    f"(match=\"{first.get('match')}\") and line {t.sourceline} (match=\"{t.get('match')}\") both "
                    f"match the element {name}{in_mode}: XSLT runs only one of them and the other is never used; "
                    "keep one")
    return out


def output_encoding_problem(sheet: etree._ElementTree, encoding: str) -> str | None:
    """Why the stylesheet's xsl:output encoding disagrees with the pack's `encoding:` (None: it does not)."""
    for out in sheet.getroot().iterchildren(f"{{{XSL}}}output"):
        named = out.get("encoding")
        if named and xmlencoding.supported(named) != xmlencoding.supported(encoding):
            return (f"line {out.sourceline}: xsl:output 的编码 {named} 与映射包的 encoding: {encoding} 不一致 / "
                    f"xsl:output says encoding=\"{named}\" but the pack's encoding: is {encoding}; the gateway "
                    f"writes {encoding} (xsl:output is not used), so remove the attribute or make the two agree")
    return None


def unwritable_literal_name(sheet: etree._ElementTree, encoding: str) -> str | None:
    """Why an element or attribute name the outbound stylesheet writes literally cannot be written in the
    pack's encoding (None: every one can). A name is not escaped as text is, so the file would not be XML."""
    names: list[tuple[str, int | None]] = []
    for el in sheet.getroot().iter(tag=etree.Element):
        q = etree.QName(el)
        if q.namespace == XSL:
            literal = el.get("name") if q.localname in ("element", "attribute") else None
            if literal and "{" not in literal:  # not an attribute value template
                names.append((literal.split(":")[-1], el.sourceline))
            continue
        names.append((q.localname, el.sourceline))
        names += [(etree.QName(a).localname, el.sourceline) for a in el.attrib if etree.QName(a).namespace != XSL]
    bad = xmlencoding.unwritable((n for n, _ in names), encoding)
    if bad is None:
        return None
    line = next(line for n, line in names if n == bad)
    return (f"line {line}: 名称 <{bad}> 无法用映射包的编码 {encoding} 表示 / the name <{bad}> cannot be written in the "
            f"pack's encoding: {encoding}, and names cannot be escaped as text is; use names {encoding} has, or "
            "encoding: GB18030 or UTF-8")
