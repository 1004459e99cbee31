"""Errors that carry words an officer or operator understands, never a traceback."""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway explains to a person."""


class InputRejected(GatewayError):
    """A record the gateway refuses; `rule` names which check, `line` where in the file.

    `message_zh` is the same refusal in Chinese where the check has it, for the officer reading it.
    """

    def __init__(self, message: str, *, rule: str, line: int | None = None, source: str | None = None,
                 message_zh: str = ""):
        self.message = message
        self.rule = rule
        self.line = line
        self.source = source
        self.message_zh = message_zh
        super().__init__(self.explain())

    def explain(self) -> str:
        where = self.source or "input"
        if self.line:
            where += f", line {self.line}"
        return f"{where}: {self.message} [rule {self.rule}]"


class ConfigError(GatewayError):
    """A configuration problem, named by file and key path."""


class Busy(GatewayError):
    """The node has as much in progress as it takes at once: nothing was taken, the sender resends later.

    Push adapters answer it as "try again" (HTTP 503 with Retry-After, a SOAP Server fault), never as
    a refusal of the record itself.
    """

    rule = "gateway.busy"

    def __init__(self, message: str, *, message_zh: str, retry_after: int) -> None:
        self.message = message
        self.message_zh = message_zh
        self.retry_after = retry_after
        super().__init__(message)


class PartlyTaken(GatewayError):
    """A file of several records stopped part-way (the store failed): its first `taken` records are
    stored, each whole, and the rest are not. Sending the file again is safe: the stored ones are
    recognised by their own bytes and not taken twice."""

    rule = "gateway.unavailable"

    def __init__(self, taken: int, total: int) -> None:
        self.taken = taken
        self.total = total
        super().__init__(f"the gateway could not store record {taken + 1} of {total} of the file just now; records "
                         f"1 to {taken} were taken, the others were not; send the file again: the records taken "
                         "are recognised and not taken twice")
        self.message_zh = (f"网关暂时无法保存文件中的第 {taken + 1} 条记录（共 {total} 条）；"
                           f"前 {taken} 条已接收，其余未接收。请重新发送该文件，已接收的记录会被识别，不会重复接收")
