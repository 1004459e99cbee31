"""Counting periods as the Criminal Procedure Law counts them (art. 105), in Asia/Shanghai time.

The day a period starts is not counted; a period in months ends on the same day of the month it
reaches (the month's last day when that day does not exist, or when the period began on a
month's last day); a last day on a public holiday or rest day moves to the first working day
after it, except for custody periods. Holidays and adjusted workdays come from the maintained
`chinese-calendar` library, extended by a deployment's data file for years the library does not
know yet. A date outside both is counted without moving, and the count says so in `warnings`.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import chinese_calendar
import yaml

from gateway.errors import ConfigError

TZ = ZoneInfo("Asia/Shanghai")


def local_date(t: float) -> dt.date:
    """The date in China of a moment (seconds since the epoch)."""
    return dt.datetime.fromtimestamp(t, TZ).date()


def day_end(d: dt.date) -> float:
    """The moment a last day ends: midnight after it, China time."""
    return dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), TZ).timestamp()


def add_months(start: dt.date, months: int) -> dt.date:
    """The last day of a period of calendar months beginning the day after `start`."""
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    last = calendar.monthrange(year, month)[1]
    if start.day == calendar.monthrange(start.year, start.month)[1]:
        return dt.date(year, month, last)  # from a month's last day to the last day of the month reached
    return dt.date(year, month, min(start.day, last))


def add(start: dt.date, days: int | None = None, months: int | None = None) -> dt.date:
    """The last day of a period of `days` days or `months` months starting on `start` (not counted)."""
    if months is not None:
        return add_months(start, months)
    assert days is not None
    return start + dt.timedelta(days=days)


class HolidayCalendar:
    """Is a day a rest day (public holiday or weekend not made a workday)? None: the calendar does not know."""

    def __init__(self, holidays: Iterable[dt.date] = (), workdays: Iterable[dt.date] = (),
                 years: Iterable[int] = ()) -> None:
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)
        self.years = frozenset(years) | {d.year for d in self.holidays} | {d.year for d in self.workdays}
        self._known: dict[dt.date, bool | None] = {}  # the library checks its whole range on every call


    @classmethod
    def from_file(cls, path: Path | None) -> HolidayCalendar:
        """A deployment's extra holidays; YAML: `holidays: [dates]`, `workdays: [dates]`, `years: [...]`."""
        if path is None:
            return cls()
        try:
            data: Any = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the holiday file: {e.strerror} / 无法读取节假日文件") from None
        except (yaml.YAMLError, ValueError) as e:  # a date such as 2030-13-01 fails in the YAML reader itself
            raise ConfigError(f"{path}: not valid YAML or not a date / 节假日文件不是有效的YAML或日期有误: {e}"
                              ) from None
        if not isinstance(data, dict) or set(data) - {"holidays", "workdays", "years"}:
            raise ConfigError(f"{path}: (top): expected the keys holidays, workdays and years / "
                              "应当只包含 holidays、workdays、years 三个键")
        days: dict[str, list[dt.date]] = {}
        for key in ("holidays", "workdays"):
            values = data.get(key) or []
            if not isinstance(values, list):
                raise ConfigError(f"{path}: {key}: expected a list of dates YYYY-MM-DD / 应当为日期列表（YYYY-MM-DD）")
            out = []
            for i, v in enumerate(values):
                if isinstance(v, str):
                    with contextlib.suppress(ValueError):
                        v = dt.date.fromisoformat(v)
                if not isinstance(v, dt.date):
                    raise ConfigError(f"{path}: {key}[{i}]: expected a date YYYY-MM-DD, found {v!r} / "
                                      f"应当为日期（YYYY-MM-DD），实际为{v!r}")
                out.append(v)
            days[key] = out
        years = data.get("years") or []
        if not isinstance(years, list) or not all(isinstance(y, int) for y in years):
            raise ConfigError(f"{path}: years: expected a list of years such as [2027] / 应当为年份列表，如 [2027]")
        return cls(days["holidays"], days["workdays"], years)

    def rest_day(self, d: dt.date) -> bool | None:
        if d not in self._known:
            self._known[d] = self._rest_day(d)
        return self._known[d]

    def _rest_day(self, d: dt.date) -> bool | None:
        if d in self.holidays:
            return True
        if d in self.workdays:
            return False
        try:
            return bool(chinese_calendar.is_holiday(d))
        except NotImplementedError:
            if d.year in self.years:
                return d.weekday() >= 5
            return None


@dataclass(frozen=True)
class Deadline:
    last_day: dt.date
    due_at: float  # the end of the last day (midnight after it, China time)
    warnings: tuple[str, ...] = ()


def deadline(start: float | dt.date, parts: Iterable[tuple[int | None, int | None]], custody: bool,
             cal: HolidayCalendar) -> Deadline:
    """The last day of a period begun at `start` (a moment, or the day in China) made of (days, months)
    parts: the length, then each extension granted. A last day on a rest day moves on unless `custody`."""
    end = start if isinstance(start, dt.date) else local_date(start)
    for days, months in parts:
        end = add(end, days, months)
    warnings: list[str] = []
    if not custody:
        while True:
            rest = cal.rest_day(end)
            if rest is None:
                warnings.append(f"{end.isoformat()} 不在已知的节假日历内，未按节假日顺延 / {end.isoformat()} "
                                "is outside the known holiday calendar: the last day was not moved for "
                                "holidays; extend the holiday file (clocks.holidays_file)")
                break
            if not rest:
                break
            end += dt.timedelta(days=1)
    return Deadline(end, day_end(end), tuple(warnings))
