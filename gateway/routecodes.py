"""Routes and agency roles name codes of the standard's lists: a misspelt code is a route that never matches.

A route on `arrest-decision` (the standard says `approve-arrest` / `refuse-arrest`) is valid YAML and
matches no record, so a ruling sent under the example configuration went nowhere while
`gateway check-config` called it valid. The configuration is checked against the code lists of
every standard version it accepts (standards/case-exchange/vN/codes/*.csv), naming the key and the
nearest listed code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from gateway.rules import code_list, nearest

ROLE_OTHER = "other"  # an agency the standard has no role for (it still sends and receives records)


class _Route(Protocol):
    stage: str
    action: str | None


def _listed(name: str, versions: Sequence[str]) -> set[str]:
    return {code for major in versions for code in code_list(name, major)}


def _words(code: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", code.lower())) - {"", "of", "for", "the"}


def suggest(value: str, listed: Iterable[str]) -> str:
    """The listed codes sharing most words with `value` (`arrest-decision`: approve-arrest, refuse-arrest),
    else the one difflib finds most alike."""
    codes = sorted(listed)
    shared = {c: len(_words(c) & _words(value)) for c in codes}
    best = max(shared.values(), default=0)
    if best == 0:
        return nearest(value, codes)
    return ", ".join(c for c in codes if shared[c] == best)


def unknown(key: str, value: str, listed: Iterable[str], what_en: str, what_zh: str) -> str:
    """One line naming the key, the code, and the nearest listed ones, in Chinese then English."""
    near = suggest(value, listed)
    return (f"{key}: 标准的{what_zh}代码表中没有“{value}”（最接近的：{near}） / '{value}' is not in the standard's "
            f"code list of {what_en} (nearest: {near})")


def route_problems(routes: Sequence[_Route], versions: Sequence[str]) -> list[str]:
    """A line for each route stage or action code no accepted standard version lists."""
    stages, actions = _listed("stages", versions), _listed("actions", versions)
    out = []
    for i, r in enumerate(routes):
        if r.stage not in stages:
            out.append(unknown(f"routes[{i}].stage", r.stage, stages, "stages", "诉讼阶段"))
        if r.action is not None and r.action not in actions:
            out.append(unknown(f"routes[{i}].action", r.action, actions, "actions", "业务动作"))
    return out


def headline(n: int) -> str:
    return (f"{n} 处路由代码不在标准代码表中，这些路由不会匹配任何记录 / {n} route code{'s are' if n > 1 else ' is'} "
            "not in the standard's code lists, so no record would match")


def roles() -> set[str]:
    """Agency roles the configuration accepts: the standard's list, and `other`."""
    return {*code_list("agency-roles"), ROLE_OTHER}


def role_problem(value: object) -> str | None:
    """Why an agency's role is not accepted (None: it is)."""
    if isinstance(value, str) and value in roles():
        return None
    return unknown("role", str(value), roles(), "agency roles (or other)", "机构角色")
