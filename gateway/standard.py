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


_FIELDS = {f"{{{NS}}}{name}": name for name in ("CaseNumber", "Stage", "Action", "Sender")}
_RECEIVER = f"{{{NS}}}Receiver"


def envelope(tree: etree._Element) -> Envelope:
    """The envelope fields: the first of each named child's text, and every Receiver's.

    One pass over the root's children (this runs for every record; six XPath evaluations cost
    several times as much).
    """
    f: dict[str, str] = {}
    receivers: list[str] = []
    for child in tree.iterchildren(*_FIELDS, _RECEIVER):
        name = _FIELDS.get(child.tag)
        if name is None:  # text() of each Receiver: its own text, or each text node beside comments
            texts = child.xpath("text()") if len(child) else [child.text] if child.text is not None else []
            receivers.extend(str(t).strip() for t in texts)
        elif name not in f:
            f[name] = "".join(child.itertext()).strip()
    return Envelope(
        version=tree.get("version") or "",
        case_number=f.get("CaseNumber", ""),
        stage=f.get("Stage", ""),
        action=f.get("Action", ""),
        sender=f.get("Sender", ""),
        receivers=tuple(receivers),
    )
