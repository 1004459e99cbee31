"""What a drop's listing and records say: which records are complete, which dossier files a record lists.

Completeness is judged over polls, never by age: a done-file, the sender's rename from a temporary
name, or size and mtime unchanged across two polls (a copied file keeps its old mtime, CAMEL-19378).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from gateway import xmlsafe
from gateway.errors import InputRejected

if TYPE_CHECKING:
    from adapters.filedrop import DropInboundSettings, Entry


# -- completeness ------------------------------------------------------------------------------------------
class Completeness:
    """Decides which records in a listing are complete, remembering what the previous poll saw."""

    def __init__(self, s: DropInboundSettings) -> None:
        self.s = s
        self._seen: dict[str, tuple[int, float, float]] = {}  # name -> (size, mtime, unchanged since)
        self._missing_since: dict[str, float] = {}

    def is_record(self, name: str) -> bool:
        return fnmatch.fnmatchcase(name, self.s.pattern) and not self._ignored(name)

    def _ignored(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, g) for g in self.s.ignore) or name.endswith(self.s.done_suffix)

    def attachments_of(self, record: str, names: list[str]) -> list[str]:
        if not self.s.attachments:
            return []
        stem = record.rsplit(".", 1)[0]
        glob = self.s.attachments.replace("{stem}", _glob_escape(stem)).replace(
            "{name}", _glob_escape(record)
        )
        return sorted(
            n
            for n in names
            if n != record and fnmatch.fnmatchcase(n, glob) and not self.is_record(n) and not self._ignored(n)
        )

    def observe(self, entries: dict[str, Entry], now: float) -> None:
        for name in list(self._seen):
            if name not in entries:
                del self._seen[name]
        for name, e in entries.items():
            prev = self._seen.get(name)
            if prev is None or (prev[0], prev[1]) != (e.size, e.mtime):
                self._seen[name] = (e.size, e.mtime, now)

    def _stable(self, name: str, now: float) -> bool:
        """Unchanged since an earlier poll (and stable_seconds): a copied file's old mtime proves nothing."""
        since = self._seen[name][2]
        return since < now and now - since >= self.s.stable_seconds

    def ready(self, entries: dict[str, Entry], now: float) -> list[tuple[str, list[str]]]:
        """(record, its dossier files) for every complete record; call after `observe`."""
        names = list(entries)
        out = []
        for name in sorted(n for n in names if self.is_record(n)):
            atts = self.attachments_of(name, names)
            if self.s.complete_when == "done-file" and name + self.s.done_suffix not in entries:
                continue
            if self.s.complete_when == "stable" and not all(self._stable(n, now) for n in [name, *atts]):
                continue
            out.append((name, atts))
        return out

    def waited_too_long(self, record: str, now: float) -> bool:
        since = self._missing_since.setdefault(record, now)
        return now - since >= self.s.attachment_wait

    def found(self, record: str) -> None:
        self._missing_since.pop(record, None)


def _glob_escape(s: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", s)


# -- what a record says about its dossier ---------------------------------------------------------------
@dataclass(frozen=True)
class DeclaredFile:
    name: str
    sha256: str | None = None
    size: int | None = None


DeclaredFiles = Callable[[bytes], list[DeclaredFile]]

_FILE_ELEMENTS = ("File", "DossierFile", "Attachment")


def _byte_count(text: str | None) -> int | None:
    """A size written in ASCII digits, else none: '²' and '٣' pass str.isdigit() but int() refuses them,
    as it does numbers of over 4300 digits (no file is that large, so such a size is no size either)."""
    if not text or not text.isascii() or not text.isdigit() or len(text) > 4300:
        return None
    return int(text)


def files_listed_in_record(body: bytes) -> list[DeclaredFile]:
    """Dossier files a record lists: elements File/DossierFile/Attachment with a name and a SHA-256.

    Read by local name as attribute or child (Name/FileName, SHA256/Sha256, Size), so both the
    shared standard and legacy formats are understood. A record that does not parse lists nothing
    here; the pipeline then rejects it with the line and rule.
    """
    try:
        tree = xmlsafe.parse(body, source="record")
    except InputRejected:
        return []
    found = []
    for el in tree.iter():
        if not isinstance(el.tag, str) or etree.QName(el).localname not in _FILE_ELEMENTS:
            continue
        fields = {
            etree.QName(c).localname.lower(): (c.text or "").strip() for c in el if isinstance(c.tag, str)
        }
        fields.update({k.lower(): v for k, v in el.attrib.items()})
        name = fields.get("name") or fields.get("filename")
        if not name:
            continue
        digest = (fields.get("sha256") or "").lower() or None
        size = fields.get("size")
        found.append(
            DeclaredFile(posixpath.basename(name), digest, _byte_count(size))
        )
    return found
