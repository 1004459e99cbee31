"""Hostile and broken inputs every inbound path must refuse clearly and survive.

Each case is raw bytes with the rule that must refuse it and the line it must name (when a
line makes sense). HTTP, SOAP, SFTP and folder tests share these cases: an inbound path passes
when each one gets its rule back to the sender, leaves an entry in the exchange log, and a
good record right after is still accepted and delivered.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import NS


@dataclass(frozen=True)
class BadInput:
    name: str
    body: bytes
    rule: str
    line: int | None = None  # the line the refusal must name; None when the file has no lines to speak of


def _record(declared: str, encoding: str) -> bytes:
    """A standard record naming a suspect in Chinese (line 3), written in `encoding`, declaring `declared`."""
    return (f'<?xml version="1.0" encoding="{declared}"?>\n<CaseRecord xmlns="{NS}" version="1.0">\n'
            "<Person><Name>张三丰</Name><Address>山西省太原市迎泽区</Address></Person>\n"
            "<CaseNumber>C2026-0001</CaseNumber></CaseRecord>").encode(encoding)


XXE = b"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE CaseRecord [<!ENTITY leak SYSTEM "file:///etc/passwd">]>
<CaseRecord xmlns="urn:cn:justice:case-exchange:1" version="1.0">
<CaseNumber>&leak;</CaseNumber></CaseRecord>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<lolz>&lol9;</lolz>"""


def oversized(limit: int) -> BadInput:
    """A record one padding block over `limit` bytes (the gateway's max_message_bytes)."""
    head = f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="{NS}" version="1.0"><Note>'.encode()
    return BadInput("over the size limit", head + b"x" * limit + b"</Note></CaseRecord>", "xml.too-large")


BAD_INPUTS: list[BadInput] = [
    BadInput("empty body", b"", "xml.empty"),
    BadInput("only whitespace", b"  \r\n\t ", "xml.empty"),
    BadInput("not XML", b"CaseNumber=C2026-0001;Stage=trial", "xml.not-xml"),
    BadInput("truncated XML", f'<?xml version="1.0"?>\n<CaseRecord xmlns="{NS}">\n<CaseNumber>C1'.encode(),
             "xml.malformed", 3),
    BadInput("external entity reading /etc/passwd (XXE)", XXE, "xml.doctype-forbidden", 2),
    BadInput("entity-expansion bomb (billion laughs)", BILLION_LAUGHS, "xml.doctype-forbidden", 2),
    BadInput("GB18030 bytes declared UTF-8", _record("UTF-8", "gb18030"), "xml.encoding-mismatch", 3),
    BadInput("UTF-8 bytes declared GB18030", _record("GB18030", "utf-8"), "xml.encoding-mismatch", 3),
    BadInput("GBK bytes with no declaration", _record("UTF-8", "gb18030").split(b"?>", 1)[1].lstrip(),
             "xml.encoding-mismatch", 2),
]
