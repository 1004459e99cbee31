"""Assembles the clocks from the configuration: the limits, the keeper the store writes with, the
scanner, and the checks that every agency a warning may go to can read one.

`gateway check-config` and the node's start call the same `build`, so a problem stops both with
the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry

from gateway.clockkeeper import ClockKeeper
from gateway.clocknotice import check_pack
from gateway.clockscan import ClockStore, Scanner
from gateway.clocksettings import ClockSetup, setup
from gateway.clocktime import Clock
from gateway.config import GatewayConfig
from gateway.mapping import MappingPack


@dataclass(frozen=True)
class Clocks:
    setup: ClockSetup
    keeper: ClockKeeper


def build(cfg: GatewayConfig, pack_of: Callable[[str], MappingPack], clock: Clock | None = None) -> Clocks | None:
    """The clocks of a configuration, checked; None when they are switched off. Raises ConfigError."""
    if not cfg.clocks.enabled:
        return None
    source = cfg.source or "<config>"
    base = Path(source).parent if cfg.source else Path(".")
    out = {a.code for a in cfg.agencies if a.outbound is not None}
    s = setup(cfg.clocks, source, base, out)
    roles = {a.code: a.role for a in cfg.agencies}
    responsible = {limit.responsible for limit in s.limits.limits}
    told = {a.code for a in cfg.agencies if a.role in responsible and a.outbound is not None}
    told |= {code for sup in cfg.clocks.supervisors for code in sup.to}
    for code in sorted(told):
        check_pack(code, pack_of(code), source)
    return Clocks(s, ClockKeeper(s, roles, cfg.gateway.node, clock))


def scanner(clocks: Clocks, store: ClockStore, pack_of: Callable[[str], MappingPack], node: str,
            registry: CollectorRegistry | None) -> Scanner:
    return Scanner(store, clocks.keeper, clocks.keeper.clock, pack_of, node, registry)


def problems(cfg: GatewayConfig) -> list[str]:
    """The clocks' problems for `gateway check-config`: limits file, holidays, supervisors, notice templates."""
    from gateway.errors import GatewayError
    from gateway.mapping import load_pack

    def pack_of(code: str) -> MappingPack:
        out = cfg.agency(code).outbound
        assert out is not None
        return load_pack(out.mapping, tuple(cfg.gateway.mapping_dirs))

    try:
        build(cfg, pack_of)
    except GatewayError as e:
        return str(e).splitlines()
    return []
