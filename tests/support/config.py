"""The configurations most tests start from: three agencies on memory adapters, or POLICE over HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def base_config(data_dir: Path, *, outbound: dict[str, Any] | None = None, **gateway: Any) -> dict[str, Any]:
    out = outbound or {"adapter": "memory"}
    api = {"min_key_length": 1, **gateway.pop("api", {})}  # tests' keys are short, e.g. "police-key-1"
    return {
        "gateway": {"node": "test-node", "data_dir": str(data_dir), "store": {"durability": "normal"}, **gateway,
                    "api": api},
        "agencies": [
            {"code": "POLICE", "name": "City Police", "role": "police",
             "inbound": [{"name": "police-in", "adapter": "memory"}],
             "outbound": {"name": "police-out", **out}},
            {"code": "PROC", "name": "City Procuratorate", "role": "procuratorate",
             "inbound": [{"name": "proc-in", "adapter": "memory"}],
             "outbound": {"name": "proc-out", **out, "retry": {"initial_backoff": 0.05, "max_backoff": 0.2,
                                                               "jitter": 0.01, "max_attempts": 50}}},
            {"code": "COURT", "name": "City Court", "role": "court",
             "outbound": {"name": "court-out", **out}},
        ],
        "routes": [
            {"stage": "prosecution-review", "action": "transfer-for-prosecution", "to": ["PROC"]},
            {"stage": "trial", "action": "indictment", "to": ["COURT"]},
            {"stage": "trial", "action": "judgment", "to": ["PROC", "POLICE"]},
        ],
    }


def http_config(data_dir: Path, receiver_url: str, **gateway: Any) -> dict[str, Any]:
    """POLICE sends over HTTP with its API key (from POLICE_KEY); PROC receives by HTTP POST."""
    out = {"adapter": "http", "settings": {"url": receiver_url, "read_timeout": 2}}
    cfg = base_config(data_dir, outbound=out, **gateway)
    police = cfg["agencies"][0]
    police["api_key"] = {"env": "POLICE_KEY"}
    police["inbound"] = [{"name": "police-in", "adapter": "http"}]
    return cfg
