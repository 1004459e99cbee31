"""`gateway demo`: a gateway and simulated police, procuratorate and court systems on loopback.

Sample cases travel police -> procuratorate -> court and the judgment back to both, each hop a
real delivery through the gateway, shown as it happens. Police and court speak HTTP; the
procuratorate is a legacy SOAP service (spyne): records reach it through zeep, and its decisions
come back by calling the gateway's SOAP endpoint. The configuration is written to the
demo's data folder with secrets by environment reference only; the keys are generated per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lxml import etree
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.runtime import Gateway
from gateway.sim.agencies import (
    INDICTMENT,
    JUDGMENT,
    TRANSFER,
    AgencySystem,
    CourtSystem,
    PoliceSystem,
    ProcuratorateSystem,
)
from gateway.sim.http import HttpAgency
from gateway.sim.records import CaseStep, from_xml, to_xml
from gateway.sim.server import EmbeddedServer, embedded, loopback_socket
from gateway.sim.soap_agency import SoapAgency

MARKER = ".gateway-demo"
AGENCIES = (("POLICE", "City Public Security Bureau", "police"),
            ("PROC", "City People's Procuratorate", "procuratorate"),
            ("COURT", "City Intermediate People's Court", "court"))


@dataclass(frozen=True)
class DemoResult:
    cases: int
    complete: int
    api_url: str

    @property
    def ok(self) -> bool:
        return self.complete == self.cases


def prepare_data_dir(path: Path) -> None:
    """Start from an empty folder; refuse to wipe one the demo did not create."""
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise GatewayError(f"{path} is not empty and was not made by the demo; choose another --data-dir")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("made by `gateway demo`; wiped at its next run\n")


SOAP_AGENCIES = {"PROC"}  # legacy systems that only speak SOAP


def demo_config(data_dir: Path, api_port: int, sim_ports: dict[str, int]) -> dict[str, Any]:
    """The demo's configuration: HTTP agencies and the SOAP procuratorate; keys by environment only."""
    agencies = []
    for code, name, role in AGENCIES:
        adapter = "soap" if code in SOAP_AGENCIES else "http"
        settings: dict[str, Any] = {"url": f"http://127.0.0.1:{sim_ports[code]}/receive"}
        if adapter == "soap":  # inbound, its UsernameToken password is the agency's key
            settings = {"wsdl": f"http://127.0.0.1:{sim_ports[code]}/?wsdl", "case_field": "CaseNumber",
                        "accepted_xpath": "string(//*[local-name()='Status'])='accepted'"}
        outbound: dict[str, Any] = {"name": f"{code.lower()}-out", "adapter": adapter, "settings": settings,
                                    "retry": {"initial_backoff": 0.2, "max_backoff": 2.0, "jitter": 0.1}}
        agencies.append({
            "code": code, "name": name, "role": role, "api_key": {"env": f"DEMO_{code}_KEY"},
            "inbound": [{"name": f"{code.lower()}-in", "adapter": adapter}],
            "outbound": outbound,
        })
    return {
        "gateway": {"node": "demo", "data_dir": str(data_dir), "store": {"durability": "normal"},
                    "api": {"host": "127.0.0.1", "port": api_port}},
        "agencies": agencies,
        "routes": [
            {"stage": TRANSFER[0], "action": TRANSFER[1], "to": ["PROC"]},
            {"stage": INDICTMENT[0], "action": INDICTMENT[1], "to": ["COURT"]},
            {"stage": JUDGMENT[0], "action": JUDGMENT[1], "to": ["PROC", "POLICE"]},
        ],
        "access": {"operators": [{"name": "demo-operator", "key": {"env": "DEMO_OPERATOR_KEY"}}],
                   "auditors": [{"name": "demo-auditor", "key": {"env": "DEMO_AUDITOR_KEY"}}]},
    }


class Demo:
    def __init__(self, data_dir: Path, cases: int, console: Console) -> None:
        self.data_dir = data_dir
        self.cases = cases
        self.console = console
        self.police = PoliceSystem("POLICE")
        self.systems: dict[str, AgencySystem] = {
            "POLICE": self.police, "PROC": ProcuratorateSystem("PROC"), "COURT": CourtSystem("COURT")}
        roles = ("POLICE", "PROC", "COURT", "OPERATOR", "AUDITOR")
        self.keys = {name: secrets.token_urlsafe(24) for name in roles}
        self.run_id = time.strftime("%H%M%S")

    def observe(self, event: str, step: CaseStep, src: str, dst: str, detail: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        colour = "green" if event == "delivered" else "cyan"
        line = Text(f"{stamp}  ")
        line.append(step.case_number, style="bold")
        line.append(f"  {src:>6} -> {dst:<13} ")
        line.append(f"{event:<9}", style=colour)
        line.append(f"  {step.action} ({detail})")
        self.console.print(line, highlight=False, soft_wrap=True)

    def complete_cases(self) -> int:
        """Cases whose every hop arrived, from the transfer at PROC to the judgment at PROC and POLICE."""

        def cases(code: str, what: tuple[str, str]) -> set[str]:
            return {r.step.case_number for r in self.systems[code].received
                    if (r.step.stage, r.step.action) == what}

        done = (cases("PROC", TRANSFER) & cases("COURT", INDICTMENT) & cases("PROC", JUDGMENT)
                & cases("POLICE", JUDGMENT))
        return len(done)

    def config(self, api_port: int, sim_ports: dict[str, int]) -> GatewayConfig:
        for name, key in self.keys.items():
            os.environ[f"DEMO_{name}_KEY"] = key
        path = self.data_dir / "demo.yaml"
        text = yaml.safe_dump(demo_config(self.data_dir, api_port, sim_ports), sort_keys=False)
        path.write_text("# Written by `gateway demo`; keys come from DEMO_*_KEY environment variables.\n"
                        + text)
        return load_config(path)

    async def run(self, duration: float | None, stop: asyncio.Event) -> DemoResult:
        prepare_data_dir(self.data_dir)
        gw_sock = loopback_socket()
        http_codes = [c for c in self.systems if c not in SOAP_AGENCIES]
        sim_socks = {code: loopback_socket() for code in http_codes}
        soap = {code: self._soap_agency(code).start() for code in SOAP_AGENCIES}
        api_port = gw_sock.getsockname()[1]
        ports = {c: s.getsockname()[1] for c, s in sim_socks.items()} | {c: a.port for c, a in soap.items()}
        cfg = self.config(api_port, ports)
        api_url = f"http://127.0.0.1:{api_port}"
        gateway = Gateway(cfg)
        gw_server = embedded(gateway.asgi(), lifespan="on")
        agencies = {code: HttpAgency(self.systems[code], submit_url=f"{api_url}/inbound/{code.lower()}-in",
                                     api_key=self.keys[code], observe=self.observe)
                    for code in http_codes}
        servers: list[tuple[EmbeddedServer, Any]] = [(gw_server, gw_sock)]
        servers += [(embedded(agencies[c].app()), sim_socks[c]) for c in http_codes]
        tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers]
        try:
            await self._wait_started([s for s, _ in servers], tasks)
            for code, agency in soap.items():
                agency.call_back(f"{api_url}/soap/{code.lower()}-in", code, self.keys[code])
            self._banner(api_url)
            started = time.monotonic()
            for i in range(1, self.cases + 1):
                case = f"DEMO-{self.run_id}-{i:02d}"
                await agencies["POLICE"].submit(self.police.open_case(case))
                await asyncio.sleep(0.2)
            while not stop.is_set():
                if duration is not None and (self.complete_cases() == self.cases
                                             or time.monotonic() - started >= duration):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.1)
        finally:
            for s, _ in servers[1:]:
                s.should_exit = True
            gw_server.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            for a in agencies.values():
                await a.aclose()
            for s_agency in soap.values():
                s_agency.stop()
        result = DemoResult(self.cases, self.complete_cases(), api_url)
        self._summary(result)
        return result

    def _soap_agency(self, code: str) -> SoapAgency:
        """A legacy SOAP system: deliveries arrive through spyne, answers go back as SOAP calls."""
        system = self.systems[code]

        def decide(record: bytes, key: str) -> list[bytes]:
            step = from_xml(record)
            self.observe("delivered", step, step.sender, code, "SOAP receipt sent")
            return [to_xml(answer) for answer in system.accept(step, key)]

        def sent(record: bytes, reply: bytes) -> None:
            step = from_xml(record)
            dests = ", ".join(etree.fromstring(reply).xpath("//*[local-name()='Agency']/text()")) or "-"
            status = str(etree.fromstring(reply).xpath("string(//*[local-name()='Status'])"))
            self.observe("submitted", step, code, dests, f"{status}, over SOAP")

        return SoapAgency(decide=decide, sent=sent)

    async def _wait_started(self, servers: list[EmbeddedServer], tasks: list[asyncio.Task[Any]]) -> None:
        while not all(s.started for s in servers):
            for t in tasks:
                if t.done():
                    t.result()
                    raise GatewayError("a demo server stopped while starting; see the messages above")
            await asyncio.sleep(0.02)

    def _banner(self, api_url: str) -> None:
        c = self.console
        c.print(f"[bold]Gateway running[/]  API {api_url}  (OpenAPI: {api_url}/docs)", soft_wrap=True)
        c.print(f"operator key: [bold]{self.keys['OPERATOR']}[/]   auditor key: {self.keys['AUDITOR']}",
                soft_wrap=True)
        c.print(f"try: curl -H 'X-API-Key: {self.keys['OPERATOR']}' {api_url}/api/v1/queues", soft_wrap=True)
        c.print(f"config: {self.data_dir / 'demo.yaml'}   data: {self.data_dir}", soft_wrap=True)
        c.print("[dim]time      case             from -> to             event      record (state)[/]")

    def _summary(self, result: DemoResult) -> None:
        table = Table(title="Deliveries received by the simulated agencies")
        for col in ("agency", "transfers", "indictments", "judgments"):
            table.add_column(col)
        for code, system in self.systems.items():
            table.add_row(code, *(str(system.count(x)) for x in (TRANSFER, INDICTMENT, JUDGMENT)))
        self.console.print(table)
        colour = "green" if result.ok else "red"
        self.console.print(f"[{colour}]{result.complete} of {result.cases} cases went police -> "
                           "procuratorate -> court -> judgment to both[/]")


def run(data_dir: Path, cases: int, duration: float | None, console: Console) -> DemoResult:
    """Run the demo until Ctrl-C/SIGTERM, or with a duration until all cases arrived or time is up."""

    async def main() -> DemoResult:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            return await Demo(data_dir, cases, console).run(duration, stop)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())
