"""Library threads that fail (paramiko's read-ahead when a connection shuts) end in the log, not as
a traceback on the operator's console."""

from __future__ import annotations

import logging
import threading

import pytest

from gateway.runtime import _log_thread_failure


def _run_failing_thread(exc: BaseException) -> None:
    def boom() -> None:
        raise exc

    old = threading.excepthook
    threading.excepthook = _log_thread_failure
    try:
        t = threading.Thread(target=boom, name="sftp-prefetch")
        t.start()
        t.join()
    finally:
        threading.excepthook = old


def test_closed_connection_in_a_library_thread_is_one_warning_line(
        caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        _run_failing_thread(OSError("Socket is closed"))
    [rec] = [r for r in caplog.records if r.name == "gateway"]
    assert rec.levelno == logging.WARNING and "sftp-prefetch" in rec.getMessage()
    assert "Socket is closed" in rec.getMessage() and rec.exc_info is None
    assert "Traceback" not in capsys.readouterr().err


def test_a_real_defect_in_a_thread_keeps_its_traceback_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        _run_failing_thread(ZeroDivisionError("x"))
    [rec] = [r for r in caplog.records if r.name == "gateway"]
    assert rec.levelno == logging.ERROR and rec.exc_info is not None and rec.exc_info[0] is ZeroDivisionError
