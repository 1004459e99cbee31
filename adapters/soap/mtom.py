"""MTOM/XOP: a multipart/related request whose root part is the envelope and whose other parts
are binary attachments referenced by <xop:Include href="cid:..."/>, sent raw (no base64 growth).

The parts are found by python-multipart's parser (the one Starlette and adapters/multipart.py
use), which knows the MIME framing rules (boundary padding, epilogue, header syntax) that a
hand-written split gets wrong at the edges.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser

from adapters.soap.envelope import SoapFault, content_type_params

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks

_MAX_PART_HEADERS = 32  # Content-Type, -ID, -Transfer-Encoding, -Disposition... and room for more


def is_multipart(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/related")


class _Parts:
    """python-multipart's callbacks: each part's headers, and its bytes as a view into the body."""

    def __init__(self, body: bytes) -> None:
        self.body, self.view = body, memoryview(body)
        self.parts: list[tuple[dict[str, str], memoryview]] = []
        self.ended = False
        self._headers: dict[str, str] = {}
        self._field, self._value = bytearray(), bytearray()
        self._data: list[memoryview] = []

    def on_part_begin(self) -> None:
        self._headers, self._data = {}, []

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._field, self._value = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        # the body is parsed in one piece, so a part arrives as one slice of it: kept as a view, not copied
        self._data.append(self.view[start:end] if data is self.body else memoryview(data[start:end]))

    def on_part_end(self) -> None:
        data = self._data[0] if len(self._data) == 1 else memoryview(b"".join(self._data))
        self.parts.append((self._headers, data))

    def on_end(self) -> None:
        self.ended = True


def split(body: bytes, content_type: str) -> tuple[bytes, str, dict[str, memoryview]]:
    """(root envelope bytes, root part's content type, parts by Content-ID without <>).

    Parts are memoryviews into `body`, so attachments are not copied until they are stored.
    """
    params = content_type_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise SoapFault("the multipart request names no boundary", client=True, rule="mtom.boundary")
    first = body.find(b"--" + boundary.encode("latin-1"))
    if first < 0:
        raise SoapFault("the multipart request has no parts", client=True, rule="mtom.empty")
    if first > 0:  # a preamble (RFC 2046 allows one; rare in SOAP): the parser starts at the first boundary
        body = body[first:]
    found = _Parts(body)
    callbacks: MultipartCallbacks = {
        "on_part_begin": found.on_part_begin, "on_header_field": found.on_header_field,
        "on_header_value": found.on_header_value, "on_header_end": found.on_header_end,
        "on_part_data": found.on_part_data, "on_part_end": found.on_part_end, "on_end": found.on_end,
    }
    try:
        MultipartParser(boundary, callbacks, max_header_count=_MAX_PART_HEADERS).write(body)
    except FormParserError as e:
        raise SoapFault(f"the multipart request is malformed: {e}", client=True, rule="mtom.malformed") from None
    if not found.ended:
        raise SoapFault(
            "the multipart request is cut short (a part has no end boundary)",
            client=True,
            rule="mtom.truncated",
        )
    if not found.parts:
        raise SoapFault("the multipart request has no parts", client=True, rule="mtom.empty")
    start_id = params.get("start", "").strip("<>")
    root_idx = 0
    by_id: dict[str, memoryview] = {}
    for i, (h, data) in enumerate(found.parts):
        cid = h.get("content-id", "").strip("<>")
        if cid and cid == start_id:
            root_idx = i
        if cid:
            by_id[cid] = data
    root_headers, root = found.parts[root_idx]
    return bytes(root), root_headers.get("content-type", ""), by_id


def cid_of(href: str) -> str:
    return unquote(href[4:]) if href.lower().startswith("cid:") else href
