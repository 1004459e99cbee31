"""The statements SQLite and PostgreSQL agree on, written once.

They are written with `?` placeholders (sqlite3's) and turned into psycopg's `%s` once, at
import (`POSTGRES`), so both backends run the same text. What the dialects say differently
stays in the backend's own module: leasing (FOR UPDATE SKIP LOCKED), row locks, upserts,
`= ANY(array)` against `IN (?, ...)`, advisory locks, RETURNING where SQLite counts rows.

The SELECT lists of reads are built from the row types' fields (`rows.columns`), so a row and
its query cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from gateway.model import DeliveryState
from gateway.store.rows import ApiKeyRow, AttemptRow, Checkpoint, DeliveryRow, MessageRow, columns

_NEW_MESSAGE = ("id, sender, channel, sender_message_id, content_hash, canonical_hash, case_number, stage, action, "
                "status, reasons, received_at, file_name, operation, summary, receipt, node")
_NEW_DELIVERY = ("id, message_id, destination, case_number, body_hash, content_type, file_name, state, reason, "
                 "attempts, created_at, updated_at, next_attempt_at")
CASE_ENTRY_COLUMNS = ("message_id, case_number, received_at, sender, stage, action, status, receivers, rules, "
                      "documents, files, file_bytes, answered_by, answered_at")  # rows.CaseEntryRow
_NEW_CASE_ENTRY = CASE_ENTRY_COLUMNS.removesuffix(", answered_by, answered_at")
_ENTRY = "seq, time, node, actor, action, message_id, case_number, payload_hash, detail, prev_hash, entry_hash"


_UNFINISHED = frozenset(str(s) for s in DeliveryState) - {"delivered"}  # the states a literal may name


@dataclass(frozen=True)
class Statements:
    """One dialect's text of the shared statements (`mark` is its placeholder)."""

    mark: str = "?"
    # -- intake
    get_blob: str = "SELECT data FROM blobs WHERE sha256 = ?"
    insert_message: str = f"INSERT INTO messages ({_NEW_MESSAGE}) VALUES ({', '.join('?' * 17)})"
    insert_delivery: str = (f"INSERT INTO deliveries ({_NEW_DELIVERY}) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, 0, ?, ?, ?)")
    # -- delivery
    # the rows a write checks first (PostgreSQL adds FOR UPDATE: nodes write beside each other)
    lease_check: str = "SELECT lease_token, state, seq FROM deliveries WHERE id = ?"
    replay_source: str = ("SELECT message_id, destination, case_number, content_type, file_name, state "
                          "FROM deliveries WHERE id = ?")
    discard_source: str = "SELECT message_id, destination, case_number, body_hash, state FROM deliveries WHERE id = ?"
    take_lease: str = ("UPDATE deliveries SET state = 'in_flight', lease_owner = ?, lease_token = ?, "
                       "lease_expires_at = ?, attempts = attempts + 1, updated_at = ?, reason = ? WHERE id = ?")
    insert_attempt: str = ("INSERT INTO attempts (delivery_id, attempt, node, started_at, ended_at, outcome, detail) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?)")
    end_attempt: str = ("UPDATE deliveries SET state = ?, reason = ?, updated_at = ?, next_attempt_at = ?, "
                        "lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, delivered_at = ?, "
                        "receipt = ? WHERE id = ?")
    hold_case: str = ("UPDATE deliveries SET reason = ? WHERE destination = ? AND case_number = ? AND seq > ? "
                      "AND state IN ('queued','retrying')")
    # -- operators
    get_message: str = f"SELECT {columns(MessageRow)} FROM messages WHERE id = ?"
    get_deliveries: str = f"SELECT {columns(DeliveryRow)} FROM deliveries WHERE message_id = ? ORDER BY seq"
    get_delivery: str = f"SELECT {columns(DeliveryRow)} FROM deliveries WHERE id = ?"
    get_attempts: str = f"SELECT {columns(AttemptRow)} FROM attempts WHERE delivery_id = ? ORDER BY id"
    # QueueDepth rows from the counts kept at commit time (migration 0004), never a scan of the history
    queue_depths: str = ("SELECT destination, state, count, oldest FROM delivery_counts WHERE count > 0 "
                         "ORDER BY destination, state")
    replay_body_held: str = ("SELECT 1 FROM messages WHERE id = ? AND ? IN (content_hash, canonical_hash) UNION ALL "
                             "SELECT 1 FROM deliveries WHERE message_id = ? AND body_hash = ?")
    blob_ref: str = "UPDATE blobs SET refs = refs + 1 WHERE sha256 = ?"
    blob_exists: str = "SELECT 1 FROM blobs WHERE sha256 = ?"
    insert_replay: str = (f"INSERT INTO deliveries ({_NEW_DELIVERY}, replay_of) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, 0, ?, ?, ?, ?)")
    discard: str = "UPDATE deliveries SET state = 'discarded', reason = ?, updated_at = ? WHERE id = ?"
    unhold_case: str = ("UPDATE deliveries SET reason = 'queued for delivery' WHERE destination = ? "
                        "AND case_number = ? AND state IN ('queued','retrying') AND reason LIKE 'held:%'")
    # -- retention
    prune_candidates: str = ("SELECT id, case_number, content_hash, canonical_hash, summary, received_at FROM messages "
                             "WHERE payload_pruned_at IS NULL AND received_at < ? AND (received_at, id) > (?, ?) "
                             "ORDER BY received_at, id LIMIT ?")
    blob_refs: str = "SELECT refs, size FROM blobs WHERE sha256 = ?"
    blob_unref: str = "UPDATE blobs SET refs = refs - 1 WHERE sha256 = ?"
    blob_delete: str = "DELETE FROM blobs WHERE sha256 = ?"
    file_unref: str = ("UPDATE files SET refs = refs - 1, unused_since = CASE WHEN refs <= 1 THEN ? END "
                       "WHERE sha256 = ? RETURNING refs")
    file_removals: str = "SELECT sha256 FROM files WHERE refs <= 0 ORDER BY unused_since LIMIT ?"
    # -- the case timeline (written with the record and its delivery, read by case number)
    insert_case_entry: str = f"INSERT INTO case_timeline ({_NEW_CASE_ENTRY}) VALUES ({', '.join('?' * 12)})"
    insert_case_receiver: str = "INSERT INTO case_receivers (message_id, receiver) VALUES (?, ?)"
    # a record from a receiver of earlier records of its case answers those not answered yet
    answer_case: str = ("UPDATE case_timeline SET answered_by = ?, answered_at = ? WHERE case_number = ? "
                        "AND answered_by IS NULL AND status = 'accepted' AND EXISTS (SELECT 1 FROM case_receivers r "
                        "WHERE r.message_id = case_timeline.message_id AND r.receiver = ?)")
    case_delivered: str = ("UPDATE case_receivers SET delivered_at = ? WHERE message_id = ? AND receiver = ? "
                           "AND delivered_at IS NULL")
    case_entries: str = (f"SELECT {CASE_ENTRY_COLUMNS} FROM case_timeline WHERE case_number = ? "
                         "ORDER BY received_at, message_id")
    case_receivers: str = ("SELECT r.message_id, r.receiver, r.delivered_at FROM case_timeline t "
                           "JOIN case_receivers r ON r.message_id = t.message_id WHERE t.case_number = ?")
    # -- exchange log, keys, drop marks
    insert_entries: str = f"INSERT INTO audit_log ({_ENTRY}) VALUES ({', '.join('?' * 11)})"
    checkpoints: str = f"SELECT {columns(Checkpoint)} FROM checkpoints ORDER BY seq"
    checkpoint_page: str = f"SELECT {columns(Checkpoint)} FROM checkpoints WHERE seq > ? ORDER BY seq LIMIT ?"
    last_checkpoint: str = f"SELECT {columns(Checkpoint)} FROM checkpoints ORDER BY seq DESC LIMIT 1"
    # the action named as the partial index audit_conformance_runs (migration 0008) names it
    last_conformance_run: str = (f"SELECT {_ENTRY} FROM audit_log WHERE action = 'conformance-run' AND actor = ? "
                                 "ORDER BY seq DESC LIMIT 1")
    find_api_key: str = f"SELECT {columns(ApiKeyRow)} FROM api_keys WHERE key_hash = ?"
    file_seen: str = "SELECT message_id FROM ingested_files WHERE channel = ? AND fingerprint = ?"

    def list_deliveries(
        self, state: str | None, destination: str | None, after: str | None, limit: int
    ) -> tuple[str, list[Any]]:
        """A page of deliveries in queue order (keyset paging by id), at most 1,000."""
        m = self.mark
        select = f"SELECT {columns(DeliveryRow)} FROM deliveries WHERE true"
        if state in _UNFINISHED:
            select += self._unfinished(str(state))
            state = None
        return _filtered(select, [], [
            (state, f"state = {m}"), (destination, f"destination = {m}"),
            (after, f"seq > (SELECT seq FROM deliveries WHERE id = {m})"),
        ], f"ORDER BY seq LIMIT {m}", min(limit, 1000))

    def oldest_in_state(self, state: str) -> str:
        """The oldest of a destination's deliveries in a state they leave again (waiting, in flight, dead)."""
        return (f"SELECT created_at FROM deliveries WHERE true{self._unfinished(state)} AND destination = {self.mark} "
                "ORDER BY seq LIMIT 1")

    def _unfinished(self, state: str) -> str:
        """` AND state = '<state>'` for a known state other than delivered, as a literal, so that the planner
        may read it through the partial index deliveries_unfinished (PostgreSQL proves the index's
        condition from the literal; SQLite needs the condition's own words, so they are added)."""
        assert state in _UNFINISHED
        return f" AND state = '{state}'" + (" AND state <> 'delivered'" if self.mark == "?" else "")

    def audit_entries(
        self, case_number: str | None, message_id: str | None, agency: str | None, since: str | None,
        until: str | None, after_seq: int, limit: int,
    ) -> tuple[str, list[Any]]:
        m = self.mark
        # Time never goes backwards along the chain, so a time range is a range of seq: its ends are
        # found through the time index and the page is then read in seq order (filtering by time
        # itself would gather and sort every entry of the range, however long).
        first_at = f"(SELECT seq FROM audit_log WHERE time >= {m} ORDER BY time, seq LIMIT 1)"
        never = 9223372036854775807
        # one lower bound (SQLite walks the key from one bound only), none without a cursor (PostgreSQL
        # would otherwise intersect a case's few entries with every entry of the log)
        first: list[Any] = [after_seq] if after_seq else []
        lower = f" AND seq > {m}" if after_seq else ""
        if since:
            lower = f" AND seq > (SELECT max(column1) FROM (VALUES ({m}), (coalesce({first_at}, {never}) - 1)) AS b)"
            first = [after_seq, since]
        sql, args = _filtered(f"SELECT {_ENTRY} FROM audit_log WHERE true{lower}", first, [
            (case_number, f"case_number = {m}"), (message_id, f"message_id = {m}"),
            (until, f"seq < coalesce({first_at}, {never})"),
        ], f"ORDER BY seq LIMIT {m}", limit)
        if agency:  # its own entries, entries naming it, and every entry of its messages (checked row by
            # row along seq, so a page stops at `limit` matches instead of gathering or hashing them all first)
            where = (f" AND (actor = {m} OR detail LIKE {m}"
                     f" OR (SELECT sender FROM messages WHERE id = audit_log.message_id) = {m})")
            head, order = sql.rsplit(" ORDER BY ", 1)
            sql = f"{head}{where} ORDER BY {order}"
            args[-1:-1] = [agency, f'%"{agency}"%', agency]
        return sql, args


def _filtered(select: str, args: list[Any], conditions: list[tuple[Any, str]], tail: str,
              last: Any) -> tuple[str, list[Any]]:
    """`select` with ` AND condition` for each condition whose value is given, then `tail`; the
    arguments in the same order, `last` (the tail's) at the end."""
    sql = select
    for value, condition in conditions:
        if value:
            sql += f" AND {condition}"
            args.append(value)
    return f"{sql} {tail}", [*args, last]


def _pyformat(sql: str) -> str:
    """sqlite3's `?` to psycopg's `%s` (a literal `%` doubled); no statement has a `?` in a string."""
    return sql.replace("%", "%%").replace("?", "%s")


SQLITE = Statements()
POSTGRES = replace(SQLITE, **{f.name: _pyformat(getattr(SQLITE, f.name)) for f in fields(SQLITE)})
