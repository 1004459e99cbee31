"""Time-limit warnings as notices the responsible agency's own system reads.

A warning travels in the standard's `DefectNotice` form, which every mapping pack already renders
into its legacy format (the agency's notice of return or defect list): one entry whose rule is
`TIME-LIMIT-APPROACHING` or `TIME-LIMIT-OVERDUE` and whose text names the limit, the case, the
last day and the days left or overdue, in Chinese first. A pack that cannot render it is a
configuration error at the node's start, never a warning lost at run time.
"""

from __future__ import annotations

import datetime as dt

from lxml import etree

from gateway.clockkeeper import ClockRow
from gateway.errors import ConfigError
from gateway.lawcalendar import local_date
from gateway.mapping import MappingPack, Problem
from gateway.notice import defect_notice
from gateway.standard import Envelope
from gateway.timelimits import TimeLimits

RULES = {"approaching": "TIME-LIMIT-APPROACHING", "overdue": "TIME-LIMIT-OVERDUE"}


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def warning_text(clock: ClockRow, kind: str, limits: TimeLimits, now: float) -> tuple[str, str]:
    """(Chinese, English) of a warning."""
    terms = limits.terms(clock.terms)
    last = clock.last_day or "?"
    if kind == "overdue":
        days = (local_date(now) - dt.date.fromisoformat(last)).days if clock.last_day else 0
        return (f"案件{clock.case_number}的{terms.name.zh}已于{last}届满，已超期{days}日，"
                f"尚未作出答复（{clock.agency}）",
                f"case {clock.case_number}: the {terms.name.en} period ended on {last}; {_days(days)} overdue, "
                f"no answer yet from {clock.agency}")
    left = (dt.date.fromisoformat(last) - local_date(now)).days if clock.last_day else 0
    return (f"案件{clock.case_number}的{terms.name.zh}将于{last}届满，剩余{left}日（{clock.agency}）",
            f"case {clock.case_number}: the {terms.name.en} period ends on {last}, {_days(left)} left "
            f"({clock.agency})")


def warning_notice(clock: ClockRow, kind: str, receiver: str, limits: TimeLimits, now: float) -> etree._Element:
    zh, en = warning_text(clock, kind, limits, now)
    problem = Problem(RULES[kind], en, severity="block" if kind == "overdue" else "warn", message_zh=zh)
    issued = dt.datetime.fromtimestamp(now, dt.UTC)
    env = Envelope("1.0", clock.case_number, "", "", "", ())
    return defect_notice(clock.message_id, receiver, [problem], envelope=env, issued_at=issued)


def check_pack(agency: str, pack: MappingPack, source: str) -> None:
    """The pack renders a warning into an XML document, or the node does not start."""
    probe = ClockRow("probe", "A0000000000000000", "arrest-decision", "arrest-decision", agency, "probe", 1,
                     "running", 0.0, 0.0, "2026-01-08", 0.0, 0.0, 0.0, "[]", None, None, None, None)
    from gateway.timelimits import standard_limits

    try:
        body = pack.from_standard(warning_notice(probe, "overdue", agency, standard_limits(), 0.0))
        etree.fromstring(body)
    except Exception as e:
        raise ConfigError(f"{source}: agency {agency}: its outbound mapping pack `{pack.name}` cannot render a "
                          f"time-limit notice (a DefectNotice template is expected in its outbound XSLT): {e} / "
                          f"单位{agency}的发送映射包“{pack.name}”无法生成期限提醒通知（其outbound XSLT应当包含"
                          "DefectNotice模板）") from None
