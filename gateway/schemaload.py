"""Loading a legacy schema set: many files, imports, an OASIS XML catalog, and no way out.

Real exchange schemas (NIEM-based ones such as NIBRS) are dozens of files importing each other
by relative path or by namespace URI, with an XML catalog mapping those URIs to local files.
The resolver here follows the catalog, lets relative imports load from inside the pack's
folder, and refuses anything else (network URLs, files outside the pack), naming what it refused.
"""

from __future__ import annotations

import os
from pathlib import Path
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


def load_schema(path: Path, *, root: Path, catalog: Path | None = None, label: str = "") -> etree.XMLSchema:
    """An XMLSchema from `path`, imports confined to `root` and resolved through `catalog`.

    The catalog's folder and the folder holding its targets count as inside: the schema set it
    describes lives there.
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
        why = (
            (
                f"; it imports {', '.join(resolver.refused)}: only files inside the pack or listed in its "
                "catalog are read, never the network"
            )
            if resolver.refused
            else ""
        )
        raise ConfigError(f"{label or path.name}: not a usable XSD: {e}{why}") from None
