"""Case records in the shared standard, as the simulated systems write and read them."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from gateway import standard, xmlsafe


@dataclass(frozen=True)
class CaseStep:
    """One record of a case flow: which case, at which stage, what is done, by whom."""

    case_number: str
    stage: str
    action: str
    sender: str


# What the standard's acceptance rules ask of a transfer, an indictment, a judgment and an
# execution notice: a named suspect with resident ID and address, the document of the action, the
# electronic dossier. Tests build their records with it too.
_DOCUMENTS = ("prosecution-recommendation", "indictment", "judgment", "execution-notice")
MINIMAL_CONTENT = (
    "<Persons><Person id='p1'><Role>suspect</Role><Name>张三</Name>"
    "<ResidentId>11010519491231002X</ResidentId><Address>北京市东城区</Address></Person></Persons>"
    "<Offences><Offence><Code>CL303</Code><PersonRef>p1</PersonRef></Offence></Offences><Documents>"
    + "".join(f"<Document><Type>{t}</Type><Number>N-{i}</Number><Date>2026-01-0{i + 1}</Date>"
              "<Issuer>X</Issuer></Document>"
              for i, t in enumerate(_DOCUMENTS))
    + "</Documents><Dossier><File id='f1'><Name>dossier.pdf</Name><MediaType>application/pdf</MediaType>"
    "<Size>3</Size><SHA256>" + "0" * 64 + "</SHA256></File></Dossier>"
)


def to_xml(step: CaseStep, note: str = "") -> bytes:
    sender = escape(step.sender)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{standard.NS}" version="1.0">'
        f"<CaseNumber>{escape(step.case_number)}</CaseNumber><Stage>{escape(step.stage)}</Stage>"
        f"<Action>{escape(step.action)}</Action><Sender>{sender}</Sender>"
        f"<LocalNumbers><LocalNumber agency='{sender}'>{escape(step.case_number)}</LocalNumber>"
        "</LocalNumbers>"
        f"{MINIMAL_CONTENT}<Content><Note>{escape(note)}</Note></Content></CaseRecord>"
    ).encode()


def from_xml(body: bytes) -> CaseStep:
    """Read the envelope of a received record (safe parser: no DTDs, no entities)."""
    env = standard.envelope(xmlsafe.parse(body, source="received record"))
    return CaseStep(env.case_number, env.stage, env.action, env.sender)
