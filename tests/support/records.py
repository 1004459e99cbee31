"""Records in the shared standard, as agencies' systems send them."""

from __future__ import annotations

import hashlib
import mimetypes

from gateway.sim.records import MINIMAL_CONTENT

NS = "urn:cn:justice:case-exchange:1"


def record(case: str = "C2026-0001", stage: str = "prosecution-review", action: str = "transfer-for-prosecution",
           sender: str = "POLICE", extra: str = "", version: str = "1.0") -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="{version}">'
            f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
            f"<Sender>{sender}</Sender>"
            f"<LocalNumbers><LocalNumber agency='{sender}'>L-{case}</LocalNumber></LocalNumbers>"
            f"{MINIMAL_CONTENT}<Content><Note>{extra}</Note></Content></CaseRecord>").encode()


def dossier_record(
    case: str,
    files: dict[str, bytes | tuple[str, int]],
    *,
    stage: str = "prosecution-review",
    action: str = "transfer-for-prosecution",
    note: str = "",
) -> bytes:
    """A standard record whose Dossier lists `files` (their bytes, or (sha256, size)) by name."""
    items = []
    for i, (name, data) in enumerate(files.items()):
        digest, size = (hashlib.sha256(data).hexdigest(), len(data)) if isinstance(data, bytes) else data
        media = mimetypes.guess_type(name)[0] or "application/pdf"
        items.append(
            f"<File id='f{i}'><Name>{name}</Name><MediaType>{media}</MediaType><Size>{size}</Size>"
            f"<SHA256>{digest}</SHA256></File>"
        )
    content = MINIMAL_CONTENT[: MINIMAL_CONTENT.index("<Dossier>")] + f"<Dossier>{''.join(items)}</Dossier>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="1.0">'
        f"<CaseNumber>{case}</CaseNumber><Stage>{stage}</Stage><Action>{action}</Action>"
        f"<Sender>POLICE</Sender><LocalNumbers><LocalNumber agency='POLICE'>L-{case}</LocalNumber>"
        f"</LocalNumbers>{content}<Content><Note>{note}</Note></Content></CaseRecord>"
    ).encode()
