"""A month's statistics as the monthly report supervisors file: XLSX (XlsxWriter) or CSV, with
Chinese sheet and column names first and English after them."""

from __future__ import annotations

import calendar
import csv
import io
from typing import Any, Protocol

import xlsxwriter

from gateway.config import GatewayConfig
from gateway.stats.ranking import RankingStore
from gateway.stats.report import StatsError, report
from gateway.stats.service import units
from gateway.stats.timelimits import ClockFigureStore, add_to_days, add_to_totals

MEDIA = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
         "csv": "text/csv; charset=utf-8"}

# (key in the report, column title)
COLUMNS: list[tuple[str, str]] = [
    ("sent", "发送记录数 / sent"), ("received", "接收记录数 / received"), ("accepted", "通过 / accepted"),
    ("blocked", "拦截 / blocked"), ("warned", "警告 / warned"), ("resends", "补正重发 / resends"),
    ("resend_ms_mean", "平均补正用时(毫秒) / mean time to resend (ms)"),
    ("first_pass_rate", "首次提交通过率 / first-submission pass rate"),
    ("dossier_complete_rate", "卷宗完整率 / dossier completeness"),
    ("handovers", "交接次数 / hand-overs"),
    ("handover_ms_mean", "平均交接用时(毫秒) / hand-over mean (ms)"),
    ("handover_ms_p50", "交接用时中位数(毫秒) / hand-over p50 (ms)"),
    ("handover_ms_p90", "交接用时90分位(毫秒) / hand-over p90 (ms)"),
    ("answers", "答复次数 / answers"), ("answer_ms_mean", "平均答复用时(毫秒) / mean answer time (ms)"),
    ("clocks_on_time", "期限内办结 / answered within the time limit"),
    ("clocks_late", "超期办结 / answered late"),
    ("clocks_overdue_now", "当前超期未办结 / overdue now"),  # live: the summary only, empty in daily rows
]
HEAD = ["单位代码 / agency", "单位名称 / name", "角色 / role"]
SHEET_TOTAL, SHEET_DAYS, SHEET_RULES = "月度汇总 summary", "每日明细 daily", "规则命中 rules"


def month_range(month: str) -> tuple[str, str]:
    try:
        y, m = (int(x) for x in month.split("-"))
        last = calendar.monthrange(y, m)[1]
    except (ValueError, calendar.IllegalMonthError):
        raise StatsError(f"月份“{month}”不是 YYYY-MM / month '{month}' is not YYYY-MM", "month") from None
    return f"{y:04d}-{m:02d}-01", f"{y:04d}-{m:02d}-{last:02d}"


def tables(r: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """The three sheets as rows (first row: titles); None stays empty (no data), never 0."""
    total = [[*HEAD, *(t for _, t in COLUMNS)]]
    daily = [["日期 / day", *HEAD, *(t for _, t in COLUMNS)]]
    rules = [[*HEAD, "规则 / rule", "命中记录数 / records"]]
    for a in r["agencies"]:
        who = [a["agency"], a["name"], a["role"]]
        total.append([*who, *(a["total"].get(k) for k, _ in COLUMNS)])
        for d in a["days"]:
            if d["sent"] or d["received"] or d.get("clocks_on_time") or d.get("clocks_late"):
                daily.append([d["day"], *who, *(d.get(k) for k, _ in COLUMNS)])
        for x in a["total"]["top_rules"]:
            rules.append([*who, x["rule"], x["count"]])
    return {SHEET_TOTAL: total, SHEET_DAYS: daily, SHEET_RULES: rules}


def to_xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    buf = io.BytesIO()
    book = xlsxwriter.Workbook(buf, {"in_memory": True, "constant_memory": True})
    bold = book.add_format({"bold": True, "text_wrap": True})
    for name, rows in sheets.items():
        ws = book.add_worksheet(name)
        for i, row in enumerate(rows):
            ws.write_row(i, 0, ["" if v is None else v for v in row], bold if i == 0 else None)
        ws.freeze_panes(1, 0)
        ws.set_column(0, len(rows[0]) - 1, 16)
    book.close()
    return buf.getvalue()


def to_csv(sheets: dict[str, list[list[Any]]]) -> bytes:
    """The daily sheet as CSV (UTF-8 with a byte order mark, so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    w = csv.writer(out)
    for row in sheets[SHEET_DAYS]:
        w.writerow(["" if v is None else v for v in row])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class ExportStore(RankingStore, ClockFigureStore, Protocol):
    """The store as the export reads it: the daily aggregates and the time-limit clocks."""


async def month_sheets(store: ExportStore, config: GatewayConfig, month: str, agency: str | None = None,
                       now: float | None = None) -> dict[str, list[list[Any]]]:
    """The month's sheets, with the time-limit figures (overdue counted at `now`, default this moment)."""
    a, b = month_range(month)
    r = report(await store.stats_rows(a, b, agency), units(config, agency), a, b, top=50)
    return tables(await add_to_days(await add_to_totals(r, store, now), store))


async def month(store: ExportStore, config: GatewayConfig, month: str, fmt: str, agency: str | None = None,
                now: float | None = None) -> bytes:
    sheets = await month_sheets(store, config, month, agency, now)
    if fmt == "xlsx":
        return to_xlsx(sheets)
    if fmt == "csv":
        return to_csv(sheets)
    raise StatsError(f"不支持的格式“{fmt}” / format '{fmt}' is not xlsx or csv", "format")
