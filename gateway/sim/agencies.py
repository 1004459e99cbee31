"""What each simulated agency system does with a record it receives: its part of the case flow.

Police sends a transfer for prosecution; the procuratorate answers it with an indictment to the
court; the court answers that with a judgment, which goes to procuratorate and police. These
classes know nothing of the network: a transport hands them records and sends what they return.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.sim.records import CaseStep

TRANSFER = ("prosecution-review", "transfer-for-prosecution")
INDICTMENT = ("trial", "indictment")
JUDGMENT = ("trial", "judgment")


@dataclass(frozen=True)
class Received:
    at: float
    step: CaseStep
    delivery: str


@dataclass
class AgencySystem:
    """A legacy case-handling system: records what arrived and says what it sends in answer."""

    code: str
    received: list[Received] = field(default_factory=list)

    def accept(self, step: CaseStep, delivery: str) -> list[CaseStep]:
        """Take in one delivered record (already deduplicated) and return the records sent in answer."""
        self.received.append(Received(time.time(), step, delivery))
        return self.answer(step)

    def answer(self, step: CaseStep) -> list[CaseStep]:
        return []

    def count(self, stage_action: tuple[str, str]) -> int:
        return sum(1 for r in self.received if (r.step.stage, r.step.action) == stage_action)


class PoliceSystem(AgencySystem):
    """Starts each case; receives the judgment at the end."""

    def open_case(self, case_number: str) -> CaseStep:
        return CaseStep(case_number, *TRANSFER, self.code)


class ProcuratorateSystem(AgencySystem):
    """Reviews a transfer for prosecution and indicts; receives the judgment."""

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if (step.stage, step.action) == TRANSFER:
            return [CaseStep(step.case_number, *INDICTMENT, self.code)]
        return []


class CourtSystem(AgencySystem):
    """Tries an indicted case and hands down the judgment."""

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if (step.stage, step.action) == INDICTMENT:
            return [CaseStep(step.case_number, *JUDGMENT, self.code)]
        return []
