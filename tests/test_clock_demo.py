"""`gateway demo --time-scale N`: the unanswered arrest request, its warnings and the late answer, as printed."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gateway import clockdemo


def test_clock_demo_shows_the_warnings_then_the_late_answer(tmp_path: Path) -> None:
    console = Console(record=True, width=200, no_color=True)
    assert clockdemo.run(tmp_path / "demo", 200000, console) == 0
    text = console.export_text()
    order = ["PROC 收到 / received the arrest request", "PROC 收到期限临期提醒", "PROC-CMO 收到期限临期提醒",
             "PROC 收到期限超期提醒", "PROC-CMO 收到期限超期提醒", "clock-answered-late: 逾期"]
    at = [text.index(s) for s in order]
    assert at == sorted(at), text
    assert "jc:DefectNotice" in text  # the warning in the procuratorate's own format
    assert "state stopped" in text
