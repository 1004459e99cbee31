"""The shared Case Exchange standard: its schemas by version and the envelope the gateway reads."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

from lxml import etree

from gateway.errors import InputRejected

NS = "urn:cn:justice:case-exchange:1"
_N = {"c": NS}


@dataclass(frozen=True)
class Envelope:
    """What routing and ordering need from a record."""

    version: str
    case_number: str
    stage: str
    action: str
    sender: str
    receivers: tuple[str, ...]


def standard_dir(major: str) -> resources.abc.Traversable:
    return resources.files("standards") / "case-exchange" / f"v{major}"


@cache
def schema(major: str = "1") -> etree.XMLSchema:
    path = standard_dir(major) / "case-exchange.xsd"
    if not path.is_file():
        raise InputRejected(f"version {major} of the Case Exchange standard is not known", rule="standard.version")
    with resources.as_file(path) as p:
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        return etree.XMLSchema(etree.parse(str(p), parser))


def major_version(tree: etree._Element) -> str:
    v = tree.get("version") or ""
    return v.split(".", 1)[0]


_FIELD_NAMES = {f"{{{NS}}}{name}": name for name in ("CaseNumber", "Stage", "Action", "Sender")}
# One XPath call for the whole envelope (each call costs more than reading what it returns):
# the first of each field, and every text node of the receivers, in document order.
_ENVELOPE = etree.XPath(" | ".join(f"c:{n}[1]" for n in _FIELD_NAMES.values()) + " | c:Receiver/text()",
                        namespaces=_N)


def string_value(node: object) -> str:
    """XPath string(node) of an element (its text when it has no child nodes, else what XPath
    says) or of an XPath result that is already a string."""
    if isinstance(node, etree._Element):
        return (node.text or "") if not len(node) else str(node.xpath("string()"))
    return str(node)


def envelope(tree: etree._Element) -> Envelope:
    """The envelope fields: string(c:Name) of each (stripped) and every receiver's text node."""
    f = dict.fromkeys(_FIELD_NAMES.values(), "")
    receivers = []
    for node in _ENVELOPE(tree):
        if isinstance(node, str):
            receivers.append(node.strip())
        else:
            f[_FIELD_NAMES[node.tag]] = string_value(node).strip()
    return Envelope(
        version=tree.get("version") or "",
        case_number=f["CaseNumber"],
        stage=f["Stage"],
        action=f["Action"],
        sender=f["Sender"],
        receivers=tuple(receivers),
    )
