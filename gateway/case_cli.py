"""`gateway case NUMBER`: a case's timeline from a running gateway, as a table an officer reads
(Chinese first, English second)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer
from rich.text import Text

from gateway import cli
from gateway.cli import Api, ConfigOpt, KeyOpt, UrlOpt, _when, add_row, table


def _named(code: str, names: dict[str, str] | None) -> str:
    return f"{names['zh']} {names['en']}" if names else code


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    return f"{n / 1024:.1f} KB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MB"


def _status(r: dict[str, Any]) -> str:
    if r["blocked"]:
        return "已拦截 blocked: " + ", ".join(r["rules"])
    return "退回 returned" if r["returned"] else "已接收 accepted"


def case(number: Annotated[str, typer.Argument(help="the unified case number")],
         config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Show a case's timeline: every record in order, delivered and answered times, blocked and returned records."""
    r = Api(url, config, key).call("GET", f"/api/v1/cases/{quote(number, safe='')}")
    t = table(f"案件时间线 case timeline {r['case_number']}", "#", "收到 received", "阶段 stage", "动作 action",
              "发送 → 接收 sender → receivers", "送达 delivered", "答复 answered", "文书 documents",
              "卷宗 dossier", "状态 status")
    for i, e in enumerate(r["records"], 1):
        delivered = "\n".join(f"{x} {_when(at)}" for x, at in e["delivered"].items()) or "-"
        answered = f"{_when(e['answered_at'])}\n{e['answered_by']}" if e["answered_by"] else "-"
        docs = "\n".join(f"{_named(d['type'], d['name'])} {d['number']}" for d in e["documents"]) or "-"
        dossier = f"{e['files']} 个文件 files, {_size(e['file_bytes'])}" if e["files"] else "-"
        add_row(t, i, _when(e["received_at"]), _named(e["stage"], e["stage_name"]),
                _named(e["action"], e["action_name"]), f"{e['sender']} → {', '.join(e['receivers']) or '-'}",
                delivered, answered, docs, dossier, _status(e))
    cli.out.print(t)
    cli.out.print(Text(f"{len(r['records'])} 条记录 records"))
