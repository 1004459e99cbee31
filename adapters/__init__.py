"""Protocol adapters, found through the entry-point group `case_exchange.adapters`.

Each entry point names an `AdapterSpec` (`adapters.base`); the built-in ones (memory, http, soap,
sftp, folder) are registered in this package's pyproject.toml like any other package's. A spec's
module is imported only when a channel uses it, so a deployment that never speaks SOAP never
imports zeep.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import entry_points

from adapters.base import AdapterSpec

GROUP = "case_exchange.adapters"
DISTRIBUTION = "case-exchange-gateway"


def names() -> list[str]:
    """Every adapter name installed in this environment."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def builtin_names() -> list[str]:
    """The adapters this package itself registers (documented in the configuration reference)."""
    return sorted({ep.name for ep in entry_points(group=GROUP) if ep.dist and ep.dist.name == DISTRIBUTION})


@cache
def load(name: str) -> AdapterSpec:
    """The spec registered as `name`; KeyError naming the known adapters if there is none."""
    found = entry_points(group=GROUP, name=name)
    if not found:
        raise KeyError(f"unknown adapter '{name}'; known adapters: {', '.join(names())}")
    spec = next(iter(found)).load()
    if not isinstance(spec, AdapterSpec) or spec.name != name:
        raise KeyError(f"adapter '{name}' is registered, but its entry point does not name an AdapterSpec "
                       f"called '{name}'")
    return spec
