"""Reading a YAML file a person wrote (configuration, pack, time limits): one place that turns an
unreadable file or a YAML mistake into an error naming the file and the line, never a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

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
