"""The `gateway` command: run a node, check a configuration, talk to a running gateway, run the demo.

Commands that talk to a running gateway use its REST API (`--url`, or the address in `--config`)
with the key in GATEWAY_API_KEY. Every mistake a user can make ends in one red line naming what
went wrong and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import ssl
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from gateway.config import GatewayConfig, InboundChannel, OutboundChannel, load_config
from gateway.errors import ConfigError, GatewayError
from gateway.keys import key_problems, key_refs, new_key
from gateway.secrets import SecretRef

app = typer.Typer(
    name="gateway", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Case exchange gateway: moves criminal-case records between justice agencies.",
)
out = Console()
err = Console(stderr=True)

EXIT_USAGE = 2  # a configuration or usage problem, as for the shell's own usage errors

ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", envvar="GATEWAY_CONFIG", help="configuration file; gives the API address")]
UrlOpt = Annotated[str | None, typer.Option(
    "--url", envvar="GATEWAY_URL", help="the gateway's address, e.g. http://127.0.0.1:8080")]
KeyOpt = Annotated[str | None, typer.Option(
    "--key", envvar="GATEWAY_API_KEY", show_envvar=True, help="API key (prefer the environment variable)")]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def table(title: str, *columns: str, header: bool = True) -> Table:
    t = Table(title=escape(title), show_header=header)
    for c in columns:
        t.add_column(c)
    return t


def add_row(t: Table, *values: object) -> None:
    """Data goes in as plain text: a reason like "[rule xml.malformed]" is not markup."""
    t.add_row(*(Text(str(v)) for v in values))


def load(path: Path) -> GatewayConfig:
    try:
        return load_config(path)
    except ConfigError as e:
        fail(str(e), EXIT_USAGE)
    except ImportError as e:  # an adapter named in the file is not installed
        fail(f"{path}: an adapter cannot be loaded: {e}", EXIT_USAGE)


def secret_refs(cfg: GatewayConfig) -> list[tuple[str, SecretRef]]:
    """Every secret the configuration refers to, with where it is used."""

    refs: list[tuple[str, SecretRef]] = []
    if cfg.gateway.store.dsn:
        refs.append(("gateway.store.dsn", cfg.gateway.store.dsn))
    for a in cfg.agencies:
        if a.api_key:
            refs.append((f"{a.code}.api_key", a.api_key))
        channels: list[InboundChannel | OutboundChannel] = [*a.inbound, *([a.outbound] if a.outbound else [])]
        for ch in channels:
            name, settings = ch.name, ch.adapter_settings
            for key in type(settings).model_fields:
                value = getattr(settings, key)
                if isinstance(value, SecretRef):
                    refs.append((f"{name}.settings.{key}", value))
    for kind, people in (("operator", cfg.access.operators), ("auditor", cfg.access.auditors)):
        refs += [(f"{kind} {p.name}", p.key) for p in people]
    return refs


def missing_secrets(cfg: GatewayConfig) -> list[str]:
    problems = []
    for where, ref in secret_refs(cfg):
        try:
            ref.resolve()
        except ConfigError as e:
            problems.append(f"{where}: {str(e).removeprefix('secret: ')}")
    return problems


def key_problems_here(cfg: GatewayConfig) -> list[str]:
    """Shared or short API keys among those available here (missing ones are reported as missing)."""
    keys = []
    for holder, ref in key_refs(cfg):
        with contextlib.suppress(ConfigError):
            keys.append((holder, ref.resolve()))
    return key_problems(cfg, keys)


# -- running a node -------------------------------------------------------------------------------
@app.command()
def run(config: Annotated[Path, typer.Argument(help="configuration file")],
        verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log every step")] = False) -> None:
    """Run one gateway node: REST API, adapters and delivery workers, until Ctrl-C or SIGTERM."""
    from rich.logging import RichHandler

    from gateway.api.server import serve

    cfg = load(config)
    problems = missing_secrets(cfg)
    if problems:
        fail(f"{config}: a secret is not available: {problems[0]}", EXIT_USAGE)
    for problem in key_problems_here(cfg):
        fail(f"{config}: {problem}", EXIT_USAGE)
    api = cfg.gateway.api
    try:
        with socket.create_server((api.host, api.port)):
            pass
    except OSError as e:
        fail(f"cannot listen on {api.host}:{api.port} (gateway.api in {config}): {e.strerror}")
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, format="%(message)s",
                        handlers=[RichHandler(console=err, show_path=False)])
    out.print(Text(f"gateway node {cfg.gateway.node} listening on {'https' if api.tls else 'http'}://{api.host}:"
                   f"{api.port} "
                   "(OpenAPI at /docs); Ctrl-C stops it"))
    from gateway.workers import run as run_workers
    from gateway.workers import worker_count

    workers = worker_count(cfg.gateway.workers)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then raises the signal again: end as after Ctrl-C
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if workers > 1:  # the parent passes SIGINT/SIGTERM on to its workers and waits for them
            run_workers(cfg, workers)
            return
        asyncio.run(serve(cfg))
    except KeyboardInterrupt:
        pass
    except GatewayError as e:
        fail(str(e))
    out.print("gateway stopped")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@app.command("check-config")
def check_config(config: Annotated[Path, typer.Argument(help="configuration file")]) -> None:
    """Validate a configuration and summarise its agencies, channels, routes and secrets."""
    from gateway.mapping import load_pack

    cfg = load(config)
    problems: list[str] = []
    for a in cfg.agencies:
        channels: list[InboundChannel | OutboundChannel] = [*a.inbound]
        if a.outbound:
            channels.append(a.outbound)
        for ch in channels:
            try:
                load_pack(ch.mapping, tuple(cfg.gateway.mapping_dirs))
            except GatewayError as e:
                problems.append(f"{config}: channel {ch.name}: {e}")
    problems += [f"{config}: {p}" for p in key_problems_here(cfg)]
    from gateway import clockservice

    problems += [f"{config}: {p}" if not p.startswith(str(config)) else p for p in clockservice.problems(cfg)]
    agencies = table(f"Agencies in {config}", "code", "name", "role", "inbound channels", "outbound channel")
    for a in cfg.agencies:
        inbound = "\n".join(f"{c.name} ({c.adapter}, {c.mapping})" for c in a.inbound) or "-"
        outbound = f"{a.outbound.name} ({a.outbound.adapter}, {a.outbound.mapping})" if a.outbound else "-"
        add_row(agencies, a.code, a.name, a.role, inbound, outbound)
    routes = table("Routes", "stage", "action", "from", "to")
    for r in cfg.routes:
        add_row(routes, r.stage, r.action or "(any)", r.sender or "(any)", ", ".join(r.to))
    secrets = table("Secrets (by reference)", "used by", "reference", "available here")
    for where, ref in secret_refs(cfg):
        try:
            ref.resolve()
            ok = "[green]yes[/]"
        except ConfigError:
            ok = "[yellow]no[/]"
        secrets.add_row(Text(where), Text(f"env {ref.env}" if ref.env else f"file {ref.file}"), ok)
    out.print(agencies, routes, secrets)
    adapted = cfg.rule_adaptations()
    if adapted:
        rules = table("Rules adapted by this deployment (the standard's rules apply otherwise)",
                      "adaptation", "records", "reason", "key")
        for ad in adapted:
            add_row(rules, ad.summary(), ad.scope(), ad.reason, ad.key)
        out.print(rules)
    for name in cfg.unknown_codes_warned():
        out.print(Text(f"channel {name}: unknown_codes: warn — records with a stage or action the standard does "
                       "not know are delivered with a warning, unjudged by the rules tied to it (a migration "
                       "period only)", style="yellow"), soft_wrap=True)
    if problems:
        for p in problems:
            err.print(f"[bold red]error:[/] {escape(p)}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_USAGE)
    summary = f"{len(cfg.agencies)} agencies, {len(cfg.routes)} routes" + (
        f", {len(adapted)} rule adaptation{'s' if len(adapted) != 1 else ''}" if adapted else "")
    out.print(f"[green]{escape(str(config))}: valid[/] ({summary})")


@app.command("config-docs")
def config_docs(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to this file")] = None,
) -> None:
    """Print the configuration reference (Markdown), generated from the configuration models."""
    from gateway.docs import publish, render

    problem = publish(render(), output)
    if problem:
        fail(problem)
    if output is not None:
        out.print(f"wrote {output}")


keys_app = typer.Typer(no_args_is_help=True)


@keys_app.command("new")
def keys_new() -> None:
    """Print a new random API key (256 bits); it is written nowhere, store it yourself."""
    key = new_key()
    sys.stdout.write(key + "\n")
    err.print(Text(
        "Store it as a secret reference, never in the configuration file itself: in an environment variable "
        "of the gateway's service (api_key: {env: GW_POLICE_KEY}), or in a file only the gateway's user reads "
        "(api_key: {file: /etc/gateway/police.key}; e.g. `(umask 077; gateway keys new > /etc/gateway/police.key)`). "
        "Give the key itself to its holder only."), soft_wrap=True)


# -- talking to a running gateway -------------------------------------------------------------------
class Api:
    """A small client of the REST API that turns every failure into one line for the user."""

    def __init__(self, url: str | None, config: Path | None, key: str | None) -> None:
        self.cfg = load(config) if config else None
        if url is None:
            host, port = ("127.0.0.1", 8080)
            if self.cfg:
                host, port = self.cfg.gateway.api.host, self.cfg.gateway.api.port
            scheme = "https" if self.cfg and self.cfg.gateway.api.tls else "http"
            url = f"{scheme}://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        if not key:
            fail("no API key: set GATEWAY_API_KEY (or pass --key)", EXIT_USAGE)
        self.url = url.rstrip("/")
        # HTTPS: the gateway's CA from GATEWAY_CA_BUNDLE (else the system's); a client certificate from
        # GATEWAY_CLIENT_CERT / GATEWAY_CLIENT_KEY where the gateway asks for one
        try:
            verify = ssl.create_default_context(cafile=os.environ.get("GATEWAY_CA_BUNDLE") or None)
            if cert := os.environ.get("GATEWAY_CLIENT_CERT"):
                verify.load_cert_chain(cert, os.environ.get("GATEWAY_CLIENT_KEY") or None)
        except (OSError, ssl.SSLError) as e:
            fail(f"cannot load GATEWAY_CA_BUNDLE / GATEWAY_CLIENT_CERT / GATEWAY_CLIENT_KEY: "
                 f"{getattr(e, 'strerror', None) or e}", EXIT_USAGE)
        self.client = httpx.Client(base_url=self.url, headers={"X-API-Key": key}, timeout=30.0, verify=verify)

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (), **kw: Any) -> Any:
        try:
            resp = self.client.request(method, path, **kw)
        except httpx.TransportError as e:
            fail(f"cannot reach the gateway at {self.url} ({e or type(e).__name__}); is it running?")
        if resp.is_success or resp.status_code in ok:
            return resp.json()
        try:
            body = resp.json()
            detail = body.get("detail") or body.get("error") or body
        except ValueError:
            detail = resp.text[:300]
        fail(f"{method} {path}: HTTP {resp.status_code}: {detail}")


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


@app.command()
def submit(
    file: Annotated[Path, typer.Argument(help="the record (XML) to submit")],
    agency: Annotated[str, typer.Option("--agency", "-a", help="submit as this agency (its key is needed)")],
    config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None,
    channel: Annotated[str | None, typer.Option(help="inbound channel; default the agency's first")] = None,
    message_id: Annotated[str | None, typer.Option(help="your id; a resend gets the same receipt")] = None,
) -> None:
    """Submit one record through a running gateway's REST API and print its receipt."""
    api = Api(url, config, key)
    if api.cfg is not None:
        try:
            api.cfg.agency(agency)
        except KeyError:
            fail(f"agency {agency} is not in {config}", EXIT_USAGE)
    try:
        body = file.read_bytes()
    except OSError as e:
        fail(f"cannot read {file}: {e.strerror}")
    headers = {"Content-Type": "application/xml"}
    if message_id:
        headers["X-Message-Id"] = message_id
    params = {"agency": agency, **({"channel": channel} if channel else {})}
    receipt = api.call("POST", "/api/v1/messages", ok=(422,), content=body, headers=headers, params=params)
    t = table(f"Receipt for {file}", "field", "value", header=False)
    for k in ("message_id", "status", "case_number", "content_hash", "destinations", "duplicate"):
        v = receipt.get(k)
        add_row(t, k, ", ".join(v) if isinstance(v, list) else v)
    out.print(t)
    if receipt.get("status") != "accepted":
        for r in receipt.get("reasons", []):
            err.print(f"[bold red]rejected:[/] {escape(r)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


@app.command()
def status(message_id: Annotated[str, typer.Argument(help="message id from a receipt")],
           config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Show a message's state, its deliveries and every step of its history."""
    h = Api(url, config, key).call("GET", f"/api/v1/messages/{message_id}/history")
    m = h["message"]
    out.print(Text(f"message {m['id']}  case {m['case_number']}  {m['stage']}/{m['action']}  "
                   f"from {m['sender']}  {m['status']}"))
    for r in m.get("reasons") or []:
        out.print(Text(f"  reason: {r}"))
    if m.get("payload_pruned_at"):
        out.print(Text(f"  payloads dropped by the retention policy at {_when(m['payload_pruned_at'])} "
                       "(the history below keeps their hashes)"))
    deliveries = table("Deliveries", "delivery", "to", "state", "attempts", "reason")
    for d in m["deliveries"]:
        add_row(deliveries, d["id"], d["destination"], d["state"], d["attempts"], d["reason"])
    steps = table("History", "seq", "time", "actor", "action", "detail")
    for s in h["steps"]:
        add_row(steps, s["seq"], s["time"], s["actor"], s["action"], s["detail"])
    out.print(deliveries, steps)


@app.command()
def queues(config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Deliveries per destination and state, with the oldest one's age (operator or auditor key)."""
    rows = Api(url, config, key).call("GET", "/api/v1/queues")
    t = table("Queues", "destination", "state", "count", "oldest")
    for r in rows:
        add_row(t, r["destination"], r["state"], r["count"], _when(r.get("oldest")))
    out.print(t if rows else "no deliveries yet")


@app.command("dead-letters")
def dead_letters(config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None,
                 destination: Annotated[str | None, typer.Option(help="only this agency")] = None) -> None:
    """Deliveries that gave up and need an operator, with the reason each failed."""
    params = {"destination": destination} if destination else {}
    rows = Api(url, config, key).call("GET", "/api/v1/dead-letters", params=params)
    t = table("Dead letters", "delivery", "to", "case", "attempts", "since", "reason")
    for d in rows:
        add_row(t, d["id"], d["destination"], d["case_number"], d["attempts"], _when(d["updated_at"]),
                d["reason"])
    out.print(t if rows else "no dead letters")


ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="why; logged with your name")]


@app.command()
def replay(delivery_id: Annotated[str, typer.Argument(help="the delivery to send again")], reason: ReasonOpt,
           config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Deliver again from the original record, to that delivery's destination only (operator key)."""
    api = Api(url, config, key)
    r = api.call("POST", f"/api/v1/deliveries/{delivery_id}/replay", json={"reason": reason})
    out.print(Text(f"replay queued: new delivery {r['new_delivery']} to {r.get('destination', '?')}"))


@app.command("replay-dead")
def replay_dead(destination: Annotated[str, typer.Argument(help="agency code whose dead letters to replay")],
                reason: ReasonOpt,
                limit: Annotated[int, typer.Option(min=1, max=1000, help="at most this many")] = 500,
                config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """After a receiver's outage: replay its dead letters, oldest first, each from its raw record (operator key)."""
    r = Api(url, config, key).call("POST", "/api/v1/dead-letters/replay", timeout=None,
                                   json={"destination": destination, "reason": reason, "limit": limit})
    out.print(Text(f"{len(r['replayed'])} dead letter(s) to {destination} queued again; "
                   f"{r['dead_left']} still dead"))
    for s in r["skipped"]:
        out.print(Text(f"  skipped {s['delivery']} (case {s['case']}): {s['why']}"))


@app.command()
def discard(delivery_id: Annotated[str, typer.Argument(help="the dead or waiting delivery to give up")],
            reason: ReasonOpt, config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Give up a delivery for good (operator key); the exchange log keeps who and why."""
    Api(url, config, key).call("POST", f"/api/v1/deliveries/{delivery_id}/discard", json={"reason": reason})
    out.print(Text(f"delivery {delivery_id} discarded"))


# -- the demo ---------------------------------------------------------------------------------------
@app.command()
def retention(days: Annotated[float | None, typer.Option(help="override the configured payload_days")] = None,
              config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None) -> None:
    """Drop the payloads of finished exchanges now, as the retention policy says (operator key)."""
    api = Api(url, config, key)
    r = api.call("POST", "/api/v1/retention/run", params={} if days is None else {"days": days}, timeout=None)
    out.print(Text(r["summary"]))


@app.command()
def demo(
    cases: Annotated[int, typer.Option(min=1, max=1000, help="sample cases police starts")] = 5,
    duration: Annotated[float | None, typer.Option(
        min=0.1, help="stop when all cases arrived or after this many seconds; default: Ctrl-C")] = None,
    data_dir: Annotated[Path, typer.Option(help="the demo's own folder, wiped at each run")] = Path(
        "demo-data"),
    time_scale: Annotated[float | None, typer.Option(
        min=1, help="instead: an arrest request left unanswered, its time-limit clock running this many times "
        "faster than the wall clock (e.g. 200000: seven days in about 3 s)")] = None,
) -> None:
    """A gateway plus simulated police (SFTP), procuratorate (SOAP), court and justice bureau (HTTP)."""
    from gateway import demo as demo_mod

    if time_scale is not None:
        from gateway import clockdemo

        raise typer.Exit(clockdemo.run(data_dir.resolve(), time_scale, out))

    try:
        result = demo_mod.run(data_dir.resolve(), cases, duration, out)
    except GatewayError as e:
        fail(str(e))
    if not result.ok:
        raise typer.Exit(1)


def _add_subcommands() -> None:
    """Sub-apps each owned by their module: the exchange log's, the database's, the mapping tooling's."""
    from gateway.audit.cli import audit_app
    from gateway.backup_cli import backup_command, restore_command
    from gateway.case_cli import case
    from gateway.conformance_cli import conformance
    from gateway.evidence.cli import evidence_app
    from gateway.mapping_cli import mapping_app, validate
    from gateway.stats.cli import stats_app
    from gateway.store.cli import db_app

    app.add_typer(audit_app, name="audit", help="verify the exchange log; export a case's evidence bundle")
    app.add_typer(evidence_app, name="evidence", help="check signed evidence of submission and delivery")
    app.add_typer(mapping_app, name="mapping", help="test and scaffold agency mapping packs")
    app.add_typer(db_app, name="db", help="apply or show the store's schema migrations")
    app.add_typer(keys_app, name="keys", help="make API keys")
    app.add_typer(stats_app, name="stats", help="统计与排名 / statistics per agency, daily rankings, monthly export")
    app.command("validate")(validate)
    app.command("backup")(backup_command)
    app.command("restore")(restore_command)
    app.command("conformance")(conformance)
    app.command("case")(case)


if __name__ != "__main__":  # `python -m gateway.cli` runs the module proper below: its sub-apps import it back
    _add_subcommands()


def main() -> None:
    """Console entry point: any error left unexplained still ends in one line, not a traceback."""
    try:
        app()
    except GatewayError as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_USAGE if isinstance(e, ConfigError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    from gateway.cli import main as module_main  # the importable module, with its sub-apps

    module_main()

