"""The validation service: a record judged exactly as submission would judge it, with no side effects.

A legacy case system calls it while an officer assembles the case (REST `POST /api/v1/validate`,
SOAP `ValidateCaseRecord`) and shows the findings. It runs the node's own pipeline steps (the
agency's inbound pack, the standard schema, the rules as this deployment adapted them, routing and
the destinations' outbound mappings) through `packcheck.check_file`, the function `gateway
validate` uses, so the service, the command line and the pipeline give the same findings.
A batch file is split into its records by `packcheck.split_records` (the pack's own splitter, as
`gateway validate` and submission split it) and each record is judged alone. Nothing is stored,
routed or logged as a submission: only a count per agency and outcome goes to /metrics. Each
agency gets `validations_per_second` (with a burst of as many), so a case system validating on
every keystroke cannot crowd out submissions; the node's admission bounds it like a submission.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway import heap, standard
from gateway.clockkeeper import ClockKeeper, document_types
from gateway.metrics import Metrics
from gateway.model import InboundRecord
from gateway.packcheck import Outcome, check_file, split_records
from gateway.pipeline import Pipeline, Step
from gateway.verdict import RateLimited, Verdict, file_verdict

_INLINE_LIMIT = 256 * 1024  # larger records are judged off the event loop, as the pipeline does


@dataclass
class AgencyRate:
    """A token bucket per agency: `per_second` on average, up to `burst` at once."""

    per_second: float
    burst: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # agency -> (tokens, at)

    def take(self, agency: str) -> float | None:
        """None when the agency may go on (a token is taken), else the seconds until it may."""
        now = self.clock()
        tokens, at = self._buckets.get(agency, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens < 1:
            self._buckets[agency] = (tokens, now)
            return (1 - tokens) / self.per_second
        self._buckets[agency] = (tokens - 1, now)
        return None


class Validation:
    """Judges records with the pipeline's steps and answers a Verdict; never touches the store."""

    def __init__(self, pipeline: Pipeline, metrics: Metrics, rate: AgencyRate,
                 versions: tuple[str, ...] = ("1",), keeper: Callable[[], ClockKeeper | None] = lambda: None) -> None:
        self.pipeline = pipeline
        self.metrics = metrics
        self.rate = rate
        self.versions = versions
        self.keeper = keeper  # the node's time-limit clocks (None: none kept), asked at each check

    def time_limits(self, out: Outcome, agency: str) -> list[dict[str, object]]:
        """The statutory clocks this record would start on its delivery, and their last day if it were
        delivered today: what the keeper would plan at intake, nothing written."""
        keeper = self.keeper()
        if keeper is None or out.blocked or out.standard is None:
            return []
        action = out.standard.findtext(f"{{{standard.NS}}}Action") or ""
        plan = keeper.plan("validation", action, agency, out.destinations, document_types(out.standard),
                           keeper.clock.now())
        found: list[dict[str, object]] = []
        for c in plan.starts:
            name = keeper.limits.terms(c.terms).name
            found.append({"limit": c.limit_id, "terms": c.terms, "name_zh": name.zh, "name_en": name.en,
                          "agency": c.agency, "last_day_if_delivered_today": c.last_day})
        return found

    def steps(self, test: bool) -> list[Step]:
        """The pipeline's steps; a conformance run (`test`) passes the gate that keeps an agency
        closed until it has passed one."""
        return [s for s in self.pipeline.steps if not (test and s.name == "conformance")]

    async def validate(self, record: InboundRecord, *, test: bool = False) -> Verdict:
        """The verdict on `record`; raises RateLimited over the agency's share, Busy when the node is full."""
        agency = record.sender
        if not test:
            wait = self.rate.take(agency)
            if wait is not None:
                self.metrics.validated(agency, "rate-limited")
                raise RateLimited(agency, self.rate.per_second, max(1, round(wait + 0.5)))
        started = time.perf_counter()
        pack = self.pipeline.inbound_packs[record.channel]
        source = f"channel {record.channel}" + (f", file {record.file_name}" if record.file_name else "")
        steps = self.steps(test)

        def judge() -> list[Outcome]:
            parts = split_records(pack, record.body, source)
            return [check_file(body, pack, sender=agency, source=source + (f", record {n}" if len(parts) > 1 else ""),
                               message_id="validation", attachments=record.attachments, versions=self.versions,
                               channel=record.channel, steps=steps, render=False)
                    for n, body in enumerate(parts, 1)]

        try:
            with self.pipeline.admission.slot(record.channel, len(record.body)):
                outs = await asyncio.to_thread(judge) if len(record.body) > _INLINE_LIMIT else judge()
        finally:
            heap.release_soon(len(record.body))
        seconds = time.perf_counter() - started
        verdicts = [Verdict(agency, record.channel, out.blocked, [p.as_dict() for p in out.problems],
                            out.destinations, out.outbound, seconds, self.time_limits(out, agency)) for out in outs]
        verdict = verdicts[0] if len(verdicts) == 1 else file_verdict(verdicts, seconds)
        if not test:  # a conformance run is never counted
            self.metrics.validated(agency, verdict.outcome)
        return verdict
