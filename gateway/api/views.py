"""What an agency may see of a message, its deliveries and its history.

Operators and auditors see everything. An agency sees the records it sent and received, but never
another agency's endpoint, answer body or error text (a delivery's reason repeats what the
receiver's system said, and may name its address): the sender sees each destination's state in
neutral words, a receiver only its own delivery. The rule is here once, for the REST API and for
the receipts that SOAP's GetReceipts returns.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.model import neutral_reason

_DELIVERY_FIELDS = ("id", "destination", "state", "attempts", "created_at", "updated_at", "delivered_at")
_DELIVERY_STEPS = frozenset({"queued", "delivered", "delivery-failed", "dead-lettered", "replayed", "discarded",
                             "evidence-delivery"})


def visible_destinations(agency: str, sender: str, destinations: list[str]) -> set[str]:
    """The destinations whose delivery `agency` may see: all of its own record's, else only its own."""
    return set(destinations) if agency == sender else {agency} & set(destinations)


def delivery_for_agency(d: dict[str, Any]) -> dict[str, Any]:
    return {**{k: d.get(k) for k in _DELIVERY_FIELDS}, "reason": neutral_reason(str(d.get("state")))}


def message_for_agency(agency: str, m: dict[str, Any]) -> dict[str, Any]:
    """`m` (with its `deliveries`) as `agency` may see it."""
    seen = visible_destinations(agency, str(m["sender"]), [str(d["destination"]) for d in m["deliveries"]])
    return {**m, "deliveries": [delivery_for_agency(d) for d in m["deliveries"] if d["destination"] in seen]}


def history_for_agency(agency: str, m: dict[str, Any], steps: list[dict[str, Any]],
                       attempts: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """The history of `m`, its steps and attempts, as `agency` may see it: delivery steps of visible
    destinations with their number and outcome only, attempts without the receiver's words."""
    shown = message_for_agency(agency, m)
    seen = {str(d["destination"]) for d in shown["deliveries"]}
    ids = {str(d["id"]) for d in shown["deliveries"]}
    kept = []
    for s in steps:
        if s["action"] in _DELIVERY_STEPS:
            detail = json.loads(s["detail"] or "{}")
            if detail.get("destination") not in seen:
                continue
            brief = {k: detail[k] for k in ("destination", "attempt", "delivery") if k in detail}
            s = {**s, "detail": json.dumps(brief, ensure_ascii=False), "redacted": True}  # hashes cover the full text
        kept.append(s)
    neutral = {d: [{k: a.get(k) for k in ("attempt", "started_at", "ended_at", "outcome")} for a in rows]
               for d, rows in attempts.items() if d in ids}
    return {"message": shown, "steps": kept, "attempts": neutral}


def case_for_agency(agency: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A case's timeline as `agency` may see it: the records it sent, and the accepted records it
    received (a blocked record reached no one), each with only the receivers and delivered times its
    messages would show. Empty when it took part in none: the case is then unknown to it."""
    shown = []
    for r in records:
        sender, receivers = str(r["sender"]), [str(x) for x in r["receivers"]]
        if agency != sender and (r["blocked"] or agency not in receivers):
            continue
        seen = visible_destinations(agency, sender, receivers)
        shown.append({**r, "receivers": [x for x in receivers if x in seen],
                      "delivered": {x: t for x, t in r["delivered"].items() if x in seen}})
    return shown
