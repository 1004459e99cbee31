"""What a committed record or delivery does to the case's clocks, decided without I/O.

Both store backends call these inside the one transaction that commits the record (a stop, an
extension, a clock waiting for its delivery) or the delivery (the start), and write what they
return: so a clock and the exchange log entries about it exist together or not at all. The
counting itself is `lawcalendar`'s; the limits are `timelimits`'.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from gateway.audit.chain import AuditEvent
from gateway.clocksettings import ClockSetup
from gateway.clocktime import Clock, SystemClock
from gateway.lawcalendar import Deadline, deadline, local_date
from gateway.standard import NS

_DOC_TYPES = etree.XPath("c:Documents/c:Document/c:Type/text()", namespaces={"c": NS})

# the columns of a clock row, in this order, as both stores select and the API answers them
CLOCK_COLUMNS = ("id", "case_number", "limit_id", "terms", "agency", "message_id", "period", "state", "created_at",
                 "started_at", "last_day", "due_at", "warn_at", "next_warn_at", "extended", "stopped_at",
                 "stop_message", "late_days")


@dataclass(frozen=True)
class ClockRow:
    """A clock as the store keeps it and the API answers it."""

    id: str
    case_number: str
    limit_id: str
    terms: str
    agency: str
    message_id: str
    period: int
    state: str
    created_at: float
    started_at: float | None
    last_day: str | None
    due_at: float | None
    warn_at: float | None
    next_warn_at: float | None
    extended: str
    stopped_at: float | None
    stop_message: str | None
    late_days: int | None
    stop_action: str | None

    @classmethod
    def from_db(cls, r: Sequence[Any]) -> ClockRow:
        return cls(*r)

    def as_json(self, now: float | None = None) -> dict[str, Any]:
        out = {f: getattr(self, f) for f in self.__dataclass_fields__}
        out["extended"] = json.loads(self.extended or "[]")
        if now is not None and self.state == "running" and self.due_at is not None:
            out["overdue"] = now >= self.due_at
            out["approaching"] = self.warn_at is not None and self.warn_at <= now < self.due_at
        return out


def document_types(tree: etree._Element | None) -> tuple[str, ...]:
    """The legal document types a standard record carries (variants and extensions depend on them)."""
    return () if tree is None else tuple(dict.fromkeys(str(t).strip() for t in _DOC_TYPES(tree)))


@dataclass(frozen=True)
class NewClock:
    """A clock a record starts on its delivery, its last day counted from the day it came in."""

    id: str
    limit_id: str
    terms: str
    agency: str
    basis_day: str
    last_day: str
    due_at: float
    warn_at: float
    warnings: tuple[str, ...] = ()


@dataclass
class RecordPlan:
    """The clock changes one accepted record asks for (the store adds what it reads)."""

    starts: list[NewClock] = field(default_factory=list)  # wait for the delivery to the agency
    stops: list[str] = field(default_factory=list)  # limit ids this answer stops for its sender
    extends: bool = False  # the record may extend a running clock of its case

    def __bool__(self) -> bool:
        return bool(self.starts or self.stops or self.extends)


@dataclass(frozen=True)
class Update:
    """Values to set on one clock row, by id."""

    id: str
    values: dict[str, Any]


class ClockKeeper:
    """Decisions about clocks, for a store: from the limits, the holiday calendar and agency roles."""

    def __init__(self, setup: ClockSetup, roles: Mapping[str, str], node: str = "",
                 clock: Clock | None = None) -> None:
        self.setup = setup
        self.clock: Clock = clock or SystemClock()
        self.limits = setup.limits
        self.roles = dict(roles)
        self.node = node
        # what each action does, looked up once per record instead of walking the limits
        self._starts = {a: self.limits.started_by(a) for x in self.limits.limits for a in x.starts}
        self._stops = {a: self.limits.stopped_by(a) for x in self.limits.limits for a in x.stops}
        exts = [e for x in self.limits.limits for e in (*x.extensions, *(y for v in x.variants for y in v.extensions))]
        self._ext_actions = frozenset(e.action for e in exts if e.action)
        self._ext_documents = frozenset(e.document for e in exts if e.document)
        self._deadlines: dict[tuple[str, dt.date, tuple[int, ...]], Deadline] = {}

    # -- at intake ---------------------------------------------------------------------------------
    def plan(self, message_id: str, action: str, sender: str, destinations: Sequence[str],
             documents: Sequence[str], now: float) -> RecordPlan:
        docs = frozenset(documents)
        plan = RecordPlan()
        for limit in self._starts.get(action, ()):
            variant = next((v for v in limit.variants if v.when.document in docs), None)
            key = f"{limit.id}/{variant.id}" if variant else limit.id
            for dest in destinations:
                if self.roles.get(dest) == limit.responsible:
                    day = local_date(now)
                    d = self._deadline(key, day, ())
                    # one clock per starting record, limit and agency: named by them, no random id to draw
                    plan.starts.append(NewClock(f"{message_id}.{limit.id}.{dest}", limit.id, key, dest,
                                                day.isoformat(), d.last_day.isoformat(), d.due_at,
                                                self.setup.settings.approaching.warn_at(now, d.due_at), d.warnings))
        plan.stops = [limit.id for limit in self._stops.get(action, ())
                      if self.roles.get(sender) == limit.responsible]
        plan.extends = action in self._ext_actions or bool(docs & self._ext_documents)
        return plan

    def bounded(self, limit_id: str) -> bool:
        """Whether a new clock of this limit must count the case's earlier periods (at most max_periods)."""
        return self.limits.get(limit_id).max_periods is not None

    def periods_allowed(self, limit_id: str, earlier: int) -> bool:
        """Whether one more period may start after `earlier` ones (at most max_periods)."""
        mp = self.limits.get(limit_id).max_periods
        return mp is None or earlier < mp


    # -- deadlines -----------------------------------------------------------------------------------
    def _deadline(self, terms_key: str, start_day: dt.date, extended: Sequence[int]) -> Deadline:
        # a last day depends on the day the period began, not the hour: counted once per day and terms
        key = (terms_key, start_day, tuple(extended))
        d = self._deadlines.get(key)
        if d is None:
            terms = self.limits.terms(terms_key)
            parts = [(terms.length.days, terms.length.months)]
            parts += [(terms.extensions[i].by.days, terms.extensions[i].by.months) for i in extended]
            d = self._deadlines[key] = deadline(start_day, parts, terms.limit.custody, self.setup.calendar)
            if len(self._deadlines) > 10_000:
                self._deadlines.clear()
        return d

    def timing(self, terms_key: str, started_at: float, extended: Sequence[int], now: float) -> dict[str, Any]:
        """last_day, due_at, warn_at and next_warn_at of a clock begun at `started_at`."""
        d = self._deadline(terms_key, local_date(started_at), extended)
        warn_at = self.setup.settings.approaching.warn_at(started_at, d.due_at)
        return {"last_day": d.last_day.isoformat(), "due_at": d.due_at, "warn_at": warn_at,
                "next_warn_at": warn_at, "_warnings": d.warnings}

    def calendar_unknown(self, clock_id: str, terms_key: str, agency: str, case: str, message_id: str,
                         last_day: str, warnings: Sequence[str]) -> AuditEvent:
        """A last day the holiday calendar cannot place is counted unmoved, and logged so, never silently."""
        terms = self.limits.terms(terms_key)
        return AuditEvent("clock-calendar-unknown", self.node, message_id, case, "", {
            "clock": clock_id, "limit": terms_key, "name_zh": terms.name.zh, "name_en": terms.name.en,
            "agency": agency, "last_day": last_day, "warnings": list(warnings)})

    def armed(self, clocks: Sequence[ClockRow]) -> tuple[list[Update], list[AuditEvent]]:
        """Running clocks delivered on another day than they came in: their last day counted again from
        the day of delivery."""
        updates, events = [], []
        for c in clocks:
            assert c.started_at is not None
            t = self.timing(c.terms, c.started_at, json.loads(c.extended or "[]"), c.started_at)
            warnings = t.pop("_warnings")
            updates.append(Update(c.id, {**t, "basis_day": local_date(c.started_at).isoformat()}))
            if warnings:
                events.append(self.calendar_unknown(c.id, c.terms, c.agency, c.case_number, c.message_id,
                                                    t["last_day"], warnings))
        return updates, events

    # -- answers and extensions ----------------------------------------------------------------------
    def stopped(self, rows: Sequence[Sequence[Any]], action: str, message_id: str, stopped_at: float
                ) -> tuple[list[Update], list[AuditEvent]]:
        """Clocks (id, terms, agency, case, due_at, last_day) this answer stopped: a late one is logged with
        the days it is late."""
        updates, events = [], []
        for cid, terms_key, agency, case, due_at, last_day in rows:
            late = 0
            if due_at is not None and stopped_at >= due_at:
                late = (local_date(stopped_at) - dt.date.fromisoformat(last_day)).days
            updates.append(Update(cid, {"late_days": late or None}))
            detail = {"clock": cid, "limit": terms_key, "agency": agency, "answer": action,
                      "answer_message": message_id, "last_day": last_day}
            if late:  # an answer in time is in the clocks table; a late one is logged with its days
                detail |= {"days_late": late, "note_zh": f"逾期{late}日作出答复",
                           "note_en": f"answered {late} day{'s' if late != 1 else ''} late"}
                events.append(AuditEvent("clock-answered-late", agency, message_id, case, "", detail))
            if action in self.limits.terms(terms_key).limit.restarts:  # the resend starts a new period
                events.append(AuditEvent("clock-returned", agency, message_id, case, "", {
                    "clock": cid, "limit": terms_key, "agency": agency, "answer": action,
                    "note_zh": "退回补充侦查，重新移送后重新计算期限",
                    "note_en": "returned for supplementary investigation: a new period starts when the case is "
                               "resent"}))
        return updates, events

    def extended(self, rows: Sequence[Sequence[Any]], action: str, documents: Sequence[str], message_id: str,
                 now: float) -> tuple[list[Update], list[AuditEvent]]:
        """Running clocks (id, terms, agency, case, started_at, extended JSON) the record extends."""
        docs = frozenset(documents)
        updates, events = [], []
        for cid, terms_key, agency, case, started_at, extended_json in rows:
            terms = self.limits.terms(terms_key)
            granted: list[int] = json.loads(extended_json or "[]")
            for i, ext in enumerate(terms.extensions):
                if not ext.matches(action, docs):
                    continue
                if granted.count(i) >= ext.max_times:
                    events.append(AuditEvent("clock-extension-refused", self.node, message_id, case, "", {
                        "clock": cid, "limit": terms_key, "agency": agency, "max_times": ext.max_times,
                        "note_zh": f"延长次数已达上限（{ext.max_times}次），期限未延长",
                        "note_en": f"already extended {ext.max_times} times: not extended"}))
                    break
                granted.append(i)
                t = self.timing(terms_key, started_at, granted, now)
                t.pop("_warnings")
                if t["warn_at"] < now:  # warned already or not: the next warning is the overdue one
                    t["next_warn_at"] = t["due_at"]
                zh, en = ext.by.text()
                updates.append(Update(cid, {"extended": json.dumps(granted), **t}))
                events.append(AuditEvent("clock-extended", self.node, message_id, case, "", {
                    "clock": cid, "limit": terms_key, "agency": agency, "by_zh": zh, "by_en": en,
                    "last_day": t["last_day"]}))
                break
        return updates, events

    def refused_period(self, limit_id: str, agency: str, case: str, message_id: str, earlier: int) -> AuditEvent:
        mp = self.limits.get(limit_id).max_periods
        return AuditEvent("clock-period-refused", self.node, message_id, case, "", {
            "limit": limit_id, "agency": agency, "earlier_periods": earlier, "max_periods": mp,
            "note_zh": f"该期限已计算{earlier}次，超过法定上限{mp}次，不再计时",
            "note_en": f"{earlier} periods already ran, the most the law allows is {mp}: no clock started"})

