"""Every parser of inbound bytes, fuzzed: whatever arrives is accepted or refused in words, never a traceback.

Each parser gets random bytes, and inputs built to get past its first checks: well-formed XML
with random names, attributes, text, nesting and encodings, then cut or given a random tail;
SOAP envelopes with random operations, headers and base64; multipart bodies with random
boundaries, parts and headers, fed in random chunks; mutated real records through the
pipeline's steps. The outcome must be the parser's result or the project's own refusal
(InputRejected or another GatewayError, SoapFault, FormError) carrying a rule and a message.
Bounded and derandomized, with no example database, so a run is the same everywhere.
"""

from __future__ import annotations

import base64
import string
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters import multipart
from adapters.dropcheck import files_listed_in_record
from adapters.soap import envelope, mtom
from adapters.soap.envelope import SOAP11, SOAP12, TNS, XOP, SoapFault
from adapters.soap.inbound import SoapInbound, _binary, _standalone
from gateway import notice, xmlsafe
from gateway.config import parse_config
from gateway.errors import GatewayError, InputRejected
from gateway.files import FileStore
from gateway.model import InboundRecord
from gateway.pipeline import Context, Rejected
from gateway.runtime import Gateway
from gateway.xmllimits import DEFAULT as XML_LIMITS

from .support.config import base_config
from .support.records import record

EXAMPLES = 200
fuzz = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- building blocks ----------------------------------------------------------------------------
ENCODINGS = st.one_of(st.none(), st.sampled_from(["UTF-8", "utf-8", "GB18030", "gbk", "GB2312", "utf8"]),
                      st.sampled_from(["UTF-16", "ISO-8859-1", "us-ascii", "big5", "rot13", "idna", "base64",
                                       "no-such-codec", "UTF-32", "cp037"]))
_NAME_START = string.ascii_letters + "_" + "案件人员文书"
names = st.builds(lambda a, b: a + b, st.sampled_from(_NAME_START),
                  st.text(alphabet=_NAME_START + string.digits + ".-", max_size=8))
# mostly names without a prefix; a prefix is declared by the element only now and then
prefixed = st.one_of(names, names, names,
                     st.builds(lambda p, n: f"{p}:{n}", st.sampled_from(["a", "xs", "soap", "xop"]), names))
# mostly text XML can hold; now and then anything (lone surrogates are left out: they cannot be encoded)
_xml_chars = st.one_of(st.characters(exclude_categories=["Cs", "Cc"], exclude_characters="\ufffe\uffff"),
                       st.sampled_from("\t\n\r 0123456789"))
texts = st.one_of(st.text(_xml_chars, max_size=40), st.text(_xml_chars, max_size=40),
                  st.text(st.characters(exclude_categories=["Cs"]), max_size=40))
attr_values = st.one_of(texts, st.sampled_from(["", "²", "٣", "1" * 5000, "-1", "0x10", " 7 ", "1e3"]))
tails = st.one_of(st.just(b""), st.binary(max_size=40), st.sampled_from([
    b"<", b"</", b"]]>", b"<!DOCTYPE x>", b'<!ENTITY e "x">', b"&e;", b"&#0;", b"&#x110000;", b"\xff\xfe",
    b"<?xml version='1.0'?>", b"<![CDATA[", b"<!--", b"\x00", b"\r\n\r\n"]))


PREFIXES = f' xmlns:a="urn:a" xmlns:xs="urn:xs" xmlns:soap="{SOAP12}" xmlns:xop="{XOP}"'


def one_in(draw: st.DrawFn, n: int) -> bool:
    """True about once in n draws (hypothesis favours small integers, so not integers(0, n - 1) == 0)."""
    return bool(draw(st.sampled_from([True] + [False] * (n - 1))))


def _escape(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


@st.composite
def elements(draw: st.DrawFn, depth: int = 3, name: str | None = None) -> str:
    """One element as XML text: random name, attributes, namespaces, text and children."""
    tag = name or draw(prefixed)
    attrs = draw(st.dictionaries(prefixed, attr_values, max_size=3))
    ns = draw(st.sampled_from(["", "", ' xmlns="urn:x"', f' xmlns:soap="{SOAP11}"', ' xmlns:a=""']))
    if depth == 3 and not one_in(draw, 6):  # the outermost element declares the prefixes, now and then not
        ns = draw(st.sampled_from(["", ' xmlns="urn:x"'])) + PREFIXES
    head = f"<{tag}{ns}" + "".join(f' {k}="{_escape(v)}"' for k, v in attrs.items())
    if one_in(draw, 6):
        return head + "/>"
    inner = []
    for _ in range(draw(st.integers(0, 3 if depth else 0))):
        kind = draw(st.integers(0, 9))
        if kind < 4 and depth:
            inner.append(draw(elements(depth - 1)))
        elif kind < 7:
            inner.append(_escape(draw(texts)))
        elif kind == 7:
            inner.append(f"<![CDATA[{draw(texts)}]]>")
        elif kind == 8:
            inner.append(f"<!--{draw(texts)}-->")
        else:
            inner.append(f"&#{draw(st.integers(0, 0x10FFFF))};")
    return head + ">" + "".join(inner) + f"</{tag}>"


@st.composite
def documents(draw: st.DrawFn, root: st.SearchStrategy[str] | None = None, damage: int = 2) -> bytes:
    """A document in a declared (or undeclared) encoding; one in `damage` is cut short or given a random tail."""
    body = draw(root if root is not None else elements())
    enc = draw(ENCODINGS)
    decl = "" if enc is None else f'<?xml version="1.0" encoding="{enc}"?>' + draw(st.sampled_from(["", "\n", " "]))
    codec = {"GB2312": "gb18030", "utf8": "utf-8"}.get(enc or "", enc or "utf-8")
    try:
        data = (decl + body).encode(codec, errors="xmlcharrefreplace")
    except (LookupError, UnicodeError, TypeError):
        data = (decl + body).encode("utf-8", errors="surrogatepass")
    if not one_in(draw, damage):
        return data
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    # (a UTF-8 byte order mark is read as XML 1.0 Appendix F says, unless the declaration names another encoding)
    return draw(st.sampled_from([b"", b" \n", b"\xef\xbb\xbf"])) + data + draw(tails)


def refused(e: BaseException) -> None:
    """A refusal the sender is shown: it names the rule it broke and says what was wrong."""
    rule = getattr(e, "rule", None)
    message = getattr(e, "message", None) or str(e)
    assert isinstance(rule, str) and rule, f"{type(e).__name__} without a rule: {e!r}"
    assert isinstance(message, str) and message.strip(), f"{type(e).__name__} without a message: {e!r}"
    event(f"refused: {rule}")  # --hypothesis-show-statistics tells how far the inputs got


# -- gateway/xmlsafe.py ------------------------------------------------------------------------------
def _xmlsafe(body: bytes) -> None:
    try:
        root = xmlsafe.parse(body, source="fuzz", max_bytes=64 * 1024)
    except InputRejected as e:
        refused(e)
        return
    assert isinstance(root.tag, str)
    event("parsed")


@fuzz
@given(st.binary(max_size=300))
def test_xmlsafe_takes_any_bytes(body: bytes) -> None:
    _xmlsafe(body)


@fuzz
@given(documents())
def test_xmlsafe_takes_any_document(body: bytes) -> None:
    _xmlsafe(body)


# -- adapters/filedrop.py: files_listed_in_record ---------------------------------------------------
@st.composite
def records_listing_files(draw: st.DrawFn) -> bytes:
    """A record listing dossier files, as attributes or children, with random names, digests and sizes."""
    files = []
    for _ in range(draw(st.integers(1, 3))):
        tag = draw(st.sampled_from(["File", "DossierFile", "Attachment", "x:File"]))
        fields = draw(st.dictionaries(st.sampled_from(["Name", "FileName", "SHA256", "Sha256", "Size", "name", "size"]),
                                      attr_values, max_size=4))
        if draw(st.booleans()):
            files.append(f"<{tag} xmlns:x='urn:x' " + " ".join(f'{k}="{_escape(v)}"' for k, v in fields.items())
                         + "/>")
        else:
            files.append(f"<{tag} xmlns:x='urn:x'>" + "".join(f"<{k}>{_escape(v)}</{k}>" for k, v in fields.items())
                         + f"</{tag}>")
    return draw(documents(st.just(f"<Record><Dossier>{''.join(files)}</Dossier></Record>"), damage=5))


@fuzz
@given(st.one_of(st.binary(max_size=200), documents(), records_listing_files()))
def test_files_listed_in_record_never_raises(body: bytes) -> None:
    listed = files_listed_in_record(body)
    for f in listed:
        assert f.name and (f.size is None or f.size >= 0)
    event(f"{min(len(listed), 2)} files listed" + (", one with a size" if any(f.size for f in listed) else ""))


# -- adapters/soap/envelope.py, inline.py, inbound's decoding of a request -------------------------
base64_text = st.one_of(st.builds(lambda b: base64.b64encode(b).decode(), st.binary(max_size=60)),
                        st.text(alphabet=string.ascii_letters + string.digits + "+/= \r\n=-_!", max_size=60))


@st.composite
def operations(draw: st.DrawFn) -> str:
    """An operation element of the gateway's SOAP service, with random (sometimes valid) content."""
    op = draw(st.sampled_from(["SubmitCaseRecord", "GetReceipts", "GetNotices", "Ping", "Unknown"]))
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["Record", "Attachment", "RecordXml", "MessageId", "After", "Limit", "Echo",
                                     "other"]))
        if kind in ("Record", "Attachment"):
            if draw(st.booleans()):
                href = draw(st.one_of(st.sampled_from(["cid:root", "cid:a1", "cid:%00", "cid:%ff%fe", "cid:",
                                                       "x", "cid:%C3%28"]), texts.map(lambda t: "cid:" + t)))
                inner = f'<xop:Include xmlns:xop="{XOP}" href="{_escape(href)}"/>'
            else:
                inner = _escape(draw(base64_text))
            parts.append(f'<{kind} name="{_escape(draw(texts))}">{inner}</{kind}>')
        elif kind == "RecordXml":
            parts.append(f"<RecordXml>{''.join(draw(st.lists(elements(2), max_size=2)))}</RecordXml>")
        elif kind == "other":
            parts.append(draw(elements(1)))
        else:
            parts.append(f"<{kind}>{_escape(draw(st.one_of(texts, st.integers().map(str))))}</{kind}>")
    ns = draw(st.sampled_from([TNS, TNS, TNS, "urn:other", ""]))
    return f'<cx:{op} xmlns:cx="{ns}">' + "".join(parts) + f"</cx:{op}>" if ns else f"<{op}>{''.join(parts)}</{op}>"


@st.composite
def envelopes(draw: st.DrawFn) -> bytes:
    version = draw(st.sampled_from([SOAP11, SOAP12, SOAP11, SOAP12, "urn:not-soap"]))
    header = draw(st.sampled_from(["", "<s:Header/>", "<s:Header><x:Security xmlns:x='urn:x'/></s:Header>"]))
    ops = [draw(operations()) for _ in range(draw(st.sampled_from([1, 1, 1, 1, 0, 2])))]
    body = "" if one_in(draw, 10) else f"<s:Body>{''.join(ops)}</s:Body>"
    declared = "" if one_in(draw, 6) else PREFIXES
    return draw(documents(st.just(f'<s:Envelope xmlns:s="{version}"{declared}>{header}{body}</s:Envelope>'),
                          damage=5))


content_types = st.one_of(
    st.sampled_from(["text/xml", "text/xml; charset=GB18030", "application/soap+xml; charset=utf-8",
                     'text/xml; charset="gbk"', "text/xml; charset=big5", ""]),
    st.text(st.characters(max_codepoint=255), max_size=60))  # HTTP headers arrive as latin-1 text


def _decode_request(body: bytes, content_type: str, parts: dict[str, memoryview] | None = None) -> None:
    """What the SOAP endpoint does with a request's bytes before its operation runs: the charset the
    Content-Type names, long base64 runs lifted out, the envelope parsed, each record and file decoded."""
    parts = dict(parts or {})
    # all that SoapInbound._parse reads
    endpoint = SimpleNamespace(channel="fuzz", max_bytes=1 << 20, limits=XML_LIMITS)
    req = SoapInbound._parse(endpoint, envelope.with_declared_charset(body, content_type), parts)  # type: ignore[arg-type]
    for el in req.operation:
        if not isinstance(el.tag, str):
            continue
        local = etree.QName(el).localname
        if local in ("Record", "Attachment"):
            _binary(el, parts, local)
        elif local == "RecordXml":
            for child in el:
                if isinstance(child.tag, str):
                    _standalone(child)


def _soap(body: bytes, content_type: str = "text/xml", parts: dict[str, memoryview] | None = None) -> None:
    try:
        _decode_request(body, content_type, parts)
        event("decoded")
    except SoapFault as f:
        refused(f)
        for version in (SOAP11, SOAP12):  # the refusal is answered as a fault in the caller's version
            envelope.fault(version, f)


@fuzz
@given(st.binary(max_size=300))
def test_soap_envelope_takes_any_bytes(body: bytes) -> None:
    _soap(body)


@fuzz
@given(envelopes(), content_types)
def test_soap_envelope_takes_any_operation(body: bytes, content_type: str) -> None:
    _soap(body, content_type)


@settings(fuzz, max_examples=EXAMPLES // 4)
@given(st.data())
def test_soap_envelope_with_long_inline_base64(data: st.DataObject) -> None:
    """Runs of 64 KiB of base64 or more are lifted out before parsing; wherever they stand."""
    unit = data.draw(st.sampled_from(["QUJD", "QU JD\r\n", "====", "////"]))
    run = unit * (65536 // 4 + data.draw(st.integers(0, 9)))
    where = data.draw(st.sampled_from(["Record", "Attachment", "Echo", "comment", "cdata", "attribute"]))
    wrap = {"comment": f"<!--{run}-->", "cdata": f"<Echo><![CDATA[{run}]]></Echo>",
            "attribute": f'<Echo a="{run}">x</Echo>'}.get(where, f"<{where}>{run}</{where}>")
    op = data.draw(st.sampled_from(["SubmitCaseRecord", "Ping"]))
    body = (f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><{op} xmlns="{TNS}">{wrap}</{op}></s:Body></s:Envelope>'
            ).encode()
    cut = data.draw(st.sampled_from([len(body), len(body) - 30, len(body) // 2]))
    _soap(body[:cut] + data.draw(tails))


# -- adapters/soap/mtom.py --------------------------------------------------------------------------
_bchars = st.text(alphabet=string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=70)
boundaries = st.one_of(st.text(alphabet=string.ascii_letters + string.digits + "'()+_,-./:=? ", min_size=1,
                               max_size=70),
                       st.text(st.characters(max_codepoint=255), min_size=1, max_size=20))


@st.composite
def mtom_requests(draw: st.DrawFn) -> tuple[bytes, str]:
    boundary = draw(st.one_of(_bchars, _bchars, boundaries))
    root_id = draw(st.sampled_from(["root", "<root>", "", "a1"]))
    ctype = f'multipart/related; type="application/xop+xml"; boundary="{boundary}"'
    if draw(st.booleans()):
        ctype += f'; start="<{root_id}>"'
    ctype = draw(st.sampled_from([ctype, ctype.replace('"', ""), "multipart/related", ctype + "; boundary="]))
    delim = b"--" + boundary.encode("latin-1")
    out = [draw(st.sampled_from([b"", b"preamble\r\n"]))]
    for i in range(draw(st.sampled_from([1, 1, 2, 2, 3, 0]))):
        headers = {"Content-ID": draw(st.sampled_from([f"<{root_id}>", "<a1>", "a1", "", f"<{i}>"])),
                   "Content-Type": draw(st.sampled_from(["application/xop+xml; charset=utf-8", "", "text/xml"]))}
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items() if v).encode("latin-1")
        content = draw(st.one_of(envelopes(), st.binary(max_size=60)))
        out.append(delim + b"\r\n" + head + draw(st.sampled_from([b"\r\n"] * 4 + [b"", b"\n"])) + content + b"\r\n")
    out.append(delim + draw(st.sampled_from([b"--\r\n"] * 4 + [b"--", b"", b"\r\n"])))
    body = b"".join(out)
    if one_in(draw, 5):
        body = body[: draw(st.integers(0, len(body)))]
    return body + draw(tails), ctype


def _mtom(body: bytes, content_type: str) -> None:
    try:
        root, root_type, parts = mtom.split(body, content_type)
    except SoapFault as f:
        refused(f)
        return
    assert isinstance(root, bytes) and all(isinstance(v, memoryview) for v in parts.values())
    event(f"split into {min(len(parts), 2)}+ identified parts")
    _soap(root, root_type or content_type, parts)


@fuzz
@given(st.binary(max_size=300), boundaries)
def test_mtom_takes_any_bytes(body: bytes, boundary: str) -> None:
    _mtom(body, f"multipart/related; boundary={boundary}")


@fuzz
@given(mtom_requests())
def test_mtom_takes_any_parts(request: tuple[bytes, str]) -> None:
    _mtom(*request)


# -- adapters/multipart.py --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> FileStore:
    return FileStore(tmp_path_factory.mktemp("fuzz-files"))


@st.composite
def forms(draw: st.DrawFn) -> tuple[bytes, str]:
    """A record and dossier files as form data, sometimes with a wrong name, header, boundary or end."""
    boundary = draw(st.one_of(_bchars, _bchars, _bchars, boundaries))
    quoted = draw(st.booleans())
    ctype = f'multipart/form-data; boundary="{boundary}"' if quoted else f"multipart/form-data; boundary={boundary}"
    ctype = draw(st.sampled_from([ctype] * 12 + ["multipart/form-data", ctype + "; charset=utf-8", "text/plain"]))
    delim = b"--" + boundary.encode("latin-1")
    out = [draw(st.sampled_from([b""] * 8 + [b"preamble\r\n", b"\r\n"]))]  # python-multipart refuses a preamble
    for i in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["record"] * 10 + ["other", ""])) if i == 0 else draw(
            st.sampled_from(["file"] * 10 + ["record", "other"]))
        filename = draw(st.one_of(st.sampled_from(["a.pdf", "案卷.pdf", "x.xml"]), texts,
                                  st.sampled_from([None, '"', "../x", "", "a.pdf"])))
        disp = f'form-data; name="{name}"' + ("" if filename is None else f'; filename="{_escape(filename)}"')
        head = f"Content-Disposition: {disp}\r\n".encode("utf-8", "surrogatepass")
        if draw(st.booleans()):
            head += draw(st.sampled_from([b"Content-Type: application/pdf\r\n", b"Content-Type: \r\n",
                                          b"Content-Type: text/xml; charset=gbk\r\n", b"X: \xff\r\n"]))
        content = draw(st.one_of(st.binary(max_size=80), st.just(record())))
        out.append(delim + b"\r\n" + head + b"\r\n" + content + b"\r\n")
    out.append(delim + draw(st.sampled_from([b"--\r\n"] * 4 + [b"--", b"", b"\r\n"])))
    body = b"".join(out)
    if not one_in(draw, 5):
        return body, ctype
    return body[: draw(st.integers(0, len(body)))] + draw(tails), ctype


def _chunks(body: bytes, cuts: list[int]) -> Iterator[bytes]:
    last = 0
    for c in sorted({min(c, len(body)) for c in cuts}):
        yield body[last:c]
        last = c
    yield body[last:]


def _form(body: bytes, content_type: str, cuts: list[int], store: FileStore) -> None:
    try:
        reader = multipart.FormReader(content_type, store, max_record=4096, max_files=4096, max_file_count=3)
        for chunk in _chunks(body, cuts):
            reader.feed(chunk)
        rec, attachments = reader.finish()
    except multipart.FormError as e:
        assert e.status in (400, 413)
        refused(e)
        return
    assert len(rec) <= 4096 and len(attachments) <= 3
    for a in attachments:
        assert store.has(a.sha256) and a.name
    event(f"read: a record and {len(attachments)} files")


@fuzz
@given(st.binary(max_size=300), st.one_of(boundaries.map(lambda b: f"multipart/form-data; boundary={b}"),
                                            content_types), st.lists(st.integers(0, 300), max_size=3))
def test_multipart_takes_any_bytes(files: FileStore, body: bytes, content_type: str, cuts: list[int]) -> None:
    _form(body, content_type, cuts, files)


@fuzz
@given(forms(), st.lists(st.integers(0, 2000), max_size=4))
def test_multipart_takes_any_parts(files: FileStore, form: tuple[bytes, str], cuts: list[int]) -> None:
    _form(*form, cuts, files)


# -- gateway/pipeline.py: parse, map, validate, rules, route, map out ------------------------------
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    """The pipeline of a node with the standard's own channel and the police's legacy (GB18030) one."""
    data = base_config(tmp_path_factory.mktemp("fuzz-pipeline") / "data", max_message_bytes=64 * 1024)
    data["agencies"][0]["inbound"].append({"name": "police-legacy", "adapter": "memory", "mapping": "police"})
    gw = Gateway(parse_config(data))
    gw.build()
    return gw


SAMPLES = Path(__file__).resolve().parent.parent / "mappings" / "police" / "samples" / "valid"


@st.composite
def mutated(draw: st.DrawFn, original: bytes) -> bytes:
    """A real record with a few elements' text, attributes or presence changed at random."""
    root = etree.fromstring(original)
    for _ in range(draw(st.integers(1, 3))):
        nodes = [e for e in root.iter() if isinstance(e.tag, str)]
        el = nodes[draw(st.integers(0, len(nodes) - 1))]
        op = draw(st.sampled_from([0, 0, 0, 0, 3, 3, 1, 2, 4]))  # mostly a value changed, the structure kept
        value = draw(st.one_of(st.sampled_from(["2026-02-30", "2026-01-01", "20261301", "20260101", "00", "01", "99",
                                                "晋", "-", "PROC", "COURT", "p1", "p2"]), attr_values))
        value = "".join(c for c in value if c in "\t\n\r" or (c >= " " and c not in "\ufffe\uffff"))
        if op == 0:
            el.text = value
        elif op == 1 and el is not root:
            el.getparent().remove(el)  # type: ignore[union-attr]
        elif op == 2 and el is not root:
            el.addnext(etree.fromstring(etree.tostring(el)))
        elif op == 3:
            el.set(draw(st.sampled_from(["id", "BBH", "DW", "version", "agency"])), value)
        else:
            el.append(etree.Element(draw(names)))
    encoding = draw(st.sampled_from(["UTF-8", "GB18030"]))
    return etree.tostring(root, xml_declaration=True, encoding=encoding) + draw(st.sampled_from([b"", b"\n"]))


def _pipeline(gw: Gateway, channel: str, body: bytes) -> None:
    assert gw.pipeline is not None
    rec = InboundRecord(channel=channel, sender="POLICE", body=body)
    ctx = Context(rec, "fuzz-message", "0" * 64, f"channel {channel}", gw.pipeline.inbound_packs[channel])
    try:
        for step in gw.pipeline.steps:
            step(ctx)
    except Rejected:
        assert ctx.problems
        for p in ctx.problems:
            assert p.rule and p.message, p
        etree.tostring(notice.defect_notice(ctx.message_id, "POLICE", ctx.problems, envelope=ctx.envelope))
        event(f"refused at {ctx.problems[0].rule.split('.')[0]}")
        return
    except InputRejected as e:
        refused(e)
        return
    except GatewayError as e:  # a configuration problem met on the way, said in words
        assert str(e).strip()
        return
    assert ctx.destinations and set(ctx.outbound) == set(ctx.destinations)
    event("accepted")


@fuzz
@given(st.one_of(st.binary(max_size=200), documents()))
def test_pipeline_takes_any_bytes(gateway: Gateway, body: bytes) -> None:
    _pipeline(gateway, "police-in", body)


@fuzz
@given(st.data())
def test_pipeline_takes_mutated_standard_records(gateway: Gateway, data: st.DataObject) -> None:
    original = record(case=data.draw(st.sampled_from(["C2026-0001", "案-1"])), stage="trial",
                      action=data.draw(st.sampled_from(["indictment", "judgment", "transfer-for-prosecution"])))
    _pipeline(gateway, "police-in", data.draw(mutated(original)))


@fuzz
@given(st.data())
def test_pipeline_takes_mutated_legacy_records(gateway: Gateway, data: st.DataObject) -> None:
    sample = data.draw(st.sampled_from(sorted(SAMPLES.glob("*.xml"))))
    _pipeline(gateway, "police-legacy", data.draw(mutated(sample.read_bytes())))
