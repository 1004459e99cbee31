"""`gateway audit verify` and `gateway audit export`: the auditor's two commands.

Runs on its own for testing: `python -m gateway.audit.cli verify --config gateway.yaml`.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gateway.audit.chain_rules import Verdict, key_fingerprint, load_public_key
from gateway.audit.export import Exported, export_case
from gateway.audit.incremental import Mark, verify_incremental
from gateway.audit.log_policy import Policy
from gateway.audit.signing import Signer
from gateway.audit.verify import verify_store
from gateway.audit.verify_bundle import BundleError, verify_bundle
from gateway.audit.witness import WitnessError, read_witness
from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.store import make_store
from gateway.store.shared import iso_now

audit_app = typer.Typer(help="Prove the exchange log was never altered; export evidence for one case.",
                        no_args_is_help=True)
console = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="the gateway's YAML configuration")]
KeyOpt = Annotated[Path | None, typer.Option(
    "--public-key", help="the gateway's public key (PEM), obtained apart from the data being checked")]
FingerprintOpt = Annotated[str | None, typer.Option(
    "--key-fingerprint", help="the signing key's fingerprint, as published; default: gateway.audit_key_fingerprint")]


def _expected_key(config: GatewayConfig, pem: Path | None,
                  fingerprint: str | None) -> tuple[Ed25519PublicKey | None, str]:
    """The key checkpoints must be signed with: from the command line or the configuration, never from
    the data folder (whoever rewrites the log can put a key of their own there)."""
    if pem is not None:
        public = load_public_key(pem.read_bytes())
        fp = key_fingerprint(public)
        if fingerprint and fingerprint != fp:
            raise GatewayError(f"--public-key 的指纹为 {fp}，与 --key-fingerprint {fingerprint} 不符 / "
                               f"the key in {pem} has fingerprint {fp}, not {fingerprint}")
        return public, fp
    fp = fingerprint or config.gateway.audit_key_fingerprint or ""
    if not fp:
        raise GatewayError("需要预期的签名密钥：请给出 --public-key 或 --key-fingerprint，或在配置中设置 "
                           "gateway.audit_key_fingerprint / the expected signing key is needed: pass --public-key "
                           "or --key-fingerprint, or set gateway.audit_key_fingerprint (a key found in the data "
                           "folder is never trusted)")
    return None, fp


def _node_signer(config: GatewayConfig, pin: str) -> Signer:
    """The node's own key (to sign an export's manifest), which must be the pinned one."""
    path = Path(config.gateway.signing_key or config.data_dir / "signing-key.pem")
    if not path.exists():
        raise GatewayError(f"{path}: 没有签名密钥 / no signing key there")
    signer = Signer.load_or_create(path)
    if signer.key_id != pin:
        raise GatewayError(f"{path}: 签名密钥 {signer.key_id} 不是预期的密钥 {pin} / the signing key there is "
                           f"{signer.key_id}, not the expected key {pin}")
    return signer


def _evidence_cert(config: GatewayConfig) -> bytes | None:
    """The node's evidence certificate, put in the bundle beside the evidence it checks."""
    key = config.gateway.evidence.key
    path = Path(key).with_name("evidence-cert.pem") if key else config.data_dir / "evidence-cert.pem"
    return path.read_bytes() if path.exists() else None


def _setup(config_path: Path, pem: Path | None,
           fingerprint: str | None = None) -> tuple[GatewayConfig, Ed25519PublicKey | None, str]:
    try:
        config = load_config(config_path)
        s = config.gateway.store
        db = Path(s.path or config.data_dir / "gateway.db")
        if s.backend == "sqlite" and not db.exists():  # opening would create an empty log that "verifies"
            raise GatewayError(f"there is no gateway database at {db}")
        return config, *_expected_key(config, pem, fingerprint)
    except (GatewayError, OSError, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None


def _policy(config: GatewayConfig, live: bool, witness: str | None, pin: str) -> Policy:
    witnessed: list[dict[str, Any]] = []
    if witness:
        api_key = config.gateway.witness.api_key.resolve() if config.gateway.witness.api_key else None
        try:
            witnessed = read_witness(witness, pin, api_key)
        except WitnessError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2) from None
    g = config.gateway
    return Policy(every=g.checkpoint_every, seconds=g.checkpoint_seconds, live=iso_now() if live else None,
                  witnessed=tuple(witnessed))


@audit_app.command()
def verify(
    config: ConfigOpt, public_key: KeyOpt = None, key_fingerprint: FingerprintOpt = None,
    live: Annotated[bool, typer.Option("--live", help="the node is running: allow its young unsigned tail")] = False,
    witness: Annotated[str | None, typer.Option(
        "--witness", help="a witness's URL (…/api/v1/witness) or file: its checkpoints must match the log")] = None,
    full: Annotated[bool, typer.Option("--full", help="read the whole log again, not only what it gained since "
                                                      "the last verification")] = False,
    state: Annotated[Path | None, typer.Option(
        "--state", help="verify only what the log gained since the last run, whose position is kept in this file "
                        "(keep it away from the gateway's data and database)")] = None,
) -> None:
    """Re-check the log: exit 0 when intact, 1 when tampered (naming the first bad entry and the check).

    With --state, after a first full run only the entries after the last position a signed checkpoint
    proved are read (that position is re-checked: same hash, signed by the pinned key); --full reads
    everything again (and moves the position on)."""
    cfg, public, pin = _setup(config, public_key, key_fingerprint)
    policy = _policy(cfg, live, witness, pin)

    async def run() -> tuple[Verdict, Mark | None]:
        store = make_store(cfg)
        await store.open()
        try:
            first = await store.audit_entries(limit=1)
            log_id = first[0].entry_hash[:32] if first else "empty"
            with console.status("checking the exchange log...") as status:
                return await verify_incremental(store, public, state, pin=pin, log_id=log_id, policy=policy,
                                                full=full, progress=lambda n: status.update(f"{n} entries read"))
        finally:
            await store.close()

    t0 = time.perf_counter()
    verdict, mark = asyncio.run(run())
    took = time.perf_counter() - t0
    ok = verdict.ok
    extra = f", witness {len(policy.witnessed)} checkpoint(s)" if witness else ""
    how = (f"从第 {mark.seq} 条（上次核验、已签名）起核验 / from entry {mark.seq} (verified and signed before)"
           if mark else "全部核验 / whole log")
    console.print(Panel(f"{verdict.summary()}\n{how}, {took:.1f} s", title=f"exchange log, key {pin}{extra}",
                        border_style="green" if ok else "red"))
    raise typer.Exit(0 if ok else 1)


@audit_app.command()
def export(
    case: Annotated[str, typer.Option("--case", help="the unified case number")],
    out: Annotated[Path, typer.Argument(help="folder to write the bundle (and its .zip) into")],
    config: ConfigOpt,
    public_key: KeyOpt = None,
    key_fingerprint: FingerprintOpt = None,
    live: Annotated[bool, typer.Option("--live", help="the node is running: allow its young unsigned tail")] = False,
    payloads: Annotated[bool, typer.Option(help="include payload bodies, not only their hashes")] = True,
    check_log: Annotated[bool, typer.Option(help="re-check the whole log first (a bundle alone cannot show "
                                                 "a case entry deleted between its windows)")] = True,
) -> None:
    """Write a self-contained evidence bundle for one case, then verify it as an auditor would."""
    cfg, _, pin = _setup(config, public_key, key_fingerprint)
    try:
        signer = _node_signer(cfg, pin)
    except GatewayError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    public = signer.public
    policy = _policy(cfg, live, None, pin)

    async def run() -> tuple[Verdict | None, Exported]:
        store = make_store(cfg)
        await store.open()
        try:
            log_verdict = None
            if check_log:
                with console.status("checking the exchange log...") as status:
                    log_verdict = await verify_store(store, public, pin=pin, policy=policy,
                                                     progress=lambda n: status.update(f"{n} entries read"))
            with Progress(TextColumn("exporting case " + case), BarColumn(), MofNCompleteColumn(),
                          console=console) as bar:
                task = bar.add_task("entries", total=None)
                return log_verdict, await export_case(
                    store, case, out, signer, payloads,
                    progress=lambda done, n: bar.update(task, completed=done, total=n),
                    evidence_cert=_evidence_cert(cfg))
        finally:
            await store.close()

    try:
        log_verdict, result = asyncio.run(run())
    except (LookupError, FileExistsError) as e:
        console.print(f"[red]{e.args[0]}[/red]")
        raise typer.Exit(2) from None
    try:
        report = verify_bundle(result.directory, public)
    except BundleError as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    lines = [*report.lines(), f"bundle: {result.directory}", f"archive: {result.archive}"]
    if log_verdict is not None:
        lines.insert(0, f"whole log: {log_verdict.summary()}")
    ok = report.ok and (log_verdict is None or log_verdict.ok)
    console.print(Panel("\n".join(lines), title=f"case {case}", border_style="green" if ok else "red"))
    raise typer.Exit(0 if ok else 1)


if __name__ == "__main__":
    audit_app()
