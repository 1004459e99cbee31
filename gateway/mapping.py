"""Mapping packs: an agency's legacy schema and XSLT mappings, as data, no Python.

A pack is a folder with `pack.yaml` (its keys: gateway/packspec.py, docs/pack-reference.md); it
names the legacy XSD (checked before mapping), the inbound XSLT (legacy -> standard), the outbound
XSLT (standard -> legacy), the encoding the legacy system writes, and the standard version it
targets. XSLT runs with every file and network access denied, so a mapping can transform but never
read or write elsewhere.

Code translations are data: `codes/TABLE.csv` with columns `legacy,standard`. The XSLT reads
them through two extension functions in namespace `urn:cn:justice:case-exchange:mapping`,
`m:to-standard('TABLE', value)` and `m:to-legacy('TABLE', value)`, bound to this pack's tables
only (document() stays denied). A value with no translation refuses the record, naming the
table, instead of passing a code the other side would misread. At load time the lookups are
written into the XSLT as plain XPath over the CSV's rows (gateway/codetables.py), so a record
normally maps without any call into Python.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from itertools import islice
from pathlib import Path
from typing import Any

from lxml import etree

from gateway import codetables, schemamessages, sourcetrace, xmlencoding, xsltcheck
from gateway.batch import Splitter
from gateway.errors import ConfigError, InputRejected
from gateway.packspec import PackSpec, load_spec
from gateway.schemaload import load_schema

_ACCESS = etree.XSLTAccessControl.DENY_ALL
MAP_NS = "urn:cn:justice:case-exchange:mapping"


def _parser() -> etree.XMLParser:
    return etree.XMLParser(no_network=True, resolve_entities=False)


@dataclass
class Problem:
    """One failed check, in words an officer reads, with where it is."""

    rule: str
    message: str
    severity: str = "block"  # block: not forwarded; warn: forwarded with the warning visible
    line: int | None = None  # in the agency's own file where known (else in the standard form)
    location: str = ""  # the agency's own element or attribute where known, else the standard path
    message_zh: str = ""  # the same message in Chinese, for the officer reading the defect notice
    standard_location: str = ""  # where in the record's standard form, when the finding is about it
    standard_line: int | None = None
    hint_zh: str = ""  # what to do, when the rule says (rules.yaml `hint`)
    hint_en: str = ""

    def explain(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        loc = f" at {self.location}" if self.location else ""
        std = (f" [standard: {self.standard_location}]"
               if self.standard_location and self.standard_location != self.location else "")
        hint = f"; what to do: {self.hint_en}" if self.hint_en else ""
        return f"[{self.rule}] {self.message}{loc}{where}{std}{hint}"

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "severity": self.severity, "message": self.message, "line": self.line,
                "location": self.location, "message_zh": self.message_zh,
                "standard_location": self.standard_location, "standard_line": self.standard_line,
                "hint_zh": self.hint_zh, "hint_en": self.hint_en}


MAX_LISTED = 100  # findings of one schema check listed per record


def first_findings(log: etree._ListErrorLog, problem: Callable[[etree._LogEntry], Problem]) -> list[Problem]:
    """The first MAX_LISTED errors of a schema check as problems, and one saying how many more there are.

    A broken or hostile file can fail a schema check 200,000 times (once per stray attribute); listing
    them all would cost the node far more memory than the file, and the sender reads the first ones.
    """
    listed = [problem(e) for e in islice(log, MAX_LISTED)]
    more = len(log) - len(listed)
    if more > 0:
        listed.append(Problem(listed[-1].rule, f"{more:,} more findings of this check are not listed; correct "
                                               "the ones above and send the record again",
                              message_zh=f"另有 {more:,} 处同类问题未列出，请改正以上问题后重新发送"))
    return listed


def _in_file(tree: etree._Element, path: str | None) -> str:
    """libxml2's path of a node (/*/*[3] where the file uses namespaces) in the file's own names."""
    try:
        found = tree.getroottree().xpath(path) if path else None
    except etree.XPathError:
        return path or ""
    node = found[0] if isinstance(found, list) and found and isinstance(found[0], etree._Element) else None
    return sourcetrace.readable(node) if node is not None else path or ""


class MappingPack:
    def __init__(self, root: Path, spec: PackSpec) -> None:
        self.root = root
        self.spec = spec
        self.name: str = spec.name or root.name
        self.standard: str = spec.standard
        self.encoding: str = spec.encoding
        self.agency: str = spec.agency or ""  # the agency code its samples are sent as
        self.samples: Path = root / spec.samples
        self.codes = self._codes(root / spec.codes)
        self.legacy_schema = self._schema(spec.legacy_schema)
        # what the agency's system reads (records from others, defect notices): its own XSD if it has one
        self.receive_schema = self._schema(spec.receive_schema) if spec.receive_schema else self.legacy_schema
        self.inbound, self._inbound_exact = self._xslt(spec.inbound)
        # built on the first record with findings (None: the rewrite does not compile)
        self._traced: tuple[etree.XSLT, etree.XSLT] | None | bool = False
        self._lenient: etree.XSLT | None = None  # built on the first record the mapping refuses
        self.outbound, self._outbound_exact = self._xslt(spec.outbound, outbound=True)
        self.batch: Splitter | None = Splitter.compile(spec.batch, self.name) if spec.batch else None

    def _file(self, rel: str) -> Path:
        p = (self.root / rel).resolve()
        if not p.is_file():
            raise ConfigError(f"mapping pack {self.name}: {rel} does not exist in {self.root}")
        return p

    def _codes(self, folder: Path) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
        """table -> (legacy -> standard, standard -> legacy)."""
        tables: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        for f in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
            rows = list(csv.DictReader(f.read_text(encoding="utf-8").splitlines()))
            if rows and not {"legacy", "standard"} <= set(rows[0]):
                raise ConfigError(f"mapping pack {self.name}: {f.name} needs the columns legacy,standard")
            fwd = {r["legacy"].strip(): r["standard"].strip() for r in rows}
            back: dict[str, str] = {}
            for r in rows:  # the first legacy code listed for a standard code is the one written out
                back.setdefault(r["standard"].strip(), r["legacy"].strip())
            tables[f.stem] = (fwd, back)
        return tables

    def _lookup(self, table: str, value: str, direction: int) -> str:
        if not value:
            return ""
        if table not in self.codes:
            raise InputRejected(f"the {self.name} mapping uses a code table '{table}' the pack does not have",
                                rule="mapping.code-table")
        found = self.codes[table][direction].get(value)
        if found is None:
            side = ("the " + self.name + " system's", "the standard's")[direction]
            side_zh = ("本单位系统的", "标准的")[direction]
            where = f"{self.root.name}/codes/{table}.csv"
            raise InputRejected(f"{side} code '{value}' has no translation in code table {table} ({where})",
                                rule="mapping.code",
                                message_zh=f"{side_zh}代码“{value}”在代码对照表 {table}（{where}）中没有对应代码，"
                                           "请核对代码，或请系统管理员补充代码对照表")
        return found

    def _extensions(self, lenient: bool = False) -> dict[tuple[str, str], Any]:
        def arg(v: Any) -> str:
            if isinstance(v, list):
                v = v[0] if v else ""
            if isinstance(v, etree._Element):
                return "".join(v.itertext()).strip()
            return str(v).strip()

        def untranslated(_c: Any, t: Any, v: Any, direction: Any) -> bool:
            """An inlined lookup missed: refuse as the lookup does, or map again if Python finds it."""
            if self._lookup(arg(t), arg(v), int(direction)):
                raise codetables.Remap()
            return False

        def lookup(table: Any, value: Any, direction: int) -> str:
            try:
                return self._lookup(arg(table), arg(value), direction)
            except InputRejected:
                if lenient:  # kept as written: only the envelope of such a record is read
                    return arg(value)
                raise

        return {
            (MAP_NS, "to-standard"): lambda _c, t, v: lookup(t, v, 0),
            (MAP_NS, "to-legacy"): lambda _c, t, v: lookup(t, v, 1),
            (MAP_NS, "untranslated"): untranslated,
        }

    def _schema(self, rel: str | None) -> etree.XMLSchema | None:
        if not rel:
            return None
        catalog = self.spec.legacy_catalog
        # imports may read only inside this folder (default: the pack) or through the catalog
        root = (self.root / self.spec.legacy_schema_root).resolve()
        return load_schema(self._file(rel), root=root, catalog=self._file(catalog) if catalog else None,
                           label=f"mapping pack {self.name}: legacy schema {rel}", base=self.root)

    def _xslt(self, rel: str | None, outbound: bool = False) -> tuple[etree.XSLT | None, etree.XSLT | None]:
        """(the stylesheet with the code tables written in, the stylesheet as written)."""
        if not rel:
            return None, None
        p = self._file(rel)
        try:
            sheet = etree.parse(str(p), _parser())
            exact = etree.XSLT(sheet, access_control=_ACCESS, extensions=self._extensions())
        except (etree.XSLTParseError, etree.XMLSyntaxError) as e:
            raise ConfigError(f"mapping pack {self.name}: mapping {rel} is not valid XSLT: {e}") from None
        silent = xsltcheck.shadowed_templates(sheet)
        if outbound:
            silent += filter(None, [xsltcheck.output_encoding_problem(sheet, self.encoding),
                                    xsltcheck.unwritable_literal_name(sheet, self.encoding)])
        if silent:
            raise ConfigError("\n".join(f"mapping pack {self.name}: {rel}: {why}" for why in silent))
        if not codetables.inline(sheet, MAP_NS, self.codes):
            return exact, exact
        try:
            return etree.XSLT(sheet, access_control=_ACCESS, extensions=self._extensions()), exact
        except etree.XSLTParseError:  # a construct the rewrite did not foresee: keep the sheet as written
            return exact, exact

    @staticmethod
    def _apply(fast: etree.XSLT, exact: etree.XSLT | None, tree: etree._Element) -> etree._XSLTResultTree:
        try:
            return fast(tree)
        except codetables.Remap:
            assert exact is not None
            return exact(tree)

    def check_legacy(self, tree: etree._Element) -> list[Problem]:
        """Findings of the legacy XSD on a file the agency sent."""
        return self._check(self.legacy_schema, tree)

    def check_received(self, tree: etree._Element) -> list[Problem]:
        """Findings of the XSD of what the agency receives (`receive_schema:`, else `legacy_schema:`)."""
        return self._check(self.receive_schema, tree)

    def _check(self, schema: etree.XMLSchema | None, tree: etree._Element) -> list[Problem]:
        if schema is None or schema.validate(tree):
            return []

        def problem(e: etree._LogEntry) -> Problem:
            zh, en = schemamessages.plain(e.message)
            return Problem("legacy.schema", f"the file does not follow the {self.name} format: {en}",
                           line=e.line or None, location=_in_file(tree, e.path),
                           message_zh=f"文件不符合本单位接口格式规范：{zh}")

        return first_findings(schema.error_log, problem)

    def to_standard(self, tree: etree._Element) -> etree._Element:
        if self.inbound is None:
            return tree
        try:
            result = self._apply(self.inbound, self._inbound_exact, tree)
        except etree.XSLTApplyError as e:
            raise InputRejected(f"the {self.name} mapping could not translate the record: {e}",
                                rule="mapping.inbound") from None
        root = result.getroot()
        if root is None:
            raise InputRejected(f"the {self.name} mapping produced no record", rule="mapping.inbound")
        return root

    def trace(self, legacy: etree._Element) -> sourcetrace.Sources | None:
        """Where each element the inbound mapping writes for `legacy` came from in it (keyed by the
        element's path in the standard record); None: no sources known (no mapping, so the file is
        the standard record; or a mapping the rewrite cannot trace), findings keep their standard paths.

        Run only for a record with findings.
        """
        if self.spec.inbound is None:
            return None
        if self._traced is False:
            self._traced = self._traced_sheets(self.spec.inbound)
        if not isinstance(self._traced, tuple):
            return None
        try:
            out = self._apply(*self._traced, legacy).getroot()
        except (etree.XSLTApplyError, InputRejected, codetables.Remap):
            return None
        return sourcetrace.Sources(out, legacy) if out is not None else None

    def _traced_sheets(self, rel: str) -> tuple[etree.XSLT, etree.XSLT] | None:
        """The inbound stylesheet rewritten to mark sources: with the code tables written in, and as written."""
        try:
            sheet = sourcetrace.traced(etree.parse(str(self._file(rel)), _parser()))
            exact = etree.XSLT(sheet, access_control=_ACCESS, extensions=self._extensions())
            if not codetables.inline(sheet, MAP_NS, self.codes):
                return exact, exact
            return etree.XSLT(sheet, access_control=_ACCESS, extensions=self._extensions()), exact
        except (etree.XSLTParseError, etree.XMLSyntaxError):
            return None

    def envelope_despite_codes(self, tree: etree._Element) -> etree._Element | None:
        """The standard record the inbound mapping writes when every code it cannot translate is
        kept as written, or None: read only for the case number of a record the mapping refused,
        so its defect notice names the case."""
        if self.spec.inbound is None:
            return None
        try:
            if self._lenient is None:
                sheet = etree.parse(str(self._file(self.spec.inbound)), _parser())
                self._lenient = etree.XSLT(sheet, access_control=_ACCESS, extensions=self._extensions(lenient=True))
            return self._lenient(tree).getroot()
        except (etree.XSLTParseError, etree.XMLSyntaxError, etree.XSLTApplyError, InputRejected):
            return None

    def from_standard(self, tree: etree._Element) -> bytes:
        if self.outbound is None:
            out: etree._Element | None = tree
        else:
            out = self._apply(self.outbound, self._outbound_exact, tree).getroot()
        if out is None:
            raise InputRejected(f"the {self.name} outbound mapping produced no record",
                                rule="mapping.outbound")
        name = xmlencoding.unwritable_name(out, self.encoding)
        if name is not None:
            raise InputRejected(f"the {self.name} outbound mapping wrote the name <{name}>, which {self.encoding} "
                                f"cannot hold; the file would not be XML. Write names the encoding has, or set "
                                f"encoding: GB18030 or UTF-8 in the pack", rule="mapping.encoding",
                                message_zh=f"{self.name} 的出向映射写出了名称 <{name}>，{self.encoding} 编码无法"
                                           "表示，写出的文件将不是 XML；请使用该编码能表示的名称，或将映射包编码改为 "
                                           "GB18030 或 UTF-8")
        return bytes(etree.tostring(out, xml_declaration=True, encoding=self.encoding))


def _builtin_root() -> Path:
    return Path(str(resources.files("mappings")))


class PackNotFound(ConfigError):
    """No pack by that name (or for that agency) in the folders searched."""


def _bases(search: tuple[str, ...]) -> list[Path]:
    return [*[Path(s) for s in search], _builtin_root()]


def _looked_in(search: tuple[str, ...]) -> str:
    return ", ".join(str(b) for b in _bases(search))


@cache
def load_pack(name: str, search: tuple[str, ...] = ()) -> MappingPack:
    """The pack in folder `name` under the first of `search`, then the built-in packs, that has it."""
    for base in _bases(search):
        spec_path = base / name / "pack.yaml"
        if spec_path.is_file():
            return MappingPack(spec_path.parent, load_spec(spec_path))
    raise PackNotFound(f"mapping pack '{name}' not found (looked in {_looked_in(search)})")


def pack_for_agency(agency: str, search: tuple[str, ...] = ()) -> MappingPack:
    """The one pack whose `agency:` is `agency`, among every pack the search sees.

    A pack earlier in the search hides one of the same folder name later, as in `load_pack`.
    """
    seen: dict[str, Path] = {}
    for base in _bases(search):
        for spec_path in sorted(base.glob("*/pack.yaml")) if base.is_dir() else []:
            seen.setdefault(spec_path.parent.name, spec_path)
    found, unreadable = [], []
    for name, spec_path in seen.items():
        try:
            if load_spec(spec_path).agency == agency:
                found.append(name)
        except ConfigError as e:
            unreadable.append(str(e).splitlines()[0])
    if len(found) > 1:
        candidates = ", ".join(f"{n} ({seen[n].parent})" for n in found)
        raise ConfigError(f"several mapping packs have agency: {agency}: {candidates}; name the one meant "
                          "with --pack NAME, or give --config so the agency's channel names it")
    if not found:
        also = f"; packs that could not be read: {'; '.join(unreadable)}" if unreadable else ""
        raise PackNotFound(f"no mapping pack has agency: {agency} (looked in {_looked_in(search)}){also}")
    return load_pack(found[0], search)
