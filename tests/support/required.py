"""A missing system package or server skips a test with the reason; under CI=true it fails it,
because CI must never pass by skipping."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

INSTALL = "run: bash tests/system-packages.sh"


def unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)
