"""Loading a legacy schema set: many files, imports, an OASIS XML catalog, and no way out.

Real exchange schemas (NIEM-based ones such as NIBRS) are dozens of files importing each other
by relative path or by namespace URI, with an XML catalog mapping those URIs to local files.
The resolver here follows the catalog, lets relative imports load from inside the pack's
folder, and refuses anything else (network URLs, files outside the pack), naming what it refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urljoin, urlparse

from lxml import etree

from gateway.errors import ConfigError

CATALOG_NS = "urn:oasis:names:tc:entity:xmlns:xml:catalog"


def read_catalog(path: Path) -> dict[str, Path]:
    """uri/system/public entries of an OASIS catalog -> local files (relative to the catalog or xml:base)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    out: dict[str, Path] = {}
    for el in root.iter(f"{{{CATALOG_NS}}}uri", f"{{{CATALOG_NS}}}system", f"{{{CATALOG_NS}}}public"):
        key = el.get("name") or el.get("systemId") or el.get("publicId")
        target = el.get("uri")
        if key and target:
            url = urljoin(el.base or path.resolve().as_uri(), target)
            out[key] = Path(unquote(urlparse(url).path)).resolve()
    return out


class _Confined(etree.Resolver):
    def __init__(self, roots: tuple[Path, ...], catalog: dict[str, Path]) -> None:
        super().__init__()
        self.roots = tuple(r.resolve() for r in roots)
        self.catalog = catalog
        self.refused: list[str] = []

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        for key in (url, pubid):
            if key and key in self.catalog:
                target = self.catalog[key]
                if target.is_file():
                    return self.resolve_filename(str(target), context)
                self.refused.append(f"{key} (the catalog points it to {target}, which does not exist)")
                return self.resolve_string("<refused/>", context)
        parsed = urlparse(url or "")
        if parsed.scheme in ("", "file"):
            local = Path(unquote(parsed.path)).resolve()
            if any(local.is_relative_to(r) for r in self.roots):
                return None  # the ordinary loader reads it
        self.refused.append(url or pubid or "?")
        return self.resolve_string("<refused/>", context)


class SchemaFault(NamedTuple):
    """One error libxml2 found in a schema set: the file it is in (as the reader knows it), line, words."""

    file: str
    line: int
    where: str  # the XPath of the offending schema component, if libxml2 names one
    message: str

    def explain(self) -> str:
        at = f", line {self.line}" if self.line else ""
        part = f" ({self.where})" if self.where else ""
        return f"{self.file}{at}{part}: {self.message}"


class SchemaNotCompiling(ConfigError):
    """A schema set libxml2 cannot compile; each fault names the file and line it is in."""

    def __init__(self, label: str, faults: list[SchemaFault], note: str = "") -> None:
        self.label = label
        self.faults = faults
        self.note = note
        lines = [f"{label}: the schema does not compile"] + ["  " + f.explain() for f in faults]
        super().__init__("\n".join(lines + ([f"  {note}"] if note else [])))


# libxml2's words for the faults vendor schemas run into, and what they mean for the person fixing them
_PLAIN = {
    "SCHEMAP_NOT_DETERMINISTIC": (
        "its content model is not deterministic, one child element could match two places in it (often an "
        "element and a member of its substitution group, or two optional elements that look alike); libxml2 "
        "refuses such a model although some other validators accept it"
    ),
    "SCHEMAP_SRC_RESOLVE": "it refers to a component that no file in the schema set defines (a missing import?)",
}


def _shown(filename: str | None, fallback: Path, base: Path) -> str:
    """A file as the reader finds it: relative to the pack when possible."""
    if not filename or filename.startswith("<"):
        filename = str(fallback)
    if filename.startswith("file:"):
        filename = unquote(urlparse(filename).path)
    return os.path.relpath(Path(filename).resolve(), base.resolve())


def faults_of(log: etree._ListErrorLog, path: Path, base: Path) -> list[SchemaFault]:
    """The errors (not the warnings) of a failed compile, in order, each once."""
    errors = [e for e in log if e.level >= etree.ErrorLevels.ERROR] or list(log)
    out: list[SchemaFault] = []
    for e in errors:
        plain = _PLAIN.get(e.type_name)
        message = e.message.strip()
        if plain:
            subject = message.split(":", 1)[0] if ":" in message else ""
            message = f"{subject}: {plain}" if subject else plain
        fault = SchemaFault(_shown(e.filename, path, base), e.line, e.path or "", message)
        if fault not in out:
            out.append(fault)
    return out


def load_schema(
    path: Path, *, root: Path, catalog: Path | None = None, label: str = "", base: Path | None = None
) -> etree.XMLSchema:
    """An XMLSchema from `path`, imports confined to `root` and resolved through `catalog`.

    The catalog's folder and the folder holding its targets count as inside: the schema set it
    describes lives there. Faults name their file relative to `base` (default: the schema's folder).
    """
    entries = read_catalog(catalog) if catalog else {}
    roots = [root]
    if catalog:
        roots.append(catalog.parent)
    if entries:
        roots.append(Path(os.path.commonpath([str(t.parent) for t in entries.values()])))
    resolver = _Confined(tuple(roots), entries)
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    parser.resolvers.add(resolver)
    try:
        return etree.XMLSchema(etree.parse(str(path), parser))
    except (etree.XMLSchemaParseError, etree.XMLSyntaxError) as e:
        note = (
            (
                f"it imports {', '.join(resolver.refused)}: only files inside the pack or listed in its "
                "catalog are read, never the network"
            )
            if resolver.refused
            else ""
        )
        faults = faults_of(e.error_log, path, base or path.parent)
        if not faults:
            faults = [SchemaFault(_shown(None, path, base or path.parent), 0, "", str(e))]
        raise SchemaNotCompiling(label or path.name, faults, note) from None
