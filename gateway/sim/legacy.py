"""Each simulated agency writes and reads its own legacy format, taken from its mapping pack.

A system's outgoing records are its pack's sample files with the demo's case number put in (the
samples are what that legacy system really sends); the police's dossier files are generated as
small PDFs whose size and SHA-256 the record lists. Incoming records are read with the pack's own
inbound mapping, as the gateway would, so the demo shows each agency receiving its own format.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lxml import etree

from gateway import standard, xmlsafe
from gateway.mapping import load_pack
from gateway.sim.records import CaseStep

SAMPLE_CASE = "A1401052026030001"
DEFECTIVE = "defective-transfer"  # a transfer that breaks the evidence and identity rules

# (agency, action) -> the pack sample that legacy system sends for it
TEMPLATES = {
    ("POLICE", "request-arrest-approval"): "police/samples/valid/01-request-arrest-approval.xml",
    ("POLICE", "transfer-for-prosecution"): "police/samples/valid/02-transfer-for-prosecution.xml",
    ("POLICE", DEFECTIVE): "police/samples/invalid/evidence-and-id-defects.xml",
    ("PROC", "approve-arrest"): "procuratorate/samples/valid/approve-arrest.xml",
    ("PROC", "indictment"): "procuratorate/samples/valid/03-indictment.xml",
    ("PROC", "return-supplementary-investigation"):
        "procuratorate/samples/valid/return-supplementary-investigation.xml",
    ("COURT", "judgment"): "court/samples/valid/04-judgment.xml",
    ("COURT", "execution-notice"): "court/samples/valid/05-execution-notice.xml",
    ("JUSTICE", "offender-received"): "justice/samples/valid/offender-received.xml",
}
PACKS = {"POLICE": "police", "PROC": "procuratorate", "COURT": "court", "JUSTICE": "justice"}
NOTICE_ROOTS = {"THTZ": "TYAJBH", "DefectNotice": "CaseNumber"}  # a defect notice, and where its case is


def _sample(rel: str) -> bytes:
    return (Path(str(resources.files("mappings"))) / rel).read_bytes()


@dataclass(frozen=True)
class Outgoing:
    """One record as the legacy system writes it, with the dossier files sent beside it."""

    body: bytes
    files: dict[str, bytes]


def minimal_pdf(title: str) -> bytes:
    """A valid one-page PDF showing `title` (ASCII): a stand-in for a scanned dossier document."""
    text = title.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 14 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def outgoing(agency: str, action: str, case_number: str, stem: str = "") -> Outgoing:
    """The record `agency` sends for `action` in case `case_number`, in its own format."""
    body = _sample(TEMPLATES[(agency, action)]).replace(SAMPLE_CASE.encode(), case_number.encode())
    if agency == "POLICE":
        return _with_dossier(body, stem or case_number)
    if agency == "PROC" and b"<jc:Materials>" in body:
        return _with_materials(body, stem or case_number)
    return Outgoing(body, {})


def _with_materials(body: bytes, stem: str) -> Outgoing:
    """Generate the files a procuratorate record lists as materials (the indictment and the case
    file it sends the court), with their real size and SHA-256."""
    tree = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    files = {}
    for m in tree.iter("{*}Material"):
        name = (m.text or "").strip()
        data = minimal_pdf(f"{stem} {m.get('id', '')} procuratorate material")
        m.set("size", str(len(data)))
        m.set("sha256", hashlib.sha256(data).hexdigest())
        files[name] = data
    return Outgoing(etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), files)


def _with_dossier(body: bytes, stem: str) -> Outgoing:
    """List generated dossier files (name STEM.ID.ext, real size and SHA-256) in a police record."""
    tree = etree.fromstring(body, etree.XMLParser(resolve_entities=False, no_network=True))
    files = {}
    for wj in tree.iter("WJ"):
        fid, name = wj.findtext("WJBH", ""), wj.findtext("WJM", "")
        ext = name.rsplit(".", 1)[-1] if "." in name else "pdf"
        data = minimal_pdf(f"{stem} dossier file {fid}") if ext == "pdf" else _video(stem, fid)
        file_name = f"{stem}.{fid}.{ext}"
        for tag, value in (("WJM", file_name), ("WJDX", str(len(data))),
                           ("HASH", hashlib.sha256(data).hexdigest())):
            el = wj.find(tag)
            if el is not None:
                el.text = value
        files[file_name] = data
    return Outgoing(etree.tostring(tree, xml_declaration=True, encoding="GB18030"), files)


def _video(stem: str, fid: str) -> bytes:
    """The first bytes of an MP4 (ftyp box) and a label: enough to stand for a body-camera video."""
    return b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + f"{stem} {fid}".encode()


def incoming(agency: str, body: bytes) -> CaseStep:
    """Read a record delivered to `agency` in its format; a defect notice has the action 'defect-notice'."""
    tree = xmlsafe.parse(body, source=f"record delivered to {agency}")
    root = etree.QName(tree).localname
    if root in NOTICE_ROOTS:
        case = str(tree.xpath(f"string(//*[local-name()='{NOTICE_ROOTS[root]}'])")).strip()
        return CaseStep(case, "notice", "defect-notice", "GATEWAY")
    env = standard.envelope(load_pack(PACKS[agency]).to_standard(tree))
    return CaseStep(env.case_number, env.stage, env.action, env.sender)
