"""What the validation service answers about one record: its findings, and where it would go.

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
        return out


class RateLimited(GatewayError):
    """The agency asked for more validations than its share; answered 429 with Retry-After."""

    rule = "validate.rate-limited"

    def __init__(self, agency: str, per_second: float, retry_after: int) -> None:
        self.retry_after = retry_after
        self.message = (f"agency {agency} asked for more than {per_second:g} validations a second; try again in "
                        f"{retry_after} s")
        self.message_zh = f"机构 {agency} 的校验请求超过每秒 {per_second:g} 次，请 {retry_after} 秒后再试"
        super().__init__(f"{self.message_zh} / {self.message}")
