"""The full case flow of the demo: what each agency answers to which record (DOMAIN.md's table).

police: request arrest approval -> procuratorate approves -> police transfers for prosecution ->
procuratorate indicts to the court (or, once, returns the case for supplementary investigation and
the police resends) -> court sends the judgment to procuratorate and police and the execution
notice to the justice bureau -> the justice bureau answers a receipt of the offender to the court.
One transfer breaks the evidence rules: the gateway blocks it, the police reads the defect notice
and resends a complete one. Transport-free: the demo hands these systems records and sends answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.sim.agencies import AgencySystem
from gateway.sim.legacy import DEFECTIVE
from gateway.sim.records import CaseStep

ARREST = ("arrest-review", "request-arrest-approval")
APPROVE = ("arrest-review", "approve-arrest")
TRANSFER = ("prosecution-review", "transfer-for-prosecution")
RETURN = ("prosecution-review", "return-supplementary-investigation")
INDICTMENT = ("trial", "indictment")
JUDGMENT = ("trial", "judgment")
EXECUTION = ("execution", "execution-notice")
RECEIPT = ("execution", "offender-received")
NOTICE = ("notice", "defect-notice")


def _kind(step: CaseStep) -> tuple[str, str]:
    return step.stage, step.action


@dataclass
class Police(AgencySystem):
    """Opens cases; sends the defective transfer of one case once, then fixes it from the notice."""

    defective: set[str] = field(default_factory=set)

    def open_case(self, case_number: str) -> CaseStep:
        return CaseStep(case_number, *ARREST, self.code)

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if _kind(step) == APPROVE and step.case_number in self.defective:
            return [CaseStep(step.case_number, TRANSFER[0], DEFECTIVE, self.code)]
        if _kind(step) in (APPROVE, NOTICE, RETURN):
            return [CaseStep(step.case_number, *TRANSFER, self.code)]
        return []


@dataclass
class Procuratorate(AgencySystem):
    """Approves arrests; indicts, except the first transfer of a case it returns for more investigation."""

    returns: set[str] = field(default_factory=set)

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if _kind(step) == ARREST:
            return [CaseStep(step.case_number, *APPROVE, self.code)]
        if _kind(step) == TRANSFER:
            if step.case_number in self.returns:
                self.returns.discard(step.case_number)
                return [CaseStep(step.case_number, *RETURN, self.code)]
            return [CaseStep(step.case_number, *INDICTMENT, self.code)]
        return []


class Court(AgencySystem):
    """Tries an indicted case: the judgment, and the execution notice for the justice bureau."""

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if _kind(step) == INDICTMENT:
            return [CaseStep(step.case_number, *JUDGMENT, self.code),
                    CaseStep(step.case_number, *EXECUTION, self.code)]
        return []


class JusticeBureau(AgencySystem):
    """Community corrections: takes in the offender named in an execution notice and answers a receipt."""

    def answer(self, step: CaseStep) -> list[CaseStep]:
        if _kind(step) == EXECUTION:
            return [CaseStep(step.case_number, *RECEIPT, self.code)]
        return []


def cases_with(system: AgencySystem, what: tuple[str, str]) -> set[str]:
    return {r.step.case_number for r in system.received if _kind(r.step) == what}
