"""`gateway stats ...`: figures per agency, the day's ranking, a rebuild from the raw tables, and the
monthly export, straight from the configured store (no running node needed)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.stats import export, service
from gateway.stats.report import StatsError
from gateway.stats.timelimits import FIELDS
from gateway.store import make_store
from gateway.store.base import Store

T = TypeVar("T")
stats_app = typer.Typer(help="统计与排名 / statistics per agency, daily rankings, monthly export")
out = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", envvar="GATEWAY_CONFIG", exists=True,
                                                dir_okay=False, help="the gateway's YAML configuration")]


def _fail(message: str, code: int = 1) -> None:
    err.print(Text(f"错误 / error: {message}", style="bold red"))
    raise typer.Exit(code)


def _with_store(config: Path | None, fn: Callable[[Store, GatewayConfig], Awaitable[T]]) -> T:
    if config is None:
        _fail("需要 --config / --config is required", 2)
    assert config is not None
    try:
        cfg = load_config(config)
        store = make_store(cfg)
    except (GatewayError, ValueError) as e:
        _fail(str(e), 2)
        raise

    async def run() -> T:
        await store.open()
        try:
            return await fn(store, cfg)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StatsError as e:
        _fail(str(e), 2)
        raise


def _fmt(v: Any, rate: bool = False) -> str:
    if v is None:
        return "—"
    if rate:
        return f"{float(v) * 100:.1f}%"
    return f"{v:,.1f}" if isinstance(v, float) else f"{v:,}"


@stats_app.callback(invoke_without_command=True)
def stats(ctx: typer.Context, config: ConfigOpt = None,
          first: Annotated[str | None, typer.Option("--from", help="first day YYYY-MM-DD (default: 29 days ago)")]
          = None,
          last: Annotated[str | None, typer.Option("--to", help="last day YYYY-MM-DD (default: today)")] = None,
          agency: Annotated[str | None, typer.Option(help="only this agency")] = None) -> None:
    """Figures per agency over a range of days (Asia/Shanghai); time limits: answered on time or late in
    the range, and overdue now (a live count)."""
    if ctx.invoked_subcommand is not None:
        return
    r = _with_store(config, lambda s, c: service.stats(s, c, first, last, agency))
    t = Table(title=f"统计 / statistics {r['from']} – {r['to']}")
    cols = ["单位 / agency", "发送 / sent", "接收 / received", "通过 / accepted", "拦截 / blocked",
            "警告 / warned", "补正 / resends", "首次通过率 / first pass", "卷宗完整率 / dossier",
            "交接中位 / handover p50 ms", "交接90分位 / p90 ms", "按期答复 / answered on time",
            "逾期答复 / answered late", "当前超期 / overdue now", "常见规则 / top rules"]
    for c in cols:
        t.add_column(c, justify="left" if c in (cols[0], cols[-1]) else "right")
    for a in r["agencies"]:
        x = a["total"]
        t.add_row(Text(f"{a['name']} ({a['agency']})"), *(Text(_fmt(x[k])) for k in (
            "sent", "received", "accepted", "blocked", "warned", "resends")),
            Text(_fmt(x["first_pass_rate"], True)), Text(_fmt(x["dossier_complete_rate"], True)),
            Text(_fmt(x["handover_ms_p50"])), Text(_fmt(x["handover_ms_p90"])),
            *(Text(_fmt(x[k])) for k in FIELDS),
            Text(", ".join(f"{y['rule']}×{y['count']}" for y in x["top_rules"][:3])))
    out.print(t)


def print_ranking(r: dict[str, Any], console: Console = out) -> None:
    """The day's ranking per role, units idle on a working day or at 0% named."""
    state = "已冻结 / frozen" if r["frozen"] else "当日进行中 / day not over"
    for role in r["roles"]:
        t = Table(title=f"排名 / ranking {r['day']} · {role['role']} · {state}")
        for c in ("名次 / rank", "单位 / agency", "首次通过率 / first pass", "卷宗完整率 / dossier",
                  "交接中位 / p50 ms", "记录 / records", "提示 / note"):
            t.add_column(c)
        for u in role["units"]:
            note = "；".join(n for n, on in (("零活动 / no activity", u["zero_activity"]),
                                             ("比率为 0% / a rate at 0%", u["zero_rate"])) if on)
            t.add_row(Text(str(u["rank"])), Text(f"{u['name']} ({u['agency']})"),
                      Text(_fmt(u["first_pass_rate"], True)), Text(_fmt(u["dossier_complete_rate"], True)),
                      Text(_fmt(u["handover_ms_p50"])), Text(str(u["records"])),
                      Text(note, style="bold red" if note else ""))
        console.print(t)


@stats_app.command()
def ranking(config: ConfigOpt = None,
            day: Annotated[str | None, typer.Option(help="YYYY-MM-DD (default: today)")] = None,
            role: Annotated[str | None, typer.Option(help="only this role")] = None) -> None:
    """The ranking of a day per role (a finished day's is read from the exchange log)."""
    print_ranking(_with_store(config, lambda s, c: service.rankings(s, c, day, role, actor="gateway-cli")))


@stats_app.command()
def rebuild(config: ConfigOpt = None) -> None:
    """Recompute every daily aggregate from the stored messages and deliveries (after an upgrade, or to check)."""
    n = _with_store(config, lambda s, c: s.rebuild_stats())
    out.print(f"已按原始记录重算统计 / aggregates recomputed from {n:,} records")


@stats_app.command("export")
def export_cmd(month: Annotated[str, typer.Option(help="YYYY-MM")],
               output: Annotated[Path, typer.Option("-o", "--output", help="file to write")],
               config: ConfigOpt = None,
               fmt: Annotated[str, typer.Option("--format", help="xlsx or csv")] = "xlsx",
               agency: Annotated[str | None, typer.Option(help="only this agency")] = None) -> None:
    """A month's figures as the supervisors' monthly report (Chinese sheet and column names)."""
    data = _with_store(config, lambda s, c: export.month(s, c, month, fmt, agency))
    output.write_bytes(data)
    out.print(f"已写入 / written: {output} ({len(data):,} bytes)")
