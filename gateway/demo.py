"""`gateway demo`: a gateway and four simulated legacy agency systems on loopback, the full case flow.

The police is a legacy system dropping GB18030 XML in its own format, with PDF dossier files, on a
real OpenSSH sshd (throwaway keys, host key pinned); the gateway polls it over SFTP and answers
into its inbox there. The procuratorate is a legacy SOAP service (spyne): records reach it through
zeep, its decisions come back by calling the gateway's SOAP endpoint. Court and justice bureau
speak HTTP in their own formats. Every agency's channels use its mapping pack. Each hop is shown
as it happens; one transfer is blocked (defect notice back to the police) and one is returned for
supplementary investigation. The configuration is written to the demo's data folder with secrets
by reference only; the keys are generated per run.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import secrets
import shutil
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from lxml import etree
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.api.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.runtime import Gateway
from gateway.sim import flow
from gateway.sim.agencies import AgencySystem
from gateway.sim.drop import DropAgency
from gateway.sim.http import HttpAgency
from gateway.sim.legacy import PACKS, incoming, outgoing
from gateway.sim.records import CaseStep
from gateway.sim.server import EmbeddedServer, embedded, loopback_socket
from gateway.sim.soap_agency import SoapAgency
from gateway.sim.sshd import SshServer, ensure_sshd, start_sshd
from gateway.stats import service as stats_service

MARKER = ".gateway-demo"
AGENCIES = (("POLICE", "City Public Security Bureau", "police", "sftp"),
            ("PROC", "City People's Procuratorate", "procuratorate", "soap"),
            ("COURT", "City Intermediate People's Court", "court", "http"),
            ("JUSTICE", "City Justice Bureau (community corrections)", "justice-bureau", "http"))
POLL = 0.5  # seconds between two looks of the gateway at the police's SFTP outbox
OPEN_EVERY = 0.5  # seconds between two cases the police opens
ROUTES = ((flow.ARREST, ["PROC"]), (flow.APPROVE, ["POLICE"]), (flow.TRANSFER, ["PROC"]),
          (flow.RETURN, ["POLICE"]), (flow.INDICTMENT, ["COURT"]), (flow.JUDGMENT, ["PROC", "POLICE"]),
          (flow.EXECUTION, ["JUSTICE"]), (flow.RECEIPT, ["COURT"]))


@dataclass(frozen=True)
class DemoResult:
    cases: int
    complete: int
    api_url: str
    notices: int = 0
    returns: int = 0
    slowest_to_proc: float = 0.0

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


def demo_config(data_dir: Path, api_port: int, ports: dict[str, int], sshd: SshServer) -> dict[str, Any]:
    """The demo's configuration: each agency on its protocol and mapping pack; secrets by reference only."""
    sftp = data_dir / "police-sftp"
    agencies = []
    for code, name, role, adapter in AGENCIES:
        inbound: dict[str, Any] = {}
        if adapter == "sftp":
            inbound = sshd.settings(sftp / "outbox", complete_when="renamed", poll_interval=POLL)
            outbound: dict[str, Any] = sshd.settings(sftp / "inbox")
        elif adapter == "soap":  # inbound, its UsernameToken password is the agency's key
            outbound = {"wsdl": f"http://127.0.0.1:{ports[code]}/?wsdl", "case_field": "CaseNumber",
                        "attachment_field": "Dossier/DossierFile",  # the police's scans travel on inline
                        "accepted_xpath": "string(//*[local-name()='Status'])='accepted'"}
        else:  # the court's system takes records with their files as multipart form data
            outbound = {"url": f"http://127.0.0.1:{ports[code]}/receive", "dossier": "multipart"}
        agencies.append({
            "code": code, "name": name, "role": role, "api_key": {"env": f"DEMO_{code}_KEY"},
            "inbound": [{"name": f"{code.lower()}-in", "adapter": adapter, "mapping": PACKS[code],
                         "settings": inbound}],
            "outbound": {"name": f"{code.lower()}-out", "adapter": adapter, "mapping": PACKS[code],
                         "settings": outbound,
                         "retry": {"initial_backoff": 0.2, "max_backoff": 2.0, "jitter": 0.1}},
        })
    return {
        "gateway": {"node": "demo", "data_dir": str(data_dir), "store": {"durability": "normal"},
                    "api": {"host": "127.0.0.1", "port": api_port}},
        "agencies": agencies,
        "routes": [{"stage": stage, "action": action, "to": to} for (stage, action), to in ROUTES],
        "access": {"operators": [{"name": "demo-operator", "key": {"env": "DEMO_OPERATOR_KEY"}}],
                   "auditors": [{"name": "demo-auditor", "key": {"env": "DEMO_AUDITOR_KEY"}}]},
    }


BEIJING = ZoneInfo("Asia/Shanghai")  # where the agencies are: the demo prints their time


class Demo:
    def __init__(self, data_dir: Path, cases: int, console: Console) -> None:
        self.data_dir = data_dir
        self.cases = cases
        self.console = console
        month = dt.datetime.now(BEIJING).strftime("%Y%m")
        self.case_numbers = [f"A140105{month}{i:04d}" for i in range(1, cases + 1)]
        # one case's first transfer breaks the evidence rules, another's is returned once
        self.blocked = self.case_numbers[min(1, cases - 1)]
        self.returned = self.case_numbers[min(2, cases - 1)]
        self.police = flow.Police("POLICE", defective={self.blocked})
        self.systems: dict[str, AgencySystem] = {
            "POLICE": self.police, "PROC": flow.Procuratorate("PROC", returns={self.returned}),
            "COURT": flow.Court("COURT"), "JUSTICE": flow.JusticeBureau("JUSTICE")}
        roles = (*self.systems, "OPERATOR", "AUDITOR")
        self.keys = {name: secrets.token_urlsafe(24) for name in roles}

    def observe(self, event: str, step: CaseStep, src: str, dst: str, detail: str) -> None:
        stamp = dt.datetime.now(BEIJING).strftime("%H:%M:%S")  # the agencies' own time, as the console shows it
        colour = {"delivered": "green", "submitted": "cyan"}.get(event, "red")
        protocol, _, state = detail.partition(", ")
        line = Text(f"{stamp}  ")
        line.append(step.case_number, style="bold")
        line.append(f"  {src:>7} -> {dst:<18} {protocol:<10} ")
        line.append(f"{event:<9}", style=colour)
        line.append(f"  {step.action}" + (f" ({state})" if state else ""))
        self.console.print(line, highlight=False, soft_wrap=True)

    def complete_cases(self) -> int:
        """Cases whose judgment reached procuratorate and police and whose offender receipt the court got."""
        s = self.systems
        done = (flow.cases_with(s["PROC"], flow.JUDGMENT) & flow.cases_with(s["POLICE"], flow.JUDGMENT)
                & flow.cases_with(s["COURT"], flow.RECEIPT))
        return len(done)

    def config(self, api_port: int, ports: dict[str, int], sshd: SshServer) -> GatewayConfig:
        for name, key in self.keys.items():
            os.environ[f"DEMO_{name}_KEY"] = key
        path = self.data_dir / "demo.yaml"
        text = yaml.safe_dump(demo_config(self.data_dir, api_port, ports, sshd), sort_keys=False)
        path.write_text("# Written by `gateway demo`; keys come from DEMO_*_KEY environment variables.\n"
                        + text)
        return load_config(path)

    def _sshd(self) -> SshServer:
        why = ensure_sshd()
        if why:
            raise GatewayError(why)
        if os.geteuid() != 0:
            raise GatewayError("the demo's SFTP server logs in as root by key: run the demo as root")
        return start_sshd(self.data_dir / "sshd")

    async def run(self, duration: float | None, stop: asyncio.Event) -> DemoResult:
        prepare_data_dir(self.data_dir)
        sshd = await asyncio.to_thread(self._sshd)
        gw_sock = loopback_socket()
        http_codes = ["COURT", "JUSTICE"]
        sim_socks = {code: loopback_socket() for code in http_codes}
        soap = self._soap_agency("PROC").start()
        api_port = gw_sock.getsockname()[1]
        ports = {c: s.getsockname()[1] for c, s in sim_socks.items()} | {"PROC": soap.port}
        api_url = f"http://127.0.0.1:{api_port}"
        police = DropAgency(self.police, outbox=self.data_dir / "police-sftp" / "outbox",
                            inbox=self.data_dir / "police-sftp" / "inbox", observe=self.observe)
        tasks: list[asyncio.Task[Any]] = []
        servers: list[tuple[EmbeddedServer, Any]] = []
        agencies: dict[str, HttpAgency] = {}
        police_stop = asyncio.Event()
        day_ranking: dict[str, Any] = {}
        try:
            cfg = self.config(api_port, ports, sshd)
            gateway = Gateway(cfg, whole_process=True)
            servers.append((embedded(create_app(gateway), lifespan="on"), gw_sock))
            agencies = {code: self._http_agency(code, api_url) for code in http_codes}
            servers += [(embedded(agencies[c].app()), sim_socks[c]) for c in http_codes]
            tasks = [asyncio.create_task(s.serve(sockets=[sock])) for s, sock in servers]
            await self._wait_started([s for s, _ in servers], tasks)
            soap.call_back(f"{api_url}/soap/proc-in", "PROC", self.keys["PROC"])
            tasks.append(asyncio.create_task(police.run(police_stop)))
            self._banner(api_url)
            started = time.monotonic()
            for case in self.case_numbers:  # an officer opens cases one after the other, not all at once
                police.submit(self.police.open_case(case))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), OPEN_EVERY)
            while not stop.is_set():
                if duration is not None and (self.complete_cases() == self.cases
                                             or time.monotonic() - started >= duration):
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.1)
            day_ranking = await stats_service.rankings(gateway.store, cfg, None, actor="demo")
        finally:  # the SOAP system first, so its pending answers still find the gateway up
            police_stop.set()
            soap.stop()
            for s, _ in servers:
                s.should_exit = True
            await asyncio.gather(*tasks, return_exceptions=True)
            for a in agencies.values():
                await a.aclose()
            sshd.stop()
        result = DemoResult(self.cases, self.complete_cases(), api_url,
                            notices=len(flow.cases_with(self.police, flow.NOTICE)),
                            returns=len(flow.cases_with(self.police, flow.RETURN)),
                            slowest_to_proc=self._slowest_to_proc(police))
        self._summary(result)
        if day_ranking:
            self._ranking(day_ranking)
        return result

    def _ranking(self, r: dict[str, Any]) -> None:
        """Today's ranking per role, one line each; the console's statistics page has the rest."""
        self.console.print(f"[bold]今日排名 / ranking of {r['day']}[/] ({' > '.join(r['score'])})", soft_wrap=True)
        for role in r["roles"]:
            units = ", ".join(f"{u['rank']}. {u['agency']}" + (" (零活动 / idle)" if u["zero_activity"] else "")
                              + (" (0%)" if u["zero_rate"] else "") for u in role["units"])
            self.console.print(f"  {role['role']}: {units}", highlight=False, soft_wrap=True)

    def _slowest_to_proc(self, police: DropAgency) -> float:
        """Longest time from a police drop being in place to its arrival at the procuratorate."""
        waits, nth = [], Counter[tuple[str, str]]()
        for r in self.systems["PROC"].received:
            key = (r.step.case_number, r.step.action)
            sent = police.sent_at.get(key, [])
            if nth[key] < len(sent):
                waits.append(r.at - sent[nth[key]])
                nth[key] += 1
        return max(waits, default=0.0)

    def _http_agency(self, code: str, api_url: str) -> HttpAgency:
        """An HTTP legacy system writing and reading its own pack's format."""
        return HttpAgency(self.systems[code], submit_url=f"{api_url}/inbound/{code.lower()}-in",
                          api_key=self.keys[code], observe=self.observe,
                          encode=lambda st: outgoing(st.sender, st.action, st.case_number).body,
                          decode=lambda body: incoming(code, body))

    def _soap_agency(self, code: str) -> SoapAgency:
        """A legacy SOAP system: deliveries arrive through spyne, answers go back as SOAP calls."""
        system = self.systems[code]

        def decide(record: bytes, key: str) -> list[tuple[bytes, dict[str, bytes]]]:
            step = incoming(code, record)
            files = next((a.files for a in reversed(agency.arrivals) if a.key == key), {})
            carried = f"{len(files)} dossier files, " if files else ""
            self.observe("delivered", step, step.sender, code, f"SOAP, {carried}receipt sent")
            answers = [outgoing(code, a.action, a.case_number) for a in system.accept(step, key)]
            return [(o.body, o.files) for o in answers]  # an indictment sends the court its materials

        def sent(record: bytes, reply: bytes) -> None:
            step = incoming(code, record)
            dests = ", ".join(etree.fromstring(reply).xpath("//*[local-name()='Agency']/text()")) or "-"
            status = str(etree.fromstring(reply).xpath("string(//*[local-name()='Status'])"))
            self.observe("submitted", step, code, dests, f"SOAP, {status}")

        agency = SoapAgency(decide=decide, sent=sent)
        return agency

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
        c.print(f"console: {api_url}/console  (sign in with the operator or auditor key)", soft_wrap=True)
        c.print(f"operator key: [bold]{self.keys['OPERATOR']}[/]   auditor key: {self.keys['AUDITOR']}",
                soft_wrap=True)
        c.print(f"try: curl -H 'X-API-Key: {self.keys['OPERATOR']}' {api_url}/api/v1/queues", soft_wrap=True)
        c.print(f"config: {self.data_dir / 'demo.yaml'}   data: {self.data_dir}", soft_wrap=True)
        c.print(f"police SFTP drop: {self.data_dir / 'police-sftp'} (OpenSSH sshd, polled every {POLL:g} s)",
                soft_wrap=True)
        c.print(f"case {self.blocked}: defective transfer; case {self.returned}: returned once",
                soft_wrap=True)
        c.print("[dim]time      case                  from -> to                 protocol   event      "
                "record (state)[/]")

    def _summary(self, result: DemoResult) -> None:
        kinds = (("arrest", flow.ARREST), ("approve", flow.APPROVE), ("transfer", flow.TRANSFER),
                 ("return", flow.RETURN), ("notice", flow.NOTICE), ("indict", flow.INDICTMENT),
                 ("judgment", flow.JUDGMENT), ("execute", flow.EXECUTION), ("receipt", flow.RECEIPT))
        table = Table(title="Records received by the simulated agencies, each in its own format")
        table.add_column("agency")
        for title, _ in kinds:
            table.add_column(title)
        for code, system in self.systems.items():
            table.add_row(code, *(str(system.count(k)) for _, k in kinds))
        self.console.print(table)
        colour = "green" if result.ok else "red"
        self.console.print(f"[{colour}]{result.complete} of {result.cases} cases went the full flow: arrest "
                           "approval -> transfer -> indictment -> judgment -> execution notice -> receipt[/]")
        self.console.print(f"defect notices read by the police: {result.notices}; "
                           f"returns for supplementary investigation: {result.returns}")
        within = result.slowest_to_proc <= POLL + 1
        self.console.print(f"[{'green' if within else 'yellow'}]slowest police drop -> procuratorate: "
                           f"{result.slowest_to_proc:.2f} s (poll interval {POLL:g} s; "
                           f"{'within' if within else 'over'} poll interval + 1 s)[/]")


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
