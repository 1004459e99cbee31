"""Reading a YAML file a person wrote (configuration, pack, time limits): one place that turns an
unreadable file, a YAML mistake or a value its model refuses into an error naming the file and the
line or key, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.errors import ConfigError


def read(path: Path, what: str, what_zh: str = "") -> Any:
    """The file's YAML data; ConfigError names the file (and the line) with what it was to hold."""
    zh = f" / 无法读取{what_zh}" if what_zh else ""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the {what}: {e.strerror}{zh}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f", line {mark.line + 1}" if mark else ""
        bad = " / 不是有效的YAML" if what_zh else ""
        raise ConfigError(f"{path}{where}: not valid YAML{bad}: {getattr(e, 'problem', e)}") from None


def invalid(e: ValidationError, source: object, *, unknown: str, missing: str | None = None) -> ConfigError:
    """What the file's model refused, a line a problem: the file, the key path and what was expected;
    `unknown` (and `missing`) word the commonest mistakes for the file's readers."""
    lines = []
    for err in e.errors():
        key = ".".join(str(x) for x in err["loc"]) or "(top)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = unknown
        elif err["type"] == "missing" and missing is not None:
            msg = missing
        lines.append(f"{source}: {key}: {msg}")
    return ConfigError("\n".join(lines))
