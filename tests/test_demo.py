"""`gateway demo` as a user runs it: a subprocess whose cases all go the full flow, stopped by time or Ctrl-C.

The demo starts a real OpenSSH sshd for the police's SFTP drop: without one (and no way to install
it) these tests skip, except under CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.audit.signing import Signer
from gateway.config import load_config
from gateway.sim.sshd import ensure_sshd
from gateway.stats import service
from gateway.store import make_store
from gateway.store.sqlite import SQLiteStore
from gateway.store.stats import day_of

DEMO = [sys.executable, "-c", "from gateway.cli import main; main()", "demo"]
ENV = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}


@pytest.fixture(autouse=True)
def _sshd_available() -> None:
    why = ensure_sshd() or (None if os.geteuid() == 0 else "the demo's sshd logs in as root; not root here")
    if why and os.environ.get("CI") == "true":
        pytest.fail(f"the demo needs OpenSSH sshd in CI: {why}")
    if why:
        pytest.skip(why)


def delivered_per_destination(data_dir: Path) -> dict[str, int]:
    async def count() -> dict[str, int]:
        store = SQLiteStore(data_dir / "gateway.db", node="check", durability="normal")
        await store.open()
        try:
            depths = await store.queue_depths()
            return {q.destination: q.count for q in depths if q.state == "delivered"}
        finally:
            await store.close()

    return asyncio.run(count())


def statistics_page(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """GET /api/v1/stats and /api/v1/rankings as the console's statistics page first asks them."""
    for name in ("POLICE", "PROC", "COURT", "JUSTICE", "OPERATOR", "AUDITOR"):
        monkeypatch.setenv(f"DEMO_{name}_KEY", f"{name.lower()}-key-unused-here")
    cfg = load_config(data_dir / "demo.yaml")
    today = day_of(time.time())
    week_ago = day_of(time.time() - 6 * 86400)

    async def read() -> dict[str, Any]:
        store = make_store(cfg)
        await store.open()
        try:
            return {"stats": await service.stats(store, cfg, week_ago, today),
                    "ranking": await service.rankings(store, cfg, today)}
        finally:
            await store.close()

    return asyncio.run(read())


def test_demo_runs_the_full_case_flow_with_a_defect_notice_and_a_return(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "demo"
    proc = subprocess.run([*DEMO, "--cases", "3", "--duration", "40", "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=90, env=ENV)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "3 of 3 cases went the full flow" in out
    assert "Traceback" not in out + proc.stderr
    assert "operator key:" in out and "/api/v1/queues" in out
    assert "defect notices read by the police: 1; returns for supplementary investigation: 1" in out
    # the police dropped over SFTP; the procuratorate spoke SOAP; court and justice bureau HTTP
    assert "SFTP drop  submitted" in out and "SOAP       delivered" in out
    assert " -> JUSTICE " in out and "offender-received" in out
    # dossier files change protocol on the way: SFTP drop -> SOAP inline, SOAP inline -> HTTP multipart
    assert "transfer-for-prosecution (3 dossier files, receipt sent)" in out
    assert "indictment (2 dossier files, receipt sent)" in out and "console: http://127.0.0.1:" in out
    # the gateway's own records agree: per case PROC gets the arrest request, the transfer and the
    # judgment (+1 resent transfer), POLICE the approval and the judgment (+ the return and the
    # defect notice), COURT the indictment and the receipt, JUSTICE the execution notice
    assert delivered_per_destination(data) == {"PROC": 10, "POLICE": 8, "COURT": 6, "JUSTICE": 3}
    # the defect notice reached the police in its own format (GB18030 THTZ) naming the blocked case
    blocked = out.split(": defective transfer")[0].split()[-1]
    notices = [f.read_bytes() for f in (data / "police-sftp" / "inbox" / "read").glob("*.xml")
               if b"<THTZ" in f.read_bytes()]
    assert len(notices) == 1 and blocked.encode() in notices[0] and b"GB18030" in notices[0][:60]
    # the return went to the police and the resent transfer reached the procuratorate
    assert "PROC -> POLICE" in out and "return-supplementary-investigation (file read)" in out
    # the day's ranking closes the run, one line per role
    assert "今日排名 / ranking of" in out and "  police: 1. POLICE" in out and "  court: 1. COURT" in out
    # the console's statistics page has the run's figures: what its calls answer with its default range
    # (the last seven days) and ranking day (today), read by the API's own service from the demo's store
    page = statistics_page(data, monkeypatch)
    for a in page["stats"]["agencies"]:
        assert a["total"]["received"] > 0 and a["total"]["handover_ms_p50"] is not None, a
        assert sum(d["sent"] for d in a["days"]) == a["total"]["sent"]
    assert sum(a["total"]["sent"] for a in page["stats"]["agencies"]) >= delivered_per_destination(data)["PROC"]
    units = [u for r in page["ranking"]["roles"] for u in r["units"]]
    assert {u["agency"] for u in units} == {"POLICE", "PROC", "COURT", "JUSTICE"}
    assert not any(u["zero_activity"] for u in units) and all(u["records"] > 0 for u in units), units
    late = float(out.split("slowest police drop -> procuratorate: ")[1].split()[0])
    assert late < 10, "a police drop waited too long before reaching the procuratorate"
    pin = Signer.load_or_create(data / "signing-key.pem").key_id  # the fingerprint the operator publishes
    verify = subprocess.run([*DEMO[:-1], "audit", "verify", "--config", str(data / "demo.yaml"),
                             "--key-fingerprint", pin],
                            capture_output=True, text=True, timeout=60, env=ENV)
    assert verify.returncode == 0 and "INTACT" in verify.stdout, verify.stdout + verify.stderr
    config = (data / "demo.yaml").read_text()
    assert "env: DEMO_OPERATOR_KEY" in config
    key = out.split("operator key:")[1].split()[0]
    assert key not in config, "keys must not be written to the configuration"


def interrupt(data: Path, cases: int, enough: Callable[[list[str]], bool]) -> tuple[int, str, str, float]:
    """Run the demo until `enough(lines so far)`, then Ctrl-C: exit code, stdout, stderr, seconds to stop."""
    p = subprocess.Popen([*DEMO, "--cases", str(cases), "--data-dir", str(data)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    assert p.stdout is not None
    lines: list[str] = []
    try:
        end = time.monotonic() + 60
        while not enough(lines) and time.monotonic() < end:
            line = p.stdout.readline()
            assert line, "the demo ended before it was interrupted"
            lines.append(line)
        assert enough(lines)
        p.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, errs = p.communicate(timeout=20)
        return p.returncode, "".join(lines) + out, errs, time.monotonic() - started
    finally:
        if p.poll() is None:
            p.kill()


def sshd_running(data: Path) -> bool:
    """Whether an sshd started with this demo's config is still alive (looked up by its pid file)."""
    pid_file = data / "sshd" / "sshd.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text().split()[0])
    cmdline = Path(f"/proc/{pid}/cmdline")
    return cmdline.exists() and str(data / "sshd") in cmdline.read_text(errors="replace")


def test_demo_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    # 8 deliveries per case, and for the second case a defect notice, a return and a resent transfer
    code, out, errs, _ = interrupt(tmp_path / "demo", 2, lambda ls: sum(" delivered " in x for x in ls) >= 19)
    assert code == 0, out + errs
    assert "2 of 2 cases" in out and "Traceback" not in errs
    assert not sshd_running(tmp_path / "demo"), "the demo's sshd outlived it"


def test_demo_interrupted_mid_flow_stops_quickly_and_leaves_nothing_running(tmp_path: Path) -> None:
    code, out, errs, took = interrupt(tmp_path / "demo", 5, lambda ls: any(" submitted " in x for x in ls))
    assert "Traceback" not in out + errs and "of 5 cases went the full flow" in out
    assert took < 10, f"stopping took {took:.1f} s"
    assert not sshd_running(tmp_path / "demo"), "the demo's sshd outlived it"


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = subprocess.run([*DEMO, "--cases", "1", "--duration", "5", "--data-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=30, env=ENV)
    assert proc.returncode == 1
    assert "not made by the demo" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"
