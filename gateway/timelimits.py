"""Statutory time limits as data: the standard's `time-limits.yaml`, with a deployment's overrides.

The file says which record starts a clock (on its confirmed delivery), which answers stop it, how
long it runs, how it is extended and restarted, and which agency is responsible while it runs.
Every code in it is checked against the standard's code lists when it is read: a limits file with
an unknown code, a zero length or an unbounded extension stops `gateway check-config` and the
node's start with the file, the key and what was expected, in Chinese and English.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from gateway import yamlfile
from gateway.errors import ConfigError
from gateway.rules import code_list


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class Length(_Strict):
    """A period in whole days or whole calendar months (exactly one of the two)."""

    days: int | None = None
    months: int | None = None

    @model_validator(mode="after")
    def _one_positive(self) -> Length:
        given = [v for v in (self.days, self.months) if v is not None]
        if len(given) != 1:
            raise ValueError("expected exactly one of days or months / 应当写明天数(days)或月数(months)之一")
        if given[0] <= 0:
            raise ValueError(f"expected a length of at least 1, found {given[0]} / "
                             f"期限长度应当至少为1，实际为{given[0]}")
        return self

    def text(self) -> tuple[str, str]:
        """(Chinese, English) of the length, for notices and the log."""
        if self.days is not None:
            return f"{self.days}日", f"{self.days} day{'s' if self.days != 1 else ''}"
        return f"{self.months}个月", f"{self.months} month{'s' if self.months != 1 else ''}"


class Extension(_Strict):
    """A record (by its action, or a document it carries) that extends a running clock."""

    action: str | None = None
    document: str | None = None
    by: Length
    max_times: int = Field(ge=1, description="how often the clock may be extended this way")

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_times" not in data:
            raise ValueError("an extension without a bound: expected max_times (how often it may be granted) / "
                             "延长未设上限：应当写明 max_times（最多延长次数）")
        return data

    @model_validator(mode="after")
    def _trigger(self) -> Extension:
        if (self.action is None) == (self.document is None):
            raise ValueError("expected exactly one of action or document (what extends the clock) / "
                             "应当写明延长依据：action（业务动作）或 document（文书类型）之一")
        return self

    def matches(self, action: str, documents: frozenset[str]) -> bool:
        return action == self.action if self.action else self.document in documents


class Condition(_Strict):
    """A variant applies when the starting record carries this document type."""

    document: str


class Variant(_Strict):
    """Another length for some cases of the same limit (plea cases, the expedited procedure)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Names
    when: Condition
    length: Length
    extensions: tuple[Extension, ...] = ()


class Limit(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Names
    law: str = ""
    starts: tuple[str, ...] = Field(min_length=1)
    stops: tuple[str, ...] = Field(min_length=1)
    length: Length
    extensions: tuple[Extension, ...] = ()
    restarts: tuple[str, ...] = ()
    max_periods: int | None = Field(None, ge=1)
    variants: tuple[Variant, ...] = ()
    responsible: str
    custody: bool = False

    @model_validator(mode="after")
    def _stop_is_not_start(self) -> Limit:
        same = sorted(set(self.starts) & set(self.stops))
        if same:
            raise ValueError(f"stops: {', '.join(same)} also starts the clock; expected a stop action other than "
                             f"the start / 停止动作不能与起算动作相同：{'、'.join(same)}")
        return self


@dataclass(frozen=True)
class Terms:
    """What one clock runs by: the limit or the variant the starting record chose."""

    limit: Limit
    variant: Variant | None

    @property
    def key(self) -> str:
        return f"{self.limit.id}/{self.variant.id}" if self.variant else self.limit.id

    @property
    def name(self) -> Names:
        return self.variant.name if self.variant else self.limit.name

    @property
    def length(self) -> Length:
        return self.variant.length if self.variant else self.limit.length

    @property
    def extensions(self) -> tuple[Extension, ...]:
        return self.variant.extensions if self.variant else self.limit.extensions


class TimeLimits(_Strict):
    version: str
    limits: tuple[Limit, ...]

    @model_validator(mode="after")
    def _unique(self) -> TimeLimits:
        ids = [limit.id for limit in self.limits]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"limit id {', '.join(dup)} appears twice / 期限编号重复：{'、'.join(dup)}")
        return self

    def get(self, limit_id: str) -> Limit:
        for limit in self.limits:
            if limit.id == limit_id:
                return limit
        raise KeyError(limit_id)

    def terms(self, key: str) -> Terms:
        """The terms a stored clock runs by, from its key (`limit` or `limit/variant`)."""
        limit_id, _, variant = key.partition("/")
        limit = self.get(limit_id)
        return Terms(limit, next((v for v in limit.variants if v.id == variant), None) if variant else None)

    def started_by(self, action: str) -> list[Limit]:
        return [limit for limit in self.limits if action in limit.starts]

    def stopped_by(self, action: str) -> list[Limit]:
        return [limit for limit in self.limits if action in limit.stops]

    def extending(self, action: str, documents: frozenset[str]) -> list[Limit]:
        return [limit for limit in self.limits
                if any(e.matches(action, documents) for e in (*limit.extensions,
                                                              *(x for v in limit.variants for x in v.extensions)))]


def standard_file(major: str = "1") -> Path:
    with resources.as_file(resources.files("standards") / "case-exchange" / f"v{major}" / "time-limits.yaml") as p:
        return Path(p)


def _merge(base: Any, over: Any) -> Any:
    """A deployment's override on the standard's file: limits by id, other keys replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return copy.deepcopy(over)


def _codes_problems(tl: TimeLimits) -> list[tuple[str, str, str]]:
    """(key, expected in English, expected in Chinese) for every code the lists do not know."""
    actions, documents, roles = code_list("actions"), code_list("document-types"), code_list("agency-roles")
    out: list[tuple[str, str, str]] = []

    def need(key: str, value: str | None, table: dict[str, tuple[str, str]], what: str, what_zh: str) -> None:
        if value is not None and value not in table:
            out.append((key, f"an {what} code of the standard (codes/{what.replace(' ', '-')}s.csv), found "
                             f"'{value}'", f"标准代码表中的{what_zh}代码，实际为“{value}”"))

    for i, limit in enumerate(tl.limits):
        at = f"limits[{i}]"
        for field in ("starts", "stops", "restarts"):
            for j, a in enumerate(getattr(limit, field)):
                need(f"{at}.{field}[{j}]", a, actions, "action", "业务动作")
        need(f"{at}.responsible", limit.responsible, roles, "agency role", "单位类型")
        groups = [(f"{at}.extensions", limit.extensions)]
        for vi, v in enumerate(limit.variants):
            need(f"{at}.variants[{vi}].when.document", v.when.document, documents, "document type", "文书类型")
            groups.append((f"{at}.variants[{vi}].extensions", v.extensions))
        for where, exts in groups:
            for ei, e in enumerate(exts):
                need(f"{where}[{ei}].action", e.action, actions, "action", "业务动作")
                need(f"{where}[{ei}].document", e.document, documents, "document type", "文书类型")
    return out


def parse(data: Any, source: str, overrides: dict[str, Any] | None = None) -> TimeLimits:
    """Validate the limits (with overrides keyed by limit id); a ConfigError names file, key, expectation."""
    if not isinstance(data, dict) or not isinstance(data.get("limits"), list):
        raise ConfigError(f"{source}: (top): expected a mapping with `version` and a list `limits` / "
                          "应当包含 version 和 limits 列表")
    raw = copy.deepcopy(data)
    for limit_id, over in (overrides or {}).items():
        idx = next((i for i, x in enumerate(raw["limits"]) if isinstance(x, dict) and x.get("id") == limit_id), None)
        if idx is None:
            known = ", ".join(str(x.get("id")) for x in raw["limits"] if isinstance(x, dict))
            raise ConfigError(f"{source}: clocks.limits.{limit_id}: expected the id of a limit of the standard "
                              f"({known}) / 应当为标准中的期限编号（{known}）")
        raw["limits"][idx] = _merge(raw["limits"][idx], over)
    try:
        tl = TimeLimits.model_validate(raw)
    except ValidationError as e:
        raise yamlfile.invalid(e, source, unknown="unknown key (check its spelling) / 未知的键（请检查拼写）",
                               missing="this key is required / 缺少此键") from None
    problems = _codes_problems(tl)
    if problems:
        raise ConfigError("\n".join(f"{source}: {key}: expected {en} / 应当为{zh}" for key, en, zh in problems))
    return tl


def load(path: Path | None = None, overrides: dict[str, Any] | None = None,
         override_source: str = "") -> TimeLimits:
    """The limits of a file (default: the standard's), with a deployment's overrides applied."""
    p = path or standard_file()
    data = yamlfile.read(p, "time limits", "期限文件")
    source = f"{p}" + (f" (with the overrides of {override_source})" if overrides and override_source else "")
    return parse(data, source, overrides)


@cache
def standard_limits() -> TimeLimits:
    return load()
