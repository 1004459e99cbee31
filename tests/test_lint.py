"""The code stays ruff-clean and mypy-clean: CI enforces what the README promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "gateway", "adapters"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_layers_hold() -> None:
    """The import-linter contracts in pyproject.toml: layers one way, adapters see their context only."""
    lint = Path(sys.executable).parent / "lint-imports"
    r = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "0 broken" in r.stdout, r.stdout + r.stderr


def test_adapters_receive_no_gateway() -> None:
    """No adapter takes the gateway or swallows unknown keywords: its factory's signature says what it uses."""
    r = subprocess.run(["grep", "-rn", r"gateway: Any\|\*\*_", "adapters/"], cwd=ROOT, capture_output=True, text=True)
    assert r.stdout == "", r.stdout
