"""API keys of the configuration's principals: each its own, none short enough to guess, and new ones.

Two principals with one key would be one principal to the API (the last registered wins), so a
shared key is refused, as is a short one. Keys are secret references resolved at start, so these
checks run where they are resolved: `gateway check-config` and `gateway run`, and the node itself
before it registers the keys. A message names the holders, never a key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from gateway.config import GatewayConfig
from gateway.errors import ConfigError
from gateway.secrets import SecretRef

NEW_KEY_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 random bits


@dataclass(frozen=True)
class Holder:
    """Who a key admits: an agency (submits as itself), an operator or an auditor."""

    role: str  # agency | operator | auditor
    name: str
    agency: str | None = None

    def __str__(self) -> str:
        return f"{self.role} {self.name}"


def key_refs(config: GatewayConfig) -> list[tuple[Holder, SecretRef]]:
    """Every API key the configuration names, with its holder."""
    refs = [(Holder("agency", a.code, a.code), a.api_key) for a in config.agencies if a.api_key]
    refs += [(Holder("operator", p.name), p.key) for p in config.access.operators]
    refs += [(Holder("auditor", p.name), p.key) for p in config.access.auditors]
    refs += [(Holder("witness", p.name), p.key) for p in config.access.witnesses]
    return refs


def key_problems(config: GatewayConfig, keys: list[tuple[Holder, str]]) -> list[str]:
    """What is wrong with these resolved keys: too short, or the same as another holder's."""
    minimum = config.gateway.api.min_key_length
    problems = []
    first: dict[str, Holder] = {}
    for holder, key in keys:
        if len(key) < minimum:
            problems.append(f"{holder}: the API key has {len(key)} characters, fewer than "
                            f"gateway.api.min_key_length ({minimum}); make one with `gateway keys new`")
        if key in first:
            problems.append(f"{first[key]} and {holder} have the same API key; each needs its own "
                            "(make one with `gateway keys new`)")
        else:
            first[key] = holder
    return problems


def resolved_keys(config: GatewayConfig) -> list[tuple[Holder, str]]:
    """Every principal's key, resolved and checked; a ConfigError naming the file and holders if one is
    missing, too short or shared."""
    source = config.source or "<config>"
    keys = []
    for holder, ref in key_refs(config):
        try:
            keys.append((holder, ref.resolve()))
        except ConfigError as e:
            raise ConfigError(f"{source}: {holder}: {str(e).removeprefix('secret: ')}") from None
    problems = key_problems(config, keys)
    if problems:
        raise ConfigError("\n".join(f"{source}: {p}" for p in problems))
    return keys


def new_key() -> str:
    """A key no one can guess: 256 random bits as 43 URL-safe characters."""
    return secrets.token_urlsafe(NEW_KEY_BYTES)
