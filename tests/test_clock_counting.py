"""Counting periods as the Criminal Procedure Law counts them (art. 105), with worked examples.

The start day is not counted; months are calendar months; a last day on a rest day moves to the
next working day unless the period is a custody period; a date the holiday calendar does not know
is counted without moving and the count says so.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.lawcalendar import TZ, HolidayCalendar, add_months, day_end, deadline, local_date

CAL = HolidayCalendar()


def at(y: int, m: int, d: int, hour: int = 10) -> float:
    return dt.datetime(y, m, d, hour, tzinfo=TZ).timestamp()


def last_day(started: float, days: int | None = None, months: int | None = None, custody: bool = False,
             cal: HolidayCalendar = CAL) -> dt.date:
    return deadline(started, [(days, months)], custody, cal).last_day


def test_start_day_not_counted_and_a_plain_week() -> None:
    # Tuesday 2026-03-10 + 7 days: Tuesday 2026-03-17, a working day
    assert last_day(at(2026, 3, 10), days=7) == dt.date(2026, 3, 17)


def test_start_on_a_friday_ending_on_a_sunday_moves_to_monday() -> None:
    # Friday 2026-03-06 + 2 days = Sunday 2026-03-08: the period ends on Monday 2026-03-09
    assert dt.date(2026, 3, 6).weekday() == 4
    assert last_day(at(2026, 3, 6), days=2) == dt.date(2026, 3, 9)
    # the same period in custody ends on the Sunday itself
    assert last_day(at(2026, 3, 6), days=2, custody=True) == dt.date(2026, 3, 8)


def test_ending_in_national_day_moves_past_the_holiday() -> None:
    # Friday 2026-09-25 + 7 days = 2026-10-02, inside the National Day holiday (Oct 1-7):
    # the first working day after it is Thursday 2026-10-08
    assert last_day(at(2026, 9, 25), days=7) == dt.date(2026, 10, 8)
    # an arrest decision is a custody period: it ends on 2026-10-02 all the same
    assert last_day(at(2026, 9, 25), days=7, custody=True) == dt.date(2026, 10, 2)


def test_adjusted_workday_on_a_weekend_is_a_working_day() -> None:
    # Saturday 2026-10-10 is a working day (made up for the National Day holiday): no move
    assert CAL.rest_day(dt.date(2026, 10, 10)) is False
    assert last_day(at(2026, 10, 3), days=7) == dt.date(2026, 10, 10)


def test_months_are_calendar_months_to_the_month_end() -> None:
    assert add_months(dt.date(2026, 1, 31), 1) == dt.date(2026, 2, 28)  # no Feb 31: the month's last day
    assert add_months(dt.date(2028, 1, 31), 1) == dt.date(2028, 2, 29)  # leap year
    assert add_months(dt.date(2026, 1, 15), 1) == dt.date(2026, 2, 15)
    assert add_months(dt.date(2026, 11, 30), 2) == dt.date(2027, 1, 31)  # from a month's last day: to the last
    assert add_months(dt.date(2027, 2, 28), 1) == dt.date(2027, 3, 31)
    assert add_months(dt.date(2028, 2, 28), 1) == dt.date(2028, 3, 28)  # 2028-02-28 is not February's last day
    assert add_months(dt.date(2026, 12, 15), 1) == dt.date(2027, 1, 15)


def test_month_ends_with_weekends_and_adjusted_workdays() -> None:
    # 2026-01-31 + 1 month = Saturday 2026-02-28, a working day made up for the Spring Festival: no move
    assert last_day(at(2026, 1, 31), months=1) == dt.date(2026, 2, 28)
    # 2026-04-30 (a month's last day) + 1 month = Sunday 2026-05-31: Monday 2026-06-01
    assert last_day(at(2026, 4, 30), months=1) == dt.date(2026, 6, 1)


def test_extension_counts_on_from_the_unmoved_end() -> None:
    # 1 month from 2026-05-10 = 2026-06-10, + 15 days = 2026-06-25; the Dragon Boat holiday is
    # 2026-06-19..21, which this period passes but does not end in
    d = deadline(at(2026, 5, 10), [(None, 1), (15, None)], False, CAL)
    assert d.last_day == dt.date(2026, 6, 25)


def test_day_end_is_midnight_china_time_and_dates_are_china_dates() -> None:
    assert local_date(at(2026, 3, 10, hour=23) + 3600) == dt.date(2026, 3, 11)  # midnight in Beijing
    assert dt.datetime.fromtimestamp(day_end(dt.date(2026, 3, 10)), TZ).isoformat() == "2026-03-11T00:00:00+08:00"


def test_a_date_outside_the_known_calendar_is_a_visible_warning() -> None:
    assert CAL.rest_day(dt.date(2030, 5, 1)) is None
    d = deadline(at(2030, 4, 20), [(11, None)], False, CAL)
    assert d.last_day == dt.date(2030, 5, 1)  # not moved: the calendar does not say
    assert d.warnings and "2030-05-01" in d.warnings[0] and "holiday calendar" in d.warnings[0]
    assert "节假日" in d.warnings[0]
    assert deadline(at(2030, 4, 20), [(11, None)], True, CAL).warnings == ()  # custody: no holiday rule


def test_a_deployment_extends_the_calendar_for_later_years(tmp_path: Path) -> None:
    f = tmp_path / "holidays.yaml"
    f.write_text("years: [2030]\nholidays: [2030-05-01, 2030-05-02, 2030-05-03]\nworkdays: [2030-05-05]\n")
    cal = HolidayCalendar.from_file(f)
    d = deadline(at(2030, 4, 20), [(11, None)], False, cal)
    # Wed 1st to Fri 3rd holidays, Sat 4th a weekend day of a year the file describes, Sun 5th made a workday
    assert d.last_day == dt.date(2030, 5, 5) and d.warnings == ()
    assert cal.rest_day(dt.date(2030, 5, 5)) is False  # an adjusted workday of the file
    assert cal.rest_day(dt.date(2030, 5, 4)) is True  # a Saturday of a year the file describes


def test_holiday_file_mistakes_name_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read the holiday file"):
        HolidayCalendar.from_file(tmp_path / "missing.yaml")
    f = tmp_path / "h.yaml"
    f.write_text("holidays: [\"2030-13-01\"]\n")
    with pytest.raises(ConfigError, match=r"h\.yaml: holidays\[0\]: expected a date"):
        HolidayCalendar.from_file(f)
    f.write_text("holidays: [2030-13-01]\n")
    with pytest.raises(ConfigError, match=r"h\.yaml: not valid YAML or not a date"):
        HolidayCalendar.from_file(f)
    f.write_text("holiday: []\n")
    with pytest.raises(ConfigError, match="expected the keys holidays, workdays and years"):
        HolidayCalendar.from_file(f)
