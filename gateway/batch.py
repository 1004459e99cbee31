"""Files that hold several records: the pack's `batch:` splits them, and each record goes in alone.

Why each record is its own message and its own store transaction (not one transaction per file):
records of one file belong to different cases and go to different agencies, so one bad record
must not hold back the others, and a node that stops half-way through a file has stored whole
records only. A resend of the file is then safe: each record is split out to the same bytes,
so the store recognises the ones it has (by the SHA-256 of the record's own bytes as split out,
the inherited header parts included, which is also the hash its raw payload is stored under) and
takes in the rest. The file's receipt is the list of its records' receipts.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.errors import ConfigError
from gateway.model import MessageStatus, Receipt
from gateway.packspec import BatchSpec


@dataclass(frozen=True)
class Splitter:
    """A pack's `batch:` compiled: the record XPath and the header parts each record inherits."""

    record: etree.XPath
    inherit: tuple[etree.XPath, ...]

    @classmethod
    def compile(cls, spec: BatchSpec, pack: str) -> Splitter:
        def xpath(key: str, expr: str) -> etree.XPath:
            try:
                return etree.XPath(expr, namespaces=spec.namespaces)
            except etree.XPathSyntaxError as e:
                raise ConfigError(f"mapping pack {pack}: pack.yaml: batch.{key}: '{expr}' is not a valid XPath "
                                  f"({e}) / 不是有效的 XPath 表达式") from None

        return cls(xpath("record", spec.record),
                   tuple(xpath(f"inherit[{i}]", x) for i, x in enumerate(spec.inherit)))

    def split(self, root: etree._Element) -> list[bytes]:
        """Each record as a file of its own, UTF-8: the root's shell, the inherited parts, the record."""
        position = {el: i for i, el in enumerate(root.iter())}
        inherited = sorted({n for x in self.inherit for n in _elements(x(root))}, key=lambda el: position[el])
        parts = []
        for rec in _elements(self.record(root)):
            shell = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
            shell.text = "\n"
            for node in (*inherited, rec):
                copy = etree.fromstring(etree.tostring(node, with_tail=False))
                copy.tail = "\n"
                shell.append(copy)
            parts.append(bytes(etree.tostring(shell, xml_declaration=True, encoding="UTF-8")))
        return parts


def _elements(found: object) -> list[etree._Element]:
    return [n for n in found if isinstance(n, etree._Element)] if isinstance(found, list) else []


def file_receipt(content_hash: str, received_at: float, records: list[Receipt]) -> Receipt:
    """The answer for a whole file: accepted when every record was, a duplicate when every record was one."""
    cases = {r.case_number for r in records}
    return Receipt(
        message_id="",
        content_hash=content_hash,
        status=(MessageStatus.ACCEPTED if records and all(r.status == MessageStatus.ACCEPTED for r in records)
                else MessageStatus.REJECTED),
        case_number=cases.pop() if len(cases) == 1 else "",
        reasons=tuple(f"record {i + 1}: {why}" for i, r in enumerate(records) for why in r.reasons),
        duplicate=bool(records) and all(r.duplicate for r in records),
        received_at=received_at,
        destinations=tuple(dict.fromkeys(d for r in records for d in r.destinations)),
        records=tuple(records),
    )
