"""Where in the agency's own file each element of the standard record came from.

A finding about the standard record (a schema error, a failed rule) is only useful to an officer
if it names the field of *their* system: `RY[2]/SFZH, line 13`, not `/c:CaseRecord/c:Persons/
c:Person[2]/c:ResidentId`. An inbound XSLT does not say where what it writes came from, so a
copy of it is rewritten, at the first record with findings, to say so: every element it writes
gets a private attribute holding the position path (`/*[1]/*[3]/@DW`) of the first node its
content is read from (the first location path in its own `xsl:value-of`, `xsl:copy-of` or
`xsl:with-param`), or of the node it is written for (`.`, the template's or for-each's node)
when it reads none. Packs stay as written; the rewritten copy runs only for a record with
findings, and its output is read for those marks and thrown away, so nothing private ever
reaches a stored, hashed or delivered record.

The first path is found by reading the expression, not by running it: `concat(substring(RQ,1,4),
'-',...)` reads `RQ`, `m:to-standard('roles', RYJS)` reads `RYJS`; an expression reading only
variables marks nothing, and the finding falls back to the nearest element that has a mark, or
to the standard path.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from lxml import etree

XSL = "http://www.w3.org/1999/XSL/Transform"
_X = f"{{{XSL}}}"
SOURCE_NS = "urn:cn:justice:case-exchange:gateway-source"
_MARK = f"{{{SOURCE_NS}}}from"

# instructions whose select names the value the element's content is read from
_READS = {f"{_X}{n}" for n in ("value-of", "copy-of", "with-param")}
# not looked into: another element's content, content read in another context, or structure
# (what a for-each or apply-templates selects is what the elements written there come from)
_OWN_CONTENT = {f"{_X}{n}" for n in ("for-each", "apply-templates", "element", "attribute", "variable",
                                      "comment", "processing-instruction", "message", "sort", "param")}


@dataclass(frozen=True)
class Source:
    """A node of the agency's file: its path in the file's own names, and its line."""

    location: str
    line: int | None
    read: bool = True  # the element's content was read from it (False: only written for it)


def traced(sheet: etree._ElementTree) -> etree._ElementTree:
    """A copy of an inbound stylesheet whose every written element carries the mark of its source."""
    out = copy.deepcopy(sheet)
    for el in list(out.getroot().iter()):
        if not isinstance(el.tag, str) or not _writes_element(el):
            continue
        path = _source_of(el)
        marker = _marker(path or ".", read=path is not None)
        marker.tail, el.text = el.text, None  # an attribute must come before the element's content
        el.insert(0, marker)
    return out


def _writes_element(el: etree._Element) -> bool:
    """A literal result element or xsl:element inside a template (not top-level data)."""
    if el.tag == f"{_X}element":
        return True
    if el.tag.startswith(_X) or etree.QName(el).namespace == SOURCE_NS:
        return False
    return any(a.tag == f"{_X}template" for a in el.iterancestors())


def _source_of(el: etree._Element) -> str | None:
    """The first location path the element's own content reads."""
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if child.tag in _READS:
            found = first_path(child.get("select") or "")
            if found and not _declared_inside(found, el):
                return found
        if child.tag in _OWN_CONTENT or not child.tag.startswith(_X):
            continue  # another element's content, or content read elsewhere
        found = _source_of(child)  # xsl:if, xsl:choose, xsl:call-template ... keep the context
        if found:
            return found
    return None


def _declared_inside(path: str, el: etree._Element) -> bool:
    """The path starts from a variable declared inside `el`: not yet in scope where the mark is written."""
    m = re.match(r"\$([\w.\-:]+)", path)
    return m is not None and any(v.get("name") == m.group(1) for v in el.iter(f"{_X}variable", f"{_X}param"))


def _marker(path: str, read: bool) -> etree._Element:
    """<xsl:attribute> writing the position path of `(path)[1]`, with /@name for an attribute
    (after a ~ when the content is not read from it)."""
    attr = etree.Element(f"{_X}attribute", name="gws:from", namespace=SOURCE_NS)
    if not read:
        etree.SubElement(attr, f"{_X}text").text = "~"
    each = etree.SubElement(attr, f"{_X}for-each", select=f"({path})[1]")
    step = etree.SubElement(each, f"{_X}for-each", select="ancestor-or-self::*")
    etree.SubElement(step, f"{_X}text").text = "/*["
    etree.SubElement(step, f"{_X}value-of", select="count(preceding-sibling::*) + 1")
    etree.SubElement(step, f"{_X}text").text = "]"
    is_attr = etree.SubElement(each, f"{_X}if", test="count(. | ../@*) = count(../@*)")
    etree.SubElement(is_attr, f"{_X}text").text = "/@"
    etree.SubElement(is_attr, f"{_X}value-of", select="name()")
    return attr


_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")
_NODE_TEST = re.compile(r"\b(text|node|comment)\(\s*\)")
_PATH = re.compile(r"(?:/|//)?[\w.\-:@*#/]+")
_NUMBER = re.compile(r"[\d.]+")


def first_path(expr: str) -> str | None:
    """The first location path in an XPath 1.0 expression (None: it reads no node, only values)."""
    # same offsets as expr: literals and node tests hidden, so the pieces can be cut from expr itself
    bare = _STRING.sub(lambda m: "'" + "_" * (len(m.group()) - 2) + "'", expr)
    bare = _NODE_TEST.sub(lambda m: m.group(1) + "#" * (len(m.group()) - len(m.group(1))), bare)
    pieces: list[tuple[str, str, str]] = []  # (piece as hidden, as written, the character after it)
    depth, start = 0, 0
    for i, ch in enumerate(bare + " "):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif depth == 0 and (ch in "(),|=<>+!" or ch.isspace()):
            pieces.append((bare[start:i], expr[start:i], ch))
            start = i + 1
    for piece, written, after in pieces:
        if piece in (".", ".."):
            return piece
        skeleton = piece
        while "[" in skeleton:  # predicates, innermost first
            unnested = re.sub(r"\[[^\[\]]*\]", "", skeleton)
            if unnested == skeleton:
                break
            skeleton = unnested
        if not skeleton or after == "(" or skeleton in _NOT_PATHS:
            continue  # a function's name, an operator
        if skeleton.startswith("$"):  # a variable's nodes, when a step follows it (else it may be a string)
            if re.fullmatch(r"\$[\w.\-:]+/[\w.\-:@*#/]+", skeleton):
                return written
            continue
        if _NUMBER.fullmatch(skeleton) or not _PATH.fullmatch(skeleton):
            continue
        return written
    return None


_NOT_PATHS = {"and", "or", "div", "mod", "*", "-"}


class Sources:
    """The marks of a traced mapping's output: output element path -> the legacy node it came from.

    A mark is resolved only when a finding asks for it: a record has a few findings and many elements.
    """

    def __init__(self, marked: etree._Element, legacy: etree._Element) -> None:
        tree = marked.getroottree()
        self._marks = {tree.getpath(el): mark for el in marked.iter()
                       if isinstance(el.tag, str) and (mark := el.get(_MARK))}
        self._file = legacy.getroottree()

    def __len__(self) -> int:
        return len(self._marks)

    def get(self, path: str) -> Source | None:
        mark = self._marks.get(path)
        if not mark:
            return None
        read = not mark.startswith("~")
        element, _, attribute = mark.lstrip("~").partition("/@")
        try:
            found = self._file.xpath(element)
        except etree.XPathError:
            return None
        if not (isinstance(found, list) and found and isinstance(found[0], etree._Element)):
            return None
        node = found[0]
        return Source(readable(node) + (f"/@{attribute}" if attribute else ""), node.sourceline, read)


def readable(node: etree._Element) -> str:
    """/AJXX/RY[2]/SFZH: the element's names as its file writes them, with a position only where
    siblings share the name (as libxml2 writes a path for an element without a namespace)."""
    parts = []
    el: etree._Element | None = node
    while el is not None:
        q = etree.QName(el)
        name = f"{el.prefix}:{q.localname}" if el.prefix else q.localname
        parent = el.getparent()
        same = [s for s in parent if s.tag == el.tag] if parent is not None else [el]
        parts.append(f"{name}[{same.index(el) + 1}]" if len(same) > 1 else name)
        el = parent
    return "/" + "/".join(reversed(parts))
