"""What the validation service answers about one record: its findings, and where it would go.

A file of several records (a pack's `batch:`) is answered as submission answers it: a verdict per
record in `records`, and the file's own verdict over them (blocked when any record is).

Plain values, so adapters (which never see the pipeline) can answer it in their own protocol.
Each finding is `Problem.as_dict()`, the form the pipeline logs and `gateway validate` reads:
a field the findings gain (a hint, the location in the agency's own file) reaches every
answer without a second formatter.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from gateway.errors import GatewayError


@dataclass(frozen=True)
class Verdict:
    agency: str
    channel: str
    blocked: bool
    findings: list[dict[str, Any]]
    destinations: list[str] = field(default_factory=list)
    outbound: dict[str, bytes] = field(default_factory=dict)  # what each destination would be given
    seconds: float = 0.0
    time_limits: list[dict[str, Any]] = field(default_factory=list)  # the clocks its delivery would start
    records: list[Verdict] = field(default_factory=list)  # a batch file's verdict per record, in file order

    @property
    def outcome(self) -> str:
        """accepted, accepted with warnings (warned) or blocked: the label of the service's counts."""
        if self.blocked:
            return "blocked"
        return "warned" if self.findings else "accepted"

    def as_json(self, *, with_outbound: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "agency": self.agency, "channel": self.channel, "outcome": self.outcome,
            "accepted": not self.blocked, "findings": self.findings, "destinations": self.destinations,
            "time_limits": self.time_limits, "stored": False,
        }
        if with_outbound:
            out["outbound"] = {d: base64.b64encode(b).decode("ascii") for d, b in self.outbound.items()}
        if self.records:
            out["records"] = [{"record": n, **{k: v for k, v in r.as_json(with_outbound=with_outbound).items()
                                               if k not in ("agency", "channel", "stored")}}
                              for n, r in enumerate(self.records, 1)]
        return out


def file_verdict(records: list[Verdict], seconds: float) -> Verdict:
    """A batch file's verdict: blocked when any record is; every record's findings (each naming its
    record) and time limits, and every destination once. What each destination would be given stays
    with its record: two records may go to the same agency."""
    first = records[0]
    return Verdict(
        first.agency, first.channel, any(r.blocked for r in records),
        [{**f, "record": n} for n, r in enumerate(records, 1) for f in r.findings],
        list(dict.fromkeys(d for r in records for d in r.destinations)), {}, seconds,
        [{**t, "record": n} for n, r in enumerate(records, 1) for t in r.time_limits], records)


class RateLimited(GatewayError):
    """The agency asked for more validations than its share; answered 429 with Retry-After."""

    rule = "validate.rate-limited"

    def __init__(self, agency: str, per_second: float, retry_after: int) -> None:
        self.retry_after = retry_after
        self.message = (f"agency {agency} asked for more than {per_second:g} validations a second; try again in "
                        f"{retry_after} s")
        self.message_zh = f"机构 {agency} 的校验请求超过每秒 {per_second:g} 次，请 {retry_after} 秒后再试"
        super().__init__(f"{self.message_zh} / {self.message}")
