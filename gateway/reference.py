"""The standard's reference page, generated from its XSD, code lists and rules.

Agency IT reads `standards/README.md` instead of the XSD; generating it means the page cannot
drift from what the gateway enforces (a test compares it with a fresh rendering).

    python -m gateway.reference            # rewrite standards/README.md
    python -m gateway.reference --check    # exit 1 if it is out of date
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

from lxml import etree

from gateway.rules import standard_rules

XS = "{http://www.w3.org/2001/XMLSchema}"


def _root(major: str) -> Path:
    return Path(str(resources.files("standards"))) / "case-exchange" / f"v{major}"


def _doc(el: etree._Element) -> str:
    text = el.findtext(f"{XS}annotation/{XS}documentation") or ""
    return " ".join(text.split())


def _occurs(el: etree._Element) -> str:
    lo, hi = el.get("minOccurs", "1"), el.get("maxOccurs", "1")
    if hi == "unbounded":
        return "1..n" if lo == "1" else "0..n"
    return "required" if lo == "1" else "optional"


_BOUNDS = (("minInclusive", "≥"), ("minExclusive", ">"), ("maxInclusive", "≤"), ("maxExclusive", "<"))


def _facets(r: etree._Element, base: str) -> list[str]:
    """Every facet of one restriction, in words: lengths, patterns, enumerations, digits, bounds, whitespace."""
    def values(name: str) -> list[str]:
        return [str(f.get("value")) for f in r.findall(f"{XS}{name}")]

    unit = "bytes" if base in ("hexBinary", "base64Binary") else "characters"
    out = []
    if enum := values("enumeration"):
        out.append("one of " + ", ".join(f"`{v}`" for v in enum))
    lo, hi = values("minLength"), values("maxLength")
    for n in values("length"):
        out.append(f"exactly {n} {unit}")
    if lo and hi:
        out.append(f"{lo[0]} to {hi[0]} {unit}")
    elif lo:
        out.append(f"at least {lo[0]} {unit}")
    elif hi:
        out.append(f"at most {hi[0]} {unit}")
    if patterns := values("pattern"):
        out.append("matching " + " or ".join(f"`{p}`" for p in patterns))
    for n in values("totalDigits"):
        out.append(f"at most {n} digits")
    for n in values("fractionDigits"):
        out.append(f"at most {n} digits after the decimal point")
    for name, sign in _BOUNDS:
        out += [f"{sign} {v}" for v in values(name)]
    for v in values("whiteSpace"):
        out.append(f"whitespace: {v}")
    return out


class _Schema:
    def __init__(self, path: Path) -> None:
        self.tree = etree.parse(str(path)).getroot()
        self.complex = {t.get("name"): t for t in self.tree.findall(f"{XS}complexType")}
        self.simple = {t.get("name"): t for t in self.tree.findall(f"{XS}simpleType")}

    def _simple_words(self, name: str, inline: etree._Element | None = None) -> str:
        """A simple type as a reader needs it: its built-in base and every facet down the chain."""
        t = inline if inline is not None else self.simple.get(name)
        if t is None:
            return name.replace("xs:", "")
        r = t.find(f"{XS}restriction")
        if r is None:
            lst, union = t.find(f"{XS}list"), t.find(f"{XS}union")
            if lst is not None:
                return f"list of {self._simple_words(lst.get('itemType') or '', lst.find(f'{XS}simpleType'))}"
            members = (union.get("memberTypes") or "").split() if union is not None else []
            return "any of " + ", ".join(self._simple_words(m) for m in members)
        base = self._simple_words(r.get("base") or "", r.find(f"{XS}simpleType"))
        facets = _facets(r, base.split(",")[0])
        return ", ".join([base, *facets])

    def _type_of(self, el: etree._Element) -> str:
        words = self._simple_words(el.get("type") or "xs:string", el.find(f"{XS}simpleType"))
        for attr, what in (("default", "default"), ("fixed", "always")):
            if el.get(attr) is not None:
                words += f", {what} `{el.get(attr)}`"
        return words

    def _attributes(self, holder: etree._Element, path: str) -> Iterator[tuple[str, str, str, str]]:
        for a in holder.findall(f"{XS}attribute"):
            occurs = "required" if a.get("use") == "required" else "optional"
            yield f"{path}/@{a.get('name')}", occurs, self._type_of(a), _doc(a)

    def rows(self, el: etree._Element, prefix: str) -> Iterator[tuple[str, str, str, str]]:
        path = f"{prefix}/{el.get('name')}"
        inline = el.find(f"{XS}complexType")
        ctype = inline if inline is not None else self.complex.get(el.get("type") or "")
        if ctype is None:
            yield path, _occurs(el), self._type_of(el), _doc(el)
            return
        ext = ctype.find(f"{XS}simpleContent/{XS}extension")
        if ext is not None:
            attrs = ", ".join(f"@{a.get('name')}" for a in ext.findall(f"{XS}attribute"))
            yield path, _occurs(el), f"{self._simple_words(ext.get('base') or '')}; with {attrs}", _doc(el)
            yield from self._attributes(ext, path)
            return
        names = [a.get("name") for a in ctype.findall(f"{XS}attribute")]
        what = "group" + (f" with {', '.join('@' + str(a) for a in names)}" if names else "")
        if ctype.find(f"{XS}sequence/{XS}any") is not None:
            what = "any content"
        yield path, _occurs(el), what, _doc(el) or _doc(ctype)
        yield from self._attributes(ctype, path)
        for child in ctype.findall(f"{XS}sequence/{XS}element"):
            yield from self.rows(child, path)


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    def cell(s: str) -> str:
        return s.replace("|", "\\|")

    return (
        ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
        + [""]
    )


def render(major: str = "1") -> str:
    root = _root(major)
    xsd = _Schema(root / "case-exchange.xsd")
    ns = xsd.tree.get("targetNamespace")
    out = [
        "# Case Exchange standard, reference",
        "",
        "<!-- generated by `python -m gateway.reference` from the XSD, code lists and rules; do not edit -->",
        "",
        f"Version {xsd.tree.get('version')} (major {major}), namespace `{ns}`. The gateway accepts any "
        "1.x record (`version` attribute); a mapping pack names the major version it targets in "
        "`pack.yaml`, so a v2 can "
        "live beside v1 in `standards/case-exchange/v2/`.",
        "",
        "A record is one hand-over of one case. The envelope (case number, stage, action, sender, receivers) "
        "comes first and is what routing reads; everything after it is optional in the schema, and the "
        "rules below say what each action and each receiving agency requires.",
        "",
        "The type column gives each value's built-in XSD type and every limit the schema puts on it (length, "
        "pattern, list of values, digits, bounds, defaults); a record outside them is refused with the finding "
        "`standard.schema`.",
        "",
    ]
    for top in xsd.tree.findall(f"{XS}element"):
        out += [f"## {top.get('name')}", "", _doc(top), ""]
        out += _table(
            ["element or @attribute", "occurs", "type and limits", "meaning"],
            [[f"`{p}`", o, t, d] for p, o, t, d in xsd.rows(top, "")],
        )
    out += [
        "## Code lists",
        "",
        "Codes are data (`codes/*.csv`); rule `CODE-*` checks records against them.",
        "",
    ]
    for f in sorted((root / "codes").glob("*.csv")):
        rows = list(csv.DictReader(f.read_text(encoding="utf-8").splitlines()))
        out += [f"### {f.stem}", ""] + _table(
            ["code", "中文", "English"], [[f"`{r['code']}`", r["zh"], r["en"]] for r in rows]
        )
    out += [
        "## Rules",
        "",
        "From `rules.yaml`. **block**: the record is not forwarded and the sender gets a defect notice "
        "in its "
        "own format; **warn**: forwarded, with the warning in the record's `Warnings` for the receiver.",
        "",
    ]
    out += _table(
        ["id", "severity", "group", "applies to", "message (中文)", "message (English)", "处理建议 / what to do"],
        [
            [f"`{r.id}`", r.severity, r.group, f"`{r.context}`", r.zh, r.en,
             f"{r.hint_zh} / {r.hint_en}" if r.hint_en else ""]
            for r in standard_rules(major).rules
        ],
    )
    out += time_limits_section(major)
    out += ["## Examples", "", "One valid record per row of the case flow table:", ""]
    out += [
        f"- [`{p.name}`](case-exchange/v{major}/examples/{p.name})"
        for p in sorted((root / "examples").glob("*.xml"))
    ]
    return "\n".join(out) + "\n"


def time_limits_section(major: str) -> list[str]:
    """The statutory time limits of `time-limits.yaml`, as the clocks keep them."""
    from gateway.timelimits import load, standard_file

    def length(x: Any) -> str:
        zh, en = x.text()
        return f"{zh} / {en}"

    rows = []
    for lim in load(standard_file(major)).limits:
        ext = "; ".join(f"+{length(e.by)} by `{e.action or e.document}`, at most {e.max_times}×"
                        for e in lim.extensions) or "-"
        rows.append([f"`{lim.id}`", f"{lim.name.zh} / {lim.name.en}", ", ".join(f"`{a}`" for a in lim.starts),
                     ", ".join(f"`{a}`" for a in lim.stops),
                     length(lim.length) + (f"; at most {lim.max_periods} periods per case / 每案最多{lim.max_periods}次"
                                           if lim.max_periods else ""), ext, lim.responsible,
                     "yes" if lim.custody else "no"])
        for v in lim.variants:
            vext = "; ".join(f"+{length(e.by)} by `{e.document or e.action}`, at most {e.max_times}×"
                             for e in v.extensions) or "-"
            rows.append([f"`{lim.id}/{v.id}`", f"{v.name.zh} / {v.name.en}", f"(with `{v.when.document}`)", "",
                         length(v.length), vext, lim.responsible, "yes" if lim.custody else "no"])
    return [
        "## Time limits", "",
        "From `time-limits.yaml`. A clock starts when its starting record is confirmed delivered to the "
        "responsible agency and stops with that agency's answer for the case; periods are counted as "
        "Criminal Procedure Law art. 105 counts them (the start day is not counted; a last day on a rest day "
        "moves to the next working day, except in custody periods; months are calendar months). A return "
        "for supplementary investigation followed by the resend starts a new review period.", "",
        *_table(["id", "name", "starts", "stops", "length", "extensions", "responsible", "custody"], rows),
    ]


def main() -> None:
    target = Path(str(resources.files("standards"))) / "README.md"
    text = render("1")
    if "--check" in sys.argv[1:]:
        current = target.read_text(encoding="utf-8") if target.is_file() else ""
        if current != text:
            print(f"{target} is out of date: run python -m gateway.reference")
            sys.exit(1)
        return
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
