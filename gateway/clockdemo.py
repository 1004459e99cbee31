"""`gateway demo --time-scale N`: an arrest request the procuratorate leaves unanswered, seven days in seconds.

One gateway node in this process keeps its clocks by a `ScaledClock` running N times faster than
the wall clock. The police's request is delivered to the procuratorate (its own legacy format,
by its mapping pack); nobody answers; the approaching and then the overdue warning arrive at the
procuratorate and at its case supervision office, in their format; then the procuratorate answers,
late, and the exchange log says by how many days. Nothing sleeps through the period: the time
passes faster, the scanner looks every 0.1 s.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from lxml import etree
from rich.console import Console
from rich.text import Text

from adapters.memory import MemoryOutbound
from gateway.clocktime import ScaledClock
from gateway.config import parse_config
from gateway.lawcalendar import TZ
from gateway.model import OutboundMessage
from gateway.runtime import Gateway
from gateway.standard import standard_dir

CASE = "A1401052026110001"


def clock_demo_config(data_dir: Path) -> dict[str, Any]:
    memory = {"adapter": "memory"}
    return {
        "gateway": {"node": "clock-demo", "data_dir": str(data_dir), "store": {"durability": "normal"}},
        "agencies": [
            {"code": "POLICE", "name": "太原市公安局", "role": "police",
             "inbound": [{"name": "police-in", **memory}], "outbound": {"name": "police-out", **memory}},
            {"code": "PROC", "name": "太原市人民检察院", "role": "procuratorate",
             "inbound": [{"name": "proc-in", **memory}],
             "outbound": {"name": "proc-out", **memory, "mapping": "procuratorate"}},
            {"code": "PROC-CMO", "name": "太原市人民检察院案件管理部门", "role": "other",
             "outbound": {"name": "proc-cmo-out", **memory, "mapping": "procuratorate"}},
        ],
        "routes": [{"stage": "arrest-review", "action": "request-arrest-approval", "to": ["PROC"]},
                   {"stage": "arrest-review", "action": "approve-arrest", "to": ["POLICE"]}],
        "clocks": {"scan_seconds": 0.1, "approaching": {"days": 2},
                   "supervisors": [{"limit": "arrest-decision", "to": ["PROC-CMO"]}]},
    }


def _answer(case: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<CaseRecord xmlns="urn:cn:justice:case-exchange:1" '
            f'version="1.0"><CaseNumber>{case}</CaseNumber><Stage>arrest-review</Stage>'
            "<Action>approve-arrest</Action><Sender>PROC</Sender><Receiver>POLICE</Receiver>"
            f"<Documents><Document><Type>arrest-decision</Type><Number>并检捕〔2026〕9号</Number>"
            f"<Date>{dt.date.today().isoformat()}</Date><Issuer>PROC</Issuer></Document></Documents></CaseRecord>"
            ).encode()  # dated today by the wall clock: the rules refuse a document dated in the future


class ClockDemo:
    def __init__(self, data_dir: Path, scale: float, console: Console) -> None:
        self.data_dir = data_dir
        self.console = console
        self.clock = ScaledClock(scale)
        self.outs = {"POLICE": MemoryOutbound(), "PROC": MemoryOutbound(self._arrived("PROC")),
                     "PROC-CMO": MemoryOutbound(self._arrived("PROC-CMO"))}
        self.warnings: list[tuple[str, str]] = []

    def stamp(self) -> str:
        return dt.datetime.fromtimestamp(self.clock.now(), TZ).strftime("%Y-%m-%d %H:%M")

    def say(self, text: str, style: str = "") -> None:
        line = Text(f"[{self.stamp()} 北京时间]  ")
        line.append(text, style=style)
        self.console.print(line, highlight=False, soft_wrap=True)

    def _arrived(self, agency: str) -> Any:
        from gateway.model import DeliveryResult

        def handle(m: OutboundMessage) -> DeliveryResult:
            tree = etree.fromstring(m.body)
            if b"TIME-LIMIT-" not in m.body:
                what = "a defect notice" if b"DefectNotice" in m.body else "the arrest request"
                self.say(f"{agency} 收到 / received {what} ({tree.tag.split('}')[-1]}, {len(m.body)} bytes)")
            else:
                kind = "overdue" if b"TIME-LIMIT-OVERDUE" in m.body else "approaching"
                self.warnings.append((agency, kind))
                text = next((t for t in tree.itertext() if "案件" in t), "")
                self.say(f"{agency} 收到期限{'超期' if kind == 'overdue' else '临期'}提醒 / received the {kind} "
                         f"warning: {text}", "bold red" if kind == "overdue" else "yellow")
                self.console.print(Text("      " + m.body.decode("utf-8", "replace")[:400].replace("\n", " ")),
                                   highlight=False, soft_wrap=True)
            return DeliveryResult.delivered()

        return handle

    async def wait_for(self, agency: str, kind: str, timeout: float = 60.0) -> None:
        for _ in range(int(timeout / 0.05)):
            if (agency, kind) in self.warnings:
                return
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {kind} warning reached {agency}")

    async def run(self) -> int:
        cfg = parse_config(clock_demo_config(self.data_dir))
        gw = Gateway(cfg, outbound=self.outs, clock=self.clock)  # type: ignore[arg-type]
        async with gw.running():
            request = (standard_dir("1") / "examples" / "01-request-arrest-approval.xml").read_bytes()
            request = request.replace(b"A1401052026030001", CASE.encode())
            self.say("POLICE 提请批准逮捕 / requests arrest approval", "cyan")
            r = await gw.inbound["police-in"].submit(request)  # type: ignore[attr-defined]
            self.say(f"网关受理 / gateway {r.status}: message {r.message_id}")
            for _ in range(400):
                clocks = await gw.store.list_clocks(case=CASE, now=self.clock.now())
                if clocks and clocks[0].state == "running":
                    break
                await asyncio.sleep(0.02)
            c = clocks[0]
            self.say(f"审查批准逮捕期限开始计算 / arrest decision clock started for PROC: last day {c.last_day} "
                     "(7日，羁押期间不因节假日顺延 / 7 days, custody: no holiday extension)", "green")
            self.say("检察院未作答复…… / the procuratorate does not answer ...")
            for agency in ("PROC", "PROC-CMO"):
                await self.wait_for(agency, "approaching")
            for agency in ("PROC", "PROC-CMO"):
                await self.wait_for(agency, "overdue")
            await asyncio.sleep(2.0)  # a few more days pass
            self.say("PROC 批准逮捕（逾期）/ approves the arrest, late", "cyan")
            r = await gw.inbound["proc-in"].submit(_answer(CASE))  # type: ignore[attr-defined]
            self.say(f"网关受理 / gateway {r.status}" + (f": {'; '.join(r.reasons)}" if r.reasons else ""))
            for _ in range(200):  # the approval reaches the police before the node stops
                if self.outs["POLICE"].received:
                    break
                await asyncio.sleep(0.02)
            late = [e for e in await gw.store.audit_entries(case_number=CASE) if e.action == "clock-answered-late"]
            [c] = await gw.store.list_clocks(case=CASE, now=self.clock.now())
            for e in late:
                d = json.loads(e.detail)
                self.say(f"交换日志 / exchange log #{e.seq} {e.action}: {d['note_zh']} / {d['note_en']} "
                         f"(last day {d['last_day']})", "bold red")
            self.console.print(Text("\n案件期限记录 / the case's clock and its exchange-log entries about it (log "
                                    "times are the wall clock's):"), highlight=False, soft_wrap=True)
            self.console.print(Text(f"  clock {c.id}: {c.limit_id} agency {c.agency} state {c.state} last day "
                                    f"{c.last_day} late {c.late_days} days"), highlight=False, soft_wrap=True)
            for e in await gw.store.audit_entries(case_number=CASE):
                if e.action.startswith("clock-"):
                    line = f"  #{e.seq:<3} {_wall(e.time)}  {e.actor:<10} {e.action}"
                    self.console.print(Text(line), highlight=False)
            title = "\n案件时间线 / the case's timeline, as `gateway case` shows it (wall-clock times):"
            self.console.print(Text(title), highlight=False)
            for i, r in enumerate(await gw.store.case_timeline(CASE), 1):
                delivered = ", ".join(f"{d} {_wall(at)}" for d, at in r.delivered.items()) or "-"
                answered = f"{_wall(r.answered_at)} ({r.answered_by[:14]}…)" if r.answered_by else "-"
                self.console.print(Text(f"  {i}. {_wall(r.received_at)} {r.sender} → {', '.join(r.receivers)}  "
                                        f"{r.action}  送达 delivered {delivered}  答复 answered {answered}"),
                                   highlight=False, soft_wrap=True)
            return 0 if late and c.late_days else 1


def _wall(at: float | str | None) -> str:
    """A wall-clock time (epoch seconds or the log's ISO text) as Beijing time of day."""
    if at is None:
        return "-"
    if isinstance(at, str):
        t = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    else:
        t = dt.datetime.fromtimestamp(at, TZ)
    return t.astimezone(TZ).strftime("%H:%M:%S")


def run(data_dir: Path, scale: float, console: Console) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    for f in data_dir.glob("gateway.db*"):
        f.unlink()
    return asyncio.run(ClockDemo(data_dir, scale, console).run())
