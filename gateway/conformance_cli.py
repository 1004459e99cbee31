"""`gateway conformance AGENCY --config FILE`: run an agency's conformance run on a running node and print it.

The node does the run (gateway/conformance.py), so the command line, the console's button and the
API give the same report; this prints it for the operator, Chinese first, and exits 1 when the
agency is not conformant.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from gateway.cli import Api, ConfigOpt, KeyOpt, UrlOpt, add_row, out, table


def conformance(agency: Annotated[str, typer.Argument(help="the agency code, e.g. POLICE")],
                config: ConfigOpt = None, url: UrlOpt = None, key: KeyOpt = None,
                save: Annotated[Path | None, typer.Option(help="write the bytes each destination would get to "
                                                              "this folder, as SAMPLE.DESTINATION.xml")] = None,
                ) -> None:
    """Send each sample of the agency's pack through its channel on the running node in test mode (delivered
    nowhere, never counted) and report per sample: as expected or not, bytes per destination, time (operator key)."""
    r = Api(url, config, key).call("POST", f"/api/v1/conformance/{agency}", timeout=None)
    t = table(f"一致性测试 / conformance run: {r['agency']} ({r['channel']}, {r['adapter']})",
              "样例 / sample", "应为 / expected", "结果 / outcome", "", "耗时 / ms", "发往 / outbound", "规则 / rules")
    for s in r["samples"]:
        sizes = ", ".join(f"{d} {len(base64.b64decode(b)):,} B" for d, b in s["outbound"].items()) or "-"
        mark = "✓" if s["ok"] else "✗ 不符 / unexpected"
        add_row(t, s["sample"], s["expected"], s["outcome"], mark, f"{s['seconds'] * 1000:.1f}", sizes,
                s["error"] or " ".join(s["rules"]))
    out.print(t)
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
        for s in r["samples"]:
            for dest, b in s["outbound"].items():
                (save / f"{Path(s['sample']).stem}.{dest}.xml").write_bytes(base64.b64decode(b))
        out.print(Text(f"发往各机构的报文已写入 / the bytes for each destination are in {save}"))
    colour = "green" if r["passed"] else "red"
    out.print(f"[{colour}]{escape(r['status'])}[/{colour}]  "
              f"({sum(s['ok'] for s in r['samples'])}/{len(r['samples'])}, {r['seconds']:.2f} s)")
    if not r["passed"]:
        out.print(Text("样例结果与预期不符，详见上表；修正映射包或接入后重新运行 / "
                       "samples did not come out as expected (see above); fix the pack or the channel and run again"))
        raise typer.Exit(1)
