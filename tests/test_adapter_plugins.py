"""Adapters come from entry points: the built-in ones, and one installed from another package."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import adapters
from gateway.config import parse_config
from gateway.errors import ConfigError
from gateway.runtime import Gateway

from .support.config import base_config
from .support.records import record

PACKAGE = Path(__file__).parent / "fixtures" / "adapter_pkg"


def test_built_in_adapters_are_registered_through_the_entry_point_group() -> None:
    assert {"memory", "http", "soap", "sftp", "folder"} <= set(adapters.builtin_names())
    for name in adapters.builtin_names():
        spec = adapters.load(name)
        assert spec.name == name and spec.summary
        assert spec.inbound or spec.outbound


def test_an_unknown_adapter_names_the_known_ones() -> None:
    data = base_config(Path("/nonexistent"))
    data["agencies"][2]["outbound"]["adapter"] = "carrier-pigeon"
    with pytest.raises(ConfigError) as e:
        parse_config(data)
    assert "unknown adapter 'carrier-pigeon'" in str(e.value) and "soap" in str(e.value)


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixture package installed into a folder of its own and put on the path, as pip would."""
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(PACKAGE)], check=True, capture_output=True)
    monkeypatch.syspath_prepend(str(site))
    adapters.load.cache_clear()
    yield
    adapters.load.cache_clear()


async def test_an_adapter_from_another_package_delivers(installed: None, tmp_path: Path) -> None:
    assert "echo-file" in adapters.names() and "echo-file" not in adapters.builtin_names()
    out = tmp_path / "echoed"
    data = base_config(tmp_path / "data")
    data["agencies"][1]["outbound"] = {"name": "proc-out", "adapter": "echo-file", "settings": {"path": str(out)}}
    with pytest.raises(ConfigError, match=r"agencies\[1\]\.outbound\.settings\.path: Field required"):
        bad = base_config(tmp_path / "data")
        bad["agencies"][1]["outbound"] = {"name": "proc-out", "adapter": "echo-file", "settings": {"colour": 1}}
        parse_config(bad)
    gw = Gateway(parse_config(data))
    await gw.start()
    try:
        receipt = await gw.inbound["police-in"].submit(record(case="PLUGIN-1"))  # type: ignore[attr-defined]
        assert receipt.destinations == ("PROC",)
        target = out / "PROC-PLUGIN-1.xml"
        for _ in range(500):
            if target.exists():
                break
            await asyncio.sleep(0.01)
        assert b"PLUGIN-1" in target.read_bytes()
    finally:
        await gw.stop()
