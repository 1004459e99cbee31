"""MTOM/XOP: a multipart/related request whose root part is the envelope and whose other parts
are binary attachments referenced by <xop:Include href="cid:..."/>, sent raw (no base64 growth).
"""

from __future__ import annotations

from urllib.parse import unquote

from adapters.soap.envelope import SoapFault, content_type_params


def is_multipart(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/related")


def split(body: bytes, content_type: str) -> tuple[bytes, str, dict[str, memoryview]]:
    """(root envelope bytes, root part's content type, parts by Content-ID without <>).

    Parts are memoryviews into `body`, so attachments are not copied until they are stored.
    """
    params = content_type_params(content_type)
    boundary = params.get("boundary")
    if not boundary:
        raise SoapFault("the multipart request names no boundary", client=True, rule="mtom.boundary")
    delim = b"--" + boundary.encode("latin-1")
    view = memoryview(body)
    parts: list[tuple[dict[str, str], memoryview]] = []
    pos = body.find(delim)
    while pos >= 0:
        start = pos + len(delim)
        if body[start : start + 2] == b"--":
            break
        head_end = body.find(b"\r\n\r\n", start)
        nxt = body.find(b"\r\n" + delim, head_end)
        if head_end < 0 or nxt < 0:
            raise SoapFault(
                "the multipart request is cut short (a part has no end boundary)",
                client=True,
                rule="mtom.truncated",
            )
        headers: dict[str, str] = {}
        for line in body[start:head_end].decode("latin-1").split("\r\n"):
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        parts.append((headers, view[head_end + 4 : nxt]))
        pos = nxt + 2
    if not parts:
        raise SoapFault("the multipart request has no parts", client=True, rule="mtom.empty")
    start_id = params.get("start", "").strip("<>")
    root_idx = 0
    by_id: dict[str, memoryview] = {}
    for i, (h, data) in enumerate(parts):
        cid = h.get("content-id", "").strip("<>")
        if cid and cid == start_id:
            root_idx = i
        if cid:
            by_id[cid] = data
    root_headers, root = parts[root_idx]
    return bytes(root), root_headers.get("content-type", ""), by_id


def cid_of(href: str) -> str:
    return unquote(href[4:]) if href.lower().startswith("cid:") else href
