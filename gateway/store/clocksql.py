"""The clocks' statements, written once with `?` and turned into psycopg's `%s` for PostgreSQL.

Both backends run the same text; only how they execute it (a writer thread, an async writer
task) differs. `set_clock` builds the UPDATE for the values the keeper decided.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from gateway.audit.chain import AuditEvent
from gateway.clockkeeper import CLOCK_COLUMNS, ClockRow, Update
from gateway.model import MessageStatus, sha256_hex
from gateway.store.rows import NewDelivery, NewMessage

GATEWAY = "GATEWAY"  # the sender of what the gateway itself says: time-limit warnings

COLUMNS = ", ".join((*CLOCK_COLUMNS, "stop_action"))
_OPEN = "state IN ('pending','running')"


@dataclass(frozen=True)
class ClockStatements:
    # a clock waiting for its delivery, its last day counted from the day the record came in; its period
    # is the case's next one of that limit
    insert: str = ("INSERT INTO clocks (id, case_number, limit_id, terms, agency, message_id, period, state, "
                   "created_at, basis_day, last_day, due_at, warn_at, next_warn_at) "
                   "SELECT ?, ?, ?, ?, ?, ?, 1 + (SELECT count(*) FROM clocks WHERE case_number = ? AND limit_id = ?), "
                   "'pending', ?, ?, ?, ?, ?, ?")
    # the clocks waiting for this delivery run from now, with no read: delivered the day they were counted
    # from, their last day stands; delivered on another day, the scanner counts it again at once
    start: str = ("UPDATE clocks SET state = 'running', started_at = ?, "
                  "last_day = CASE WHEN basis_day = ? THEN last_day END, "
                  "due_at = CASE WHEN basis_day = ? THEN due_at END, "
                  "warn_at = CASE WHEN basis_day = ? THEN warn_at END, "
                  "next_warn_at = CASE WHEN basis_day = ? THEN next_warn_at ELSE ? END "
                  "WHERE message_id = ? AND agency = ? AND state = 'pending'")
    # an answer stops the sender's open clocks of these limits for its case (limit ids appended)
    stop: str = (f"UPDATE clocks SET state = 'stopped', stopped_at = ?, stop_message = ?, stop_action = ? "
                 f"WHERE case_number = ? AND agency = ? AND {_OPEN} AND limit_id IN ")
    stop_returning: str = " RETURNING id, terms, agency, case_number, due_at, last_day"
    # PostgreSQL sends the stop before it knows whether the record is a resend: a resend stops nothing
    stop_unless_resent: str = (" AND NOT EXISTS (SELECT 1 FROM messages WHERE sender = ? "
                               "AND (sender_message_id = ? OR content_hash = ?))")
    # the running clocks a record of their responsible agency may extend
    running_of_case: str = ("SELECT id, terms, agency, case_number, started_at, extended FROM clocks "
                            "WHERE case_number = ? AND agency = ? AND state = 'running'")
    earlier: str = "SELECT count(*) FROM clocks WHERE case_number = ? AND limit_id = ?"
    due: str = (f"SELECT {COLUMNS} FROM clocks WHERE state = 'running' AND next_warn_at IS NOT NULL "
                "AND next_warn_at <= ? ORDER BY next_warn_at LIMIT ?")
    claim: str = ("INSERT INTO clock_warnings (clock_id, kind, issued_at, node) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT DO NOTHING")
    still_running: str = "SELECT state FROM clocks WHERE id = ?"
    next_warning: str = "UPDATE clocks SET next_warn_at = ? WHERE id = ?"
    blob: str = ("INSERT INTO blobs (sha256, size, data, refs) VALUES (?, ?, ?, 1) "
                 "ON CONFLICT (sha256) DO UPDATE SET refs = blobs.refs + 1")
    # gauges: running clocks per agency and limit, overdue and approaching
    counts: str = ("SELECT agency, limit_id, "
                   "SUM(CASE WHEN due_at <= ? THEN 1 ELSE 0 END), "
                   "SUM(CASE WHEN due_at > ? AND warn_at <= ? THEN 1 ELSE 0 END) "
                   "FROM clocks WHERE state = 'running' AND due_at IS NOT NULL AND warn_at <= ? "
                   "GROUP BY agency, limit_id")
    # the statistics' time-limit figures per responsible agency: answered on time and answered late in a
    # window (by the day of the answer), and overdue now (running past their last day: a live count)
    figures: str = ("SELECT agency, "
                    "SUM(CASE WHEN state = 'stopped' AND late_days IS NULL THEN 1 ELSE 0 END), "
                    "SUM(CASE WHEN state = 'stopped' AND late_days IS NOT NULL THEN 1 ELSE 0 END), "
                    "SUM(CASE WHEN state = 'running' THEN 1 ELSE 0 END) "
                    "FROM clocks WHERE (state = 'stopped' AND stopped_at >= ? AND stopped_at < ?) "
                    "OR (state = 'running' AND due_at <= ?) GROUP BY agency")


SQLITE = ClockStatements()
POSTGRES = ClockStatements(**{f.name: getattr(SQLITE, f.name).replace("?", "%s") for f in fields(ClockStatements)})


def warning_message(clock: ClockRow, kind: str, notices: list[tuple[str, bytes, str]], event: AuditEvent,
                    now: float) -> tuple[NewMessage, list[NewDelivery], dict[str, bytes]]:
    """A warning as a message the gateway itself sends (its id is the log event's): one delivery per
    recipient, each with an Idempotency-Key of its own, never the starting record's. Its
    sender_message_id (clock:kind) is unique for the sender GATEWAY: the database refuses a second."""
    blobs = {sha256_hex(body): body for _, body, _ in notices}
    deliveries = [NewDelivery(dest, sha256_hex(body), reason=f"time-limit {kind} notice", file_name=name)
                  for dest, body, name in notices]
    first = deliveries[0].body_hash if deliveries else sha256_hex(b"")
    m = NewMessage(event.message_id or "", GATEWAY, "time-limits", f"{clock.id}:{kind}", first, "", clock.case_number,
                   "", f"time-limit-{kind}", MessageStatus.ACCEPTED, (), now, None, None,
                   {"clock": clock.id, "kind": kind, "limit": clock.terms, "starting_message": clock.message_id,
                    "notified": [d.destination for d in deliveries]})
    return m, deliveries, blobs


def set_clock(u: Update, mark: str) -> tuple[str, tuple[Any, ...]]:
    """UPDATE of one clock's values (names from the keeper, never from input)."""
    keys = [k for k in u.values if not k.startswith("_")]
    sql = f"UPDATE clocks SET {', '.join(f'{k} = {mark}' for k in keys)} WHERE id = {mark}"
    return sql, (*(u.values[k] for k in keys), u.id)


def in_list(n: int, mark: str) -> str:
    return "(" + ", ".join([mark] * n) + ")"


def listing(state: str | None, agency: str | None, case: str | None, now: float, after: str | None, limit: int,
            mark: str) -> tuple[str, list[Any]]:
    """A page of clocks for the API: running, approaching, overdue or stopped; keyset paging by id."""
    cond: list[str] = []
    args: list[Any] = []
    if state == "overdue":
        cond.append(f"state = 'running' AND due_at <= {mark}")
        args.append(now)
    elif state == "approaching":
        cond.append(f"state = 'running' AND warn_at <= {mark} AND due_at > {mark}")
        args += [now, now]
    elif state in ("running", "pending", "stopped"):
        cond.append(f"state = {mark}")
        args.append(state)
    for col, v in (("agency", agency), ("case_number", case)):
        if v is not None:
            cond.append(f"{col} = {mark}")
            args.append(v)
    if after:
        cond.append(f"id > {mark}")
        args.append(after)
    where = f" WHERE {' AND '.join(cond)}" if cond else ""
    args.append(limit)
    return f"SELECT {COLUMNS} FROM clocks{where} ORDER BY id LIMIT {mark}", args


