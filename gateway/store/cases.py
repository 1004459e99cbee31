"""The case timeline's values, the same for both backends: what a new record writes, and how the
rows read back are put together.

A record is on its case's timeline from the transaction that stores it (blocked records too,
with the rules that blocked them). It is *answered* by the first later accepted record of the
same case whose sender is one of its receivers; that answering record's id and received time are
kept on it, in the answering record's own transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from gateway.model import MessageStatus
from gateway.store.rows import CaseEntryRow, NewMessage


def answer_values(m: NewMessage) -> tuple[object, ...] | None:
    """The arguments of `answer_case` for a new record; None when it answers nothing (blocked)."""
    if m.timeline is None or not m.case_number or m.status != MessageStatus.ACCEPTED:
        return None
    return (m.message_id, m.received_at, m.case_number, m.sender)


def entry_values(m: NewMessage) -> tuple[object, ...] | None:
    """The arguments of `insert_case_entry`; None when the record is on no timeline."""
    t = m.timeline
    if t is None or not m.case_number:
        return None
    return (m.message_id, m.case_number, m.received_at, m.sender, m.stage, m.action, str(m.status),
            json.dumps(list(t.receivers), ensure_ascii=False), json.dumps(list(t.rules), ensure_ascii=False),
            json.dumps([list(d) for d in t.documents], ensure_ascii=False), t.files, t.file_bytes)


def receiver_values(m: NewMessage) -> list[tuple[object, ...]]:
    """Rows of `insert_case_receiver`: one per receiver of an accepted record (a blocked record
    reached no one, so it has no delivery to confirm and nothing a receiver could answer)."""
    t = m.timeline
    if t is None or not m.case_number or m.status != MessageStatus.ACCEPTED:
        return []
    return [(m.message_id, r) for r in dict.fromkeys(t.receivers)]


def assemble(entries: Iterable[Sequence[Any]], receivers: Iterable[Sequence[Any]]) -> list[CaseEntryRow]:
    """Timeline rows (in their order) with each receiver's delivered time."""
    delivered: dict[str, dict[str, float | None]] = {}
    for message_id, receiver, at in receivers:
        delivered.setdefault(message_id, {})[receiver] = at
    out = []
    for r in entries:
        row = CaseEntryRow.from_db(r)
        times = delivered.get(row.message_id, {})
        out.append(replace(row, delivered={x: times.get(x) for x in row.receivers} if times else {}))
    return out
