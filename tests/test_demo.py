"""`gateway demo` as a user runs it: a subprocess whose cases must all arrive, stopped by time or Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gateway.store.sqlite import SQLiteStore

DEMO = [sys.executable, "-c", "from gateway.cli import main; main()", "demo"]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


def delivered_per_destination(data_dir: Path) -> dict[str, int]:
    async def count() -> dict[str, int]:
        store = SQLiteStore(data_dir / "gateway.db", node="check", durability="normal")
        await store.open()
        try:
            depths = await store.queue_depths()
            return {q["destination"]: q["count"] for q in depths if q["state"] == "delivered"}
        finally:
            await store.close()

    return asyncio.run(count())


def test_demo_cases_travel_police_procuratorate_court(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    proc = subprocess.run([*DEMO, "--cases", "3", "--duration", "30", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=60, env=ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 of 3 cases went police -> procuratorate -> court -> judgment to both" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "operator key:" in proc.stdout and "/api/v1/queues" in proc.stdout
    # the gateway's own records agree: per case one transfer and one judgment to PROC, one indictment
    # to COURT and one judgment to POLICE, each delivered once
    assert delivered_per_destination(data) == {"PROC": 6, "COURT": 3, "POLICE": 3}
    config = (data / "demo.yaml").read_text()
    assert "env: DEMO_OPERATOR_KEY" in config
    key = proc.stdout.split("operator key:")[1].split()[0]
    assert key not in config, "keys must not be written to the configuration"


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    p = subprocess.Popen([*DEMO, "--cases", "2", "--data-dir", str(data)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout is not None
    try:
        seen = 0
        end = time.monotonic() + 30
        while seen < 8 and time.monotonic() < end:  # 4 deliveries per case
            line = p.stdout.readline()
            assert line, "the demo ended before its cases arrived"
            seen += " delivered " in line
        assert seen == 8
        p.send_signal(signal.SIGINT)
        out, errs = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out + errs
    assert "2 of 2 cases" in out and "Traceback" not in errs


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run([*DEMO, "--cases", "1", "--duration", "5", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, env=ENV)
    assert proc.returncode == 1
    assert "not made by the demo" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
