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


def to_xml(step: CaseStep, note: str = "") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{standard.NS}" version="1.0">'
        f"<CaseNumber>{escape(step.case_number)}</CaseNumber><Stage>{escape(step.stage)}</Stage>"
        f"<Action>{escape(step.action)}</Action><Sender>{escape(step.sender)}</Sender>"
        f"<Content><Note>{escape(note)}</Note></Content></CaseRecord>"
    ).encode()


def from_xml(body: bytes) -> CaseStep:
    """Read the envelope of a received record (safe parser: no DTDs, no entities)."""
    env = standard.envelope(xmlsafe.parse(body, source="received record"))
    return CaseStep(env.case_number, env.stage, env.action, env.sender)
