"""Which encoding an XML file is written in, told from its first bytes and its declaration.

XML 1.0 Appendix F: a byte order mark (UTF-8, UTF-16 LE/BE), else the first characters `<?xml`
as they look in UTF-16 LE (3C 00 3F 00) or BE (00 3C 00 3F), else ASCII-compatible bytes whose
declaration names the encoding (UTF-8 when it names none). The gateway reads and writes the
encodings in SUPPORTED only; a pack's `encoding:` is checked against the same list, so it never
writes a file it would itself refuse. A declaration that contradicts the bytes is refused, naming
both, rather than the text being mangled.

`prepare` returns the bytes libxml2 is given: UTF-16 is decoded here and handed on as UTF-8 (same
characters, same lines), so the byte scans before parsing (DOCTYPE, xmllimits) see real markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from gateway.errors import InputRejected

# name as written in a declaration (lower case) -> (name the gateway writes, Python codec used to check it)
SUPPORTED: dict[str, tuple[str, str]] = {
    "utf-8": ("UTF-8", "utf-8"),
    "utf-16": ("UTF-16", "utf-16"),
    "utf-16le": ("UTF-16LE", "utf-16-le"),
    "utf-16be": ("UTF-16BE", "utf-16-be"),
    "gb18030": ("GB18030", "gb18030"),
    "gbk": ("GBK", "gbk"),
    "gb2312": ("GB2312", "gb18030"),  # GB2312 files often hold GBK characters; libxml2 (iconv) reads those too
    "big5": ("Big5", "big5"),
}
# spellings read as one of the above (ASCII is a subset of UTF-8)
ALIASES = {"utf8": "utf-8", "us-ascii": "utf-8", "ascii": "utf-8", "utf16": "utf-16", "cp936": "gbk",
           "big-5": "big5", "cp950": "big5"}
ALLOWED = ", ".join(name for name, _ in SUPPORTED.values())
UTF16 = frozenset({"utf-16", "utf-16le", "utf-16be"})
CHINESE = frozenset({"gb18030", "gbk", "gb2312", "big5"})

_DECL = re.compile(r"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_DECL_BYTES = re.compile(_DECL.pattern.encode())
BOM_UTF8 = b"\xef\xbb\xbf"


def supported(name: str) -> str | None:
    """The canonical key of an encoding name (case-blind, aliases allowed), or None when not supported."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    return key if key in SUPPORTED else None


def canonical(name: str) -> str:
    """The name the gateway writes for a supported encoding (`gb18030` -> `GB18030`)."""
    key = supported(name)
    if key is None:
        raise ValueError(f"'{name}' is not a supported encoding; use one of {ALLOWED}")
    return SUPPORTED[key][0]


@dataclass(frozen=True)
class Detected:
    """What the first bytes say: the family (`utf-8`, `utf-16le`, `utf-16be`, `8-bit`, `ucs-4`) and BOM."""

    family: str
    bom: int  # bytes of byte order mark

    def describe(self) -> tuple[str, str]:
        """(English, Chinese) words for what the bytes are."""
        if self.family == "8-bit":
            return ("8-bit text (ASCII-compatible, such as UTF-8 or GB18030)",
                    "8 位编码文本（与 ASCII 兼容，如 UTF-8、GB18030）")
        name = {"utf-8": "UTF-8", "utf-16le": "UTF-16LE", "utf-16be": "UTF-16BE", "ucs-4": "UCS-4/UTF-32"}[self.family]
        if self.bom:
            return (f"{name} with a byte order mark", f"带字节顺序标记（BOM）的 {name}")
        return (f"{name} without a byte order mark", f"不带字节顺序标记（BOM）的 {name}")


def detect(body: bytes) -> Detected:
    """Appendix F: the encoding family from the first four bytes."""
    head = body[:4]
    if head in (b"\x00\x00\x00\x3c", b"\x3c\x00\x00\x00", b"\x00\x00\xfe\xff", b"\xff\xfe\x00\x00"):
        return Detected("ucs-4", 0)
    if head.startswith(BOM_UTF8):
        return Detected("utf-8", 3)
    if head.startswith(b"\xff\xfe"):
        return Detected("utf-16le", 2)
    if head.startswith(b"\xfe\xff"):
        return Detected("utf-16be", 2)
    if head == b"\x3c\x00\x3f\x00":
        return Detected("utf-16le", 0)
    if head == b"\x00\x3c\x00\x3f":
        return Detected("utf-16be", 0)
    return Detected("8-bit", 0)


def declared_encoding(body: bytes) -> str | None:
    """The encoding an ASCII-compatible file's declaration names, lower case (None: it names none)."""
    m = _DECL_BYTES.match(body[:200])
    return m.group(1).decode("ascii").lower() if m else None


def _refuse(en: str, zh: str, source: str, rule: str = "xml.encoding-mismatch",
            line: int | None = None) -> InputRejected:
    return InputRejected(en, rule=rule, line=line, source=source, message_zh=zh)


def _contradiction(declared: str, found: Detected, source: str) -> InputRejected:
    what_en, what_zh = found.describe()
    return _refuse(f"the XML declaration says '{declared}' but the bytes are {what_en}; the file's real encoding "
                   "differs from what it declares, so it is refused rather than mangled",
                   f"XML 声明的编码为“{declared}”，但文件字节实为{what_zh}；声明与实际编码不符，为免乱码，予以拒收",
                   source)


def unsupported(declared: str, source: str) -> InputRejected:
    return _refuse(f"the XML declaration names the encoding '{declared}', which the gateway does not read; "
                   f"supported: {ALLOWED}",
                   f"XML 声明的编码“{declared}”网关不支持；支持的编码：{ALLOWED}", source, rule="xml.encoding")


def _utf16(body: bytes, found: Detected, source: str) -> bytes:
    codec = "utf-16-le" if found.family == "utf-16le" else "utf-16-be"
    data = body[found.bom:]
    try:
        text = data.decode(codec)
    except UnicodeDecodeError as e:
        line = data[: e.start].decode(codec, "replace").count("\n") + 1
        en, zh = found.describe()
        raise _refuse(f"the file is {en}, but byte {e.start + found.bom} is not valid UTF-16 (an odd number of bytes "
                      "or a broken surrogate pair)",
                      f"文件为{zh}，但第 {e.start + found.bom} 字节不是有效的 UTF-16（字节数为奇数或代理对残缺）",
                      source, line=line) from None
    m = _DECL.match(text[:200])
    declared = m.group(1).lower() if m else None
    key = supported(declared) if declared else None
    if declared is None:
        if not found.bom:  # Appendix F: UTF-16 without a BOM must say so in its declaration
            en, zh = found.describe()
            raise _refuse(f"the bytes are {en}, but the XML declaration names no encoding; a UTF-16 file without a "
                          "byte order mark must declare encoding=\"UTF-16\"",
                          f"文件字节为{zh}，但 XML 声明未写明编码；不带 BOM 的 UTF-16 文件须声明 encoding=\"UTF-16\"",
                          source)
    elif key not in UTF16 or (key != "utf-16" and key != found.family):
        raise _contradiction(declared, found, source)
    return text.encode("utf-8")


def prepare(body: bytes, source: str) -> tuple[bytes, str | None, str | None]:
    """(the bytes libxml2 reads, the encoding to read them in or None for their own declaration, the declared one).

    Raises InputRejected naming the declared encoding and what the bytes are when the two disagree.
    """
    found = detect(body)
    if found.family == "ucs-4":
        raise _refuse("the file is in UCS-4/UTF-32, which the gateway does not read; supported: " + ALLOWED,
                      "文件为 UCS-4/UTF-32 编码，网关不支持；支持的编码：" + ALLOWED, source, rule="xml.encoding")
    if found.family in ("utf-16le", "utf-16be"):
        return _utf16(body, found, source), "utf-8", "utf-16"
    declared = declared_encoding(body[found.bom:])
    if declared is None:
        return body, None, None
    key = supported(declared)
    if key is None:
        raise unsupported(declared, source)
    if found.family == "utf-8" and key != "utf-8":
        raise _contradiction(declared, found, source)
    if key in UTF16:
        raise _contradiction(declared, found, source)
    return body, None, key


def codec(key: str) -> str:
    """The Python codec that checks a supported encoding's bytes."""
    return SUPPORTED[key][1]


# Encodings that hold every character: anything can be written in them. In the others a character of
# text the encoding lacks is written as a character reference, but a name cannot be (XML has no
# escape for names): the writer would make a file no parser reads.
_WHOLE = frozenset({"utf-8", "utf-16", "utf-16le", "utf-16be", "gb18030"})
_STRICT = {"gb2312": "gb2312"}  # what is written must be in the encoding itself, not in a superset


def unwritable(names: Iterable[str], encoding: str) -> str | None:
    """The first of `names` (local names) that `encoding` cannot hold (None: all fit)."""
    key = supported(encoding)
    if key is None or key in _WHOLE:
        return None
    check = _STRICT.get(key, codec(key))
    for name in names:
        try:
            name.encode(check)
        except UnicodeEncodeError:
            return name
    return None


def unwritable_name(tree: etree._Element, encoding: str) -> str | None:
    """The first element or attribute name of `tree` that `encoding` cannot hold (None: all fit)."""
    if supported(encoding) in _WHOLE:
        return None
    return unwritable((etree.QName(n).localname for el in tree.iter(tag=etree.Element)
                       for n in (el.tag, *el.attrib.keys())), encoding)
