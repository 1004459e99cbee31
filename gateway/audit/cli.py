"""`gateway audit verify` and `gateway audit export`: the auditor's two commands.

Runs on its own for testing: `python -m gateway.audit.cli verify --config gateway.yaml`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from rich.console import Console
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from gateway.audit.export import Exported, export_case
from gateway.audit.verify import verify_store
from gateway.audit.verify_bundle import BundleError, Verdict, key_fingerprint, load_public_key, verify_bundle
from gateway.config import GatewayConfig, load_config
from gateway.errors import GatewayError
from gateway.store import make_store

audit_app = typer.Typer(help="Prove the exchange log was never altered; export evidence for one case.",
                        no_args_is_help=True)
console = Console()

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="the gateway's YAML configuration")]
KeyOpt = Annotated[Path | None, typer.Option(
    "--public-key", help="the gateway's public key (PEM); default: derived from the configured signing key")]


def _public_key(config: GatewayConfig, pem: Path | None) -> Ed25519PublicKey:
    if pem is not None:
        return load_public_key(pem.read_bytes())
    path = Path(config.gateway.signing_key or config.data_dir / "signing-key.pem")
    if not path.exists():
        raise GatewayError(f"no signing key at {path}: pass --public-key with the gateway's public key")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise GatewayError(f"{path} does not hold an Ed25519 private key")
    return key.public_key()


def _evidence_cert(config: GatewayConfig) -> bytes | None:
    """The node's evidence certificate, put in the bundle beside the evidence it checks."""
    key = config.gateway.evidence.key
    path = Path(key).with_name("evidence-cert.pem") if key else config.data_dir / "evidence-cert.pem"
    return path.read_bytes() if path.exists() else None


def _setup(config_path: Path, pem: Path | None) -> tuple[GatewayConfig, Ed25519PublicKey]:
    try:
        config = load_config(config_path)
        s = config.gateway.store
        db = Path(s.path or config.data_dir / "gateway.db")
        if s.backend == "sqlite" and not db.exists():  # opening would create an empty log that "verifies"
            raise GatewayError(f"there is no gateway database at {db}")
        return config, _public_key(config, pem)
    except (GatewayError, OSError, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None


@audit_app.command()
def verify(config: ConfigOpt, public_key: KeyOpt = None) -> None:
    """Re-check the whole log: exit 0 when intact, 1 when tampered (naming the first bad entry)."""
    cfg, public = _setup(config, public_key)

    async def run() -> Verdict:
        store = make_store(cfg)
        await store.open()
        try:
            with console.status("checking the exchange log...") as status:
                return await verify_store(store, public,
                                          progress=lambda n: status.update(f"{n} entries read"))
        finally:
            await store.close()

    verdict = asyncio.run(run())
    ok = verdict.ok
    console.print(Panel(verdict.summary(), title=f"exchange log, key {key_fingerprint(public)}",
                        border_style="green" if ok else "red"))
    raise typer.Exit(0 if ok else 1)


@audit_app.command()
def export(
    case: Annotated[str, typer.Option("--case", help="the unified case number")],
    out: Annotated[Path, typer.Argument(help="folder to write the bundle (and its .zip) into")],
    config: ConfigOpt,
    public_key: KeyOpt = None,
    payloads: Annotated[bool, typer.Option(help="include payload bodies, not only their hashes")] = True,
    check_log: Annotated[bool, typer.Option(help="re-check the whole log first (a bundle alone cannot show "
                                                 "a case entry deleted between its windows)")] = True,
) -> None:
    """Write a self-contained evidence bundle for one case, then verify it as an auditor would."""
    cfg, public = _setup(config, public_key)

    async def run() -> tuple[Verdict | None, Exported]:
        store = make_store(cfg)
        await store.open()
        try:
            log_verdict = None
            if check_log:
                with console.status("checking the exchange log...") as status:
                    log_verdict = await verify_store(store, public,
                                                     progress=lambda n: status.update(f"{n} entries read"))
            with Progress(TextColumn("exporting case " + case), BarColumn(), MofNCompleteColumn(),
                          console=console) as bar:
                task = bar.add_task("entries", total=None)
                return log_verdict, await export_case(
                    store, case, out, public, payloads,
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
