"""Daily statistics per agency: what one record or one delivery adds, the same way at commit time
and when `gateway stats rebuild` recomputes everything from the raw tables.

One `Tally` classifies; each backend writes a tally with the upserts below inside the transaction
that commits the record or the delivery, so the aggregates commit with them or not at all.

Definitions (Asia/Shanghai days; China has kept UTC+8 without daylight saving since 1991):
- sent / accepted / blocked: records the agency sent, by decision; warned: accepted with warnings.
- a resend: a record with the same sender, case and action as a record blocked before it (the
  standard carries no link from a record to the defect notice it answers); its time to resend is
  counted from that blocked record. A first submission: the first record of its (sender, case,
  action), or any record without a case number. First-submission pass rate: accepted / first.
- dossier required: a record whose action the acceptance rules require a dossier for, or that
  listed dossier files; complete: none of the dossier rules found a missing or mismatched file.
- answer time: an accepted answer (ANSWERS) after the newest accepted request of its case it
  answers, counted for the answering agency on the day of the answer.
- hand-over: arrival at the gateway to the receiver's confirmed delivery, in whole milliseconds,
  counted on the day of delivery for the sender (side 's') and the receiver (side 'r'); defect
  notices are not hand-overs. Times go into fixed logarithmic buckets (8 per doubling).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from gateway.model import EVIDENCE_CONTENT_TYPE

SHANGHAI = 8 * 3600
DAILY = ("sent", "accepted", "blocked", "warned", "first_sub", "first_pass", "resends", "resend_ms",
         "dossier_req", "dossier_ok", "received", "handover_n", "handover_ms", "recv_handover_n",
         "recv_handover_ms", "answers", "answer_ms")
DOSSIER_ACTIONS = frozenset({"transfer-for-prosecution", "indictment"})
DOSSIER_RULES = frozenset({"DOS-01", "DOS-02", "ACC-PR-13", "ACC-CT-03"})
# an answer and the requests it answers: arrest approval -> decision, transfer -> indictment or
# return, indictment -> judgment
ANSWERS: dict[str, tuple[str, ...]] = {
    "approve-arrest": ("request-arrest-approval",), "refuse-arrest": ("request-arrest-approval",),
    "indictment": ("transfer-for-prosecution",), "return-supplementary-investigation": ("transfer-for-prosecution",),
    "non-prosecution": ("transfer-for-prosecution",), "judgment": ("indictment",),
}
_PER_DOUBLING = 8
RANKING_ACTION = "ranking-frozen"


def day_of(t: float) -> str:
    """The calendar day in Asia/Shanghai of a Unix time."""
    return time.strftime("%Y-%m-%d", time.gmtime(t + SHANGHAI))


def bucket(ms: int) -> int:
    """The histogram bucket of a duration: 0 below 1 ms, then 8 buckets per doubling."""
    return 0 if ms < 1 else 1 + int(math.log2(ms) * _PER_DOUBLING)


def bucket_value(b: int) -> float:
    """The value a bucket stands for: the geometric middle of its bounds (at most 4.4% off)."""
    return 0.0 if b == 0 else 2 ** ((b - 0.5) / _PER_DOUBLING)


Key = tuple[str, str, str]  # (sender, case number, action)


@dataclass
class Tally:
    """Increments to the aggregate tables, and the chain state they were computed against."""

    daily: dict[tuple[str, str], dict[str, int]] = field(default_factory=lambda: defaultdict(
        lambda: dict.fromkeys(DAILY, 0)))
    rules: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    hist: dict[tuple[str, str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    chains: dict[Key, tuple[str, float]] = field(default_factory=dict)
    by_case: dict[str, set[Key]] = field(default_factory=lambda: defaultdict(set))

    def asked_at(self, case_number: str, action: str) -> float | None:
        """When the newest accepted request an answer answers arrived, from the chains seen so far (a
        rebuild; at commit time the store reads the same from stats_chains)."""
        asks = ANSWERS.get(action)
        if not asks or not case_number:
            return None
        times = [at for k in self.by_case.get(case_number, ()) if k[2] in asks
                 for st, at in (self.chains[k],) if st == "accepted"]
        return max(times) if times else None

    def record(self, sender: str, case_number: str, action: str, status: str, summary: dict[str, Any],
               received_at: float, prev: tuple[str, float] | None, asked: float | None = None) -> None:
        """One stored record; `prev` is the (status, received_at) of the last record of its chain,
        `asked` when the request it answers arrived (None: not an answer, or no such request)."""
        d = self.daily[(day_of(received_at), sender)]
        problems = summary.get("problems") or []
        d["sent"] += 1
        accepted = status == "accepted"
        d["accepted" if accepted else "blocked"] += 1
        if accepted and any(p.get("severity") == "warn" for p in problems):
            d["warned"] += 1
        for rule in {str(p.get("rule")) for p in problems}:
            self.rules[(day_of(received_at), sender, rule)] += 1
        if prev is None:
            d["first_sub"] += 1
            d["first_pass"] += accepted
        elif prev[0] == "rejected":
            d["resends"] += 1
            d["resend_ms"] += max(0, round((received_at - prev[1]) * 1000))
        if action and (action in DOSSIER_ACTIONS or summary.get("attachments")):
            d["dossier_req"] += 1
            d["dossier_ok"] += not any(str(p.get("rule")) in DOSSIER_RULES for p in problems)
        if accepted and asked is not None:
            d["answers"] += 1
            d["answer_ms"] += max(0, round((received_at - asked) * 1000))
        if case_number:
            self.chains[(sender, case_number, action)] = (status, received_at)
            self.by_case[case_number].add((sender, case_number, action))

    def delivery(self, sender: str, destination: str, received_at: float, delivered_at: float) -> None:
        """One confirmed delivery of an accepted record."""
        day = day_of(delivered_at)
        ms = max(0, round((delivered_at - received_at) * 1000))
        s, r = self.daily[(day, sender)], self.daily[(day, destination)]
        s["handover_n"] += 1
        s["handover_ms"] += ms
        r["received"] += 1
        r["recv_handover_n"] += 1
        r["recv_handover_ms"] += ms
        self.hist[(day, sender, "s", bucket(ms))] += 1
        self.hist[(day, destination, "r", bucket(ms))] += 1


def chain_key(sender: str, case_number: str, action: str) -> Key | None:
    """The chain a record belongs to; None when it has no case number (it cannot be linked)."""
    return (sender, case_number, action) if case_number else None


class StatsSQL:
    """The statements that write a tally, in one backend's parameter style (both speak ON CONFLICT)."""

    def __init__(self, p: str) -> None:
        cols = ", ".join(DAILY)
        sets = ", ".join(f"{c} = stats_daily.{c} + excluded.{c}" for c in DAILY)
        ph = ",".join([p] * (len(DAILY) + 2))
        self.daily = (f"INSERT INTO stats_daily (day, agency, {cols}) VALUES ({ph}) "
                      f"ON CONFLICT (day, agency) DO UPDATE SET {sets}")
        self.rules = (f"INSERT INTO stats_rules (day, agency, rule, n) VALUES ({p},{p},{p},{p}) "
                      "ON CONFLICT (day, agency, rule) DO UPDATE SET n = stats_rules.n + excluded.n")
        self.hist = (f"INSERT INTO stats_handover (day, agency, side, bucket, n) VALUES ({p},{p},{p},{p},{p}) "
                     "ON CONFLICT (day, agency, side, bucket) DO UPDATE SET n = stats_handover.n + excluded.n")
        self.chain = (f"INSERT INTO stats_chains (sender, case_number, action, status, at) "
                      f"VALUES ({p},{p},{p},{p},{p}) ON CONFLICT (sender, case_number, action) "
                      "DO UPDATE SET status = excluded.status, at = excluded.at")
        self.prev = f"SELECT status, at FROM stats_chains WHERE sender = {p} AND case_number = {p} AND action = {p}"
        self.message_of = f"SELECT sender, received_at, status FROM messages WHERE id = {p}"
        self.asked = (f"SELECT MAX(at) FROM stats_chains WHERE case_number = {p} AND status = 'accepted' "
                      f"AND action IN ({p}, {p})")
        # the raw tables, in commit order (the exchange log's order), for a rebuild
        self.all_messages = ("SELECT m.sender, m.case_number, m.action, m.status, m.summary, m.received_at "
                             "FROM messages m JOIN (SELECT message_id, MIN(seq) AS o FROM audit_log "
                             "GROUP BY message_id) a ON a.message_id = m.id ORDER BY a.o")
        self.all_deliveries = ("SELECT m.sender, d.destination, m.received_at, d.delivered_at FROM deliveries d "
                               "JOIN messages m ON m.id = d.message_id "
                               "WHERE d.state = 'delivered' AND m.status = 'accepted' "
                               f"AND d.content_type <> '{EVIDENCE_CONTENT_TYPE}'")  # no record's delivery
        self.clear = ("DELETE FROM stats_daily", "DELETE FROM stats_rules", "DELETE FROM stats_handover",
                      "DELETE FROM stats_chains")
        self.days = (f"SELECT day, agency, {cols} FROM stats_daily WHERE day >= {p} AND day <= {p}")
        self.rules_in = f"SELECT day, agency, rule, n FROM stats_rules WHERE day >= {p} AND day <= {p}"
        self.hist_in = f"SELECT day, agency, side, bucket, n FROM stats_handover WHERE day >= {p} AND day <= {p}"
        one = f" AND agency = {p}"  # one agency's rows: its index, not the day's 200 agencies
        self.days_of, self.rules_of, self.hist_of = self.days + one, self.rules_in + one, self.hist_in + one
        self.ranking = f"SELECT seq FROM stats_rankings WHERE day = {p}"
        self.add_ranking = f"INSERT INTO stats_rankings (day, seq) VALUES ({p},{p})"

    @staticmethod
    def rows(t: Tally) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]],
                                list[tuple[Any, ...]]]:
        """(daily, rules, hist, chains) parameter rows of a tally."""
        return ([(day, ag, *(v[c] for c in DAILY)) for (day, ag), v in t.daily.items()],
                [(*k, n) for k, n in t.rules.items()],
                [(*k, n) for k, n in t.hist.items()],
                [(*k, *v) for k, v in t.chains.items()])


SQLITE = StatsSQL("?")
POSTGRES = StatsSQL("%s")
