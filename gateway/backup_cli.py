"""`gateway backup` and `gateway restore`: the operator's two disaster-recovery commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from gateway.backup import backup, restore
from gateway.config import load_config
from gateway.errors import GatewayError

console = Console()
ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="the gateway's YAML configuration")]


def backup_command(config: ConfigOpt,
                   to: Annotated[Path, typer.Option("--to", help="a new or empty folder for the backup")]) -> None:
    """Back up the node while it runs: database (SQLite online backup / pg_dump), files and signing key."""
    try:
        m = backup(load_config(config), to)
    except (GatewayError, OSError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    head = m["head"]
    point = f"日志至第 {head['seq']} 条 / log up to entry {head['seq']} ({head['time']})" if head else "pg_dump"
    console.print(f"备份完成 / backup written: {to} — {point}; key {m['key_id']}")


def restore_command(
    config: ConfigOpt,
    source: Annotated[Path, typer.Option("--from", help="the backup folder")],
) -> None:
    """Restore a backup onto a fresh data folder, check its log, and record what was lost after it."""
    try:
        r = restore(load_config(config), source)
    except (GatewayError, OSError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    v = r.verdict
    console.print(f"恢复的日志 / restored log: {v.summary()}")
    for n in r.notes:
        console.print(n)
    if not v.ok:
        raise typer.Exit(1)
    if r.lost:
        a, b = r.lost
        console.print(f"缺口 / gap: 见证节点持有至第 {b} 条的检查点；第 {a} 至 {b} 条在备份之后，已丢失 / "
                      f"the witness holds "
                      f"checkpoints up to entry {b}: entries {a} to {b} came after the backup point and are lost. "
                      f"请发送方重发备份时间 {r.backup['taken_at']} 之后获得回执的记录 / senders resend what they "
                      f"hold receipts for after {r.backup['taken_at']}.")
    else:
        console.print("见证节点未见备份点之后的检查点 / the witness holds nothing after the backup point")
