"""`gateway evidence verify FILE`: check one evidence document offline.

Exit 0: signed by the trusted key and unaltered; 1: not (changed, or another key); 2: the file or
the key cannot be read. Messages in Chinese, then English.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from gateway.errors import GatewayError
from gateway.evidence.signer import EvidenceInvalid, embedded_cert, load_trusted, verify

evidence_app = typer.Typer(help="Check signed evidence of submission and delivery.", no_args_is_help=True)
console = Console()


def _trusted_from_config(config: Path) -> Path:
    from gateway.config import load_config

    cfg = load_config(config)
    key = cfg.gateway.evidence.key
    return Path(key).with_name("evidence-cert.pem") if key else cfg.data_dir / "evidence-cert.pem"


@evidence_app.command("verify")
def verify_cmd(
    file: Annotated[Path, typer.Argument(help="the evidence document (XML)")],
    public_key: Annotated[Path | None, typer.Option(
        "--public-key", help="the node's evidence certificate or public key (PEM), obtained from its operator")] = None,
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="take the certificate from this node's data folder (evidence-cert.pem)")] = None,
) -> None:
    """Check that FILE was signed by the trusted key and not changed since; print what it certifies."""
    try:
        data = file.read_bytes()
        pem_path = public_key or (_trusted_from_config(config) if config else None)
        trusted = load_trusted(pem_path.read_bytes()) if pem_path else None
    except (OSError, ValueError, GatewayError) as e:
        console.print(f"[red]无法读取 / cannot read: {escape(str(e))}[/red]")
        raise typer.Exit(2) from None
    try:
        if trusted is None:
            trusted = embedded_cert(data)
            console.print("[yellow]未给出可信证书：仅以文档自带的证书核验，只能证明签名后未被改动，不能证明签发者。"
                          "请用 --public-key 指定网关运维方提供的证书。 / No trusted certificate given: checked "
                          "against the certificate inside the document, which shows the document is unaltered "
                          "since signing but not who signed it; pass --public-key with the certificate from the "
                          "gateway's operator.[/yellow]")
        v = verify(data, trusted)
    except EvidenceInvalid as e:
        console.print(f"[red]证据无效 / NOT VALID: {escape(file.name)}\n{escape(e.zh)}\n{escape(e.en)}[/red]")
        raise typer.Exit(1) from None
    console.print(f"[green]证据有效 / VALID: {escape(file.name)}[/green] ({v.kind})")
    console.print(f"签发者 / signed by: {escape(v.signer)}  SHA-256 {v.fingerprint}")
    for k, val in v.facts.items():
        console.print(f"  {k}: {escape(val)}")

