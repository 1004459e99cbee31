"""Long inline base64 runs taken out of an envelope before it is parsed.

A record sent inline as base64 would otherwise exist four times at once: the request body, the
parser's text node, Python's copy of that text, and the decoded bytes. Lifting each long run out
first (a marker takes its place) leaves the parser a small envelope, and the record is decoded
straight from the body: the body and the decoded bytes are all that coexist.
"""

from __future__ import annotations

import re
import secrets

from lxml import etree

_RUN = re.compile(rb">([A-Za-z0-9+/=\s]{65536,})</")


def lift(body: bytes) -> tuple[bytes, dict[str, memoryview]]:
    """(the envelope with each long base64 run replaced by a marker, the runs by marker)."""
    view = memoryview(body)
    tag = secrets.token_hex(8)
    pieces: list[bytes | memoryview] = []
    runs: dict[str, memoryview] = {}
    last = 0
    for i, m in enumerate(_RUN.finditer(body)):
        marker = f"cx-inline-{tag}-{i}"
        pieces += [view[last : m.start(1)], marker.encode("ascii")]
        runs[marker] = view[m.start(1) : m.end(1)]
        last = m.end(1)
    if not runs:
        return body, {}
    pieces.append(view[last:])
    return b"".join(pieces), runs


def settle(root: etree._Element, runs: dict[str, memoryview], keep: set[str]) -> bool:
    """Put back the runs of elements the caller does not decode itself (tags outside `keep`).

    False when a marker did not come back as the whole text of an element (it was inside a comment
    or CDATA, say): the caller then parses the original body instead.
    """
    found = {el.text: el for el in root.iter() if isinstance(el.tag, str) and el.text in runs}
    if len(found) != len(runs):
        return False
    for marker, el in found.items():
        if el.tag not in keep:
            text = bytes(runs.pop(str(marker))).decode("ascii")
            el.text = text.replace("\r\n", "\n").replace("\r", "\n")  # as the parser would have read it
    return True
