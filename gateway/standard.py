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


_FIELDS = {name: etree.XPath(f"string(c:{name})", namespaces=_N)
           for name in ("CaseNumber", "Stage", "Action", "Sender")}
_RECEIVERS = etree.XPath("c:Receiver/text()", namespaces=_N)


def envelope(tree: etree._Element) -> Envelope:
    """The envelope fields (XPath compiled once: this runs for every record)."""
    f = {name: str(xp(tree)).strip() for name, xp in _FIELDS.items()}
    return Envelope(
        version=tree.get("version") or "",
        case_number=f["CaseNumber"],
        stage=f["Stage"],
        action=f["Action"],
        sender=f["Sender"],
        receivers=tuple(str(x).strip() for x in _RECEIVERS(tree)),
    )
