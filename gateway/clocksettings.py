"""The `clocks:` section of the configuration: which limits, which holidays, when to warn, whom to tell.

Kept apart from `config.py` so the clocks' settings and their checks live in one place.
`setup()` reads the limits and the holiday file once; every problem is a ConfigError naming the
file and the key, so `gateway check-config` reports it and the node does not start half-configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway import timelimits
from gateway.errors import ConfigError
from gateway.lawcalendar import HolidayCalendar


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Approaching(_Strict):
    """When a running clock is "approaching": this many days, or this share of its period, left."""

    days: float | None = Field(None, gt=0, description="warn when this many days are left")
    percent: float | None = Field(None, gt=0, lt=100, description="warn when this share of the period is left")

    @model_validator(mode="after")
    def _one(self) -> Approaching:
        if (self.days is None) == (self.percent is None):
            raise ValueError("expected exactly one of days or percent / 应当写明 days 或 percent 之一")
        return self

    def warn_at(self, started_at: float, due_at: float) -> float:
        if self.days is not None:
            return max(started_at, due_at - self.days * 86400)
        assert self.percent is not None
        return due_at - (due_at - started_at) * self.percent / 100


class Supervision(_Strict):
    """Supervisors told of every warning of the clocks selected (absent keys: any)."""

    limit: str | None = Field(None, description="a limit id of time-limits.yaml, e.g. arrest-decision")
    agency: str | None = Field(None, description="the responsible agency's code")
    to: list[str] = Field(min_length=1, description="codes of the supervising agencies (each with an outbound "
                                                    "channel), e.g. the procuratorate's case supervision office")


class ClockSettings(_Strict):
    """Statutory time-limit clocks: started when a starting record is delivered, warned before and at the end."""

    enabled: bool = Field(True, description="keep clocks and send warnings")
    limits_file: str | None = Field(None, description="time limits file; default: the standard's time-limits.yaml")
    limits: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="this deployment's values by limit id, over the file's, e.g. "
        "`arrest-decision: {length: {days: 7}, custody: true}`")
    holidays_file: str | None = Field(
        None, description="YAML with `holidays`, `workdays` (dates) and `years` it fully describes, for years the "
        "chinese-calendar library does not know yet")
    approaching: Approaching = Field(default_factory=lambda: Approaching(days=2),
                                     description="when the approaching warning is sent")
    supervisors: list[Supervision] = Field(default_factory=list, description="who else hears of warnings")
    scan_seconds: float = Field(60.0, gt=0, description="how often a node looks for clocks due a warning")
    batch: int = Field(200, ge=1, le=5000, description="warnings issued per scan at most")


@dataclass(frozen=True)
class ClockSetup:
    settings: ClockSettings
    limits: timelimits.TimeLimits
    calendar: HolidayCalendar

    def supervisors(self, limit_id: str, agency: str) -> list[str]:
        out: list[str] = []
        for s in self.settings.supervisors:
            if s.limit in (None, limit_id) and s.agency in (None, agency):
                out += [a for a in s.to if a not in out and a != agency]
        return out


def setup(settings: ClockSettings, source: str, base: Path, agencies_out: set[str]) -> ClockSetup:
    """Read the limits and holidays and check the supervisors, or raise a ConfigError saying where."""
    lf = Path(settings.limits_file) if settings.limits_file else None
    if lf is not None and not lf.is_absolute():
        lf = base / lf
    limits = timelimits.load(lf, settings.limits, override_source=source)
    hf = Path(settings.holidays_file) if settings.holidays_file else None
    if hf is not None and not hf.is_absolute():
        hf = base / hf
    cal = HolidayCalendar.from_file(hf)
    ids = {x.id for x in limits.limits}
    for i, s in enumerate(settings.supervisors):
        if s.limit is not None and s.limit not in ids:
            raise ConfigError(f"{source}: clocks.supervisors[{i}].limit: expected a limit id ({', '.join(sorted(ids))})"
                              f", found {s.limit} / 应当为期限编号")
        for j, code in enumerate(s.to):
            if code not in agencies_out:
                raise ConfigError(f"{source}: clocks.supervisors[{i}].to[{j}]: expected an agency with an outbound "
                                  f"channel, found {code} / 应当为配置了发送通道的单位代码")
    return ClockSetup(settings, limits, cal)
