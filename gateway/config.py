"""One YAML file describes the gateway: agencies, their channels, and routes.

It reads like the flow (Benthos-style): each agency's inbound channels (adapter + settings +
mapping pack), its outbound channel, and routes from (stage, action) to receiving agencies.
Adapter settings are validated against the adapter's own typed model, so one source gives
both validation and the reference docs. Errors name the file, the key path and what was expected.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError, ValidationInfo, field_validator, model_validator

import adapters
from gateway import yamlfile
from gateway.clocksettings import ClockSettings
from gateway.config_sections import (
    Access,
    Agency,
    ApiSettings,
    DisabledRule,
    InboundChannel,
    LocalRule,
    OutboundChannel,
    Principal,
    RankingMetric,
    RefusalSettings,
    RetentionSettings,
    RetryPolicy,
    Route,
    RuleAdaptations,
    RuleMessage,
    RuleSelector,
    RuleSeverity,
    StatsSettings,
    StoreSettings,
    TlsSettings,
    WitnessSettings,
    _Strict,
)
from gateway.errors import ConfigError
from gateway.evidence.settings import EvidenceSettings
from gateway.seals.settings import SealSettings
from gateway.xmllimits import LIBXML2_DEPTH, LIBXML2_TEXT, XmlLimits

if TYPE_CHECKING:
    from gateway.rule_adaptations import Adaptation

# Callers import every configuration model from here; the sections live in gateway.config_sections.
__all__ = [
    "Access", "Agency", "ApiSettings", "DisabledRule", "GatewayConfig", "GatewaySettings", "InboundChannel",
    "LocalRule", "OutboundChannel", "Principal", "RankingMetric", "RefusalSettings", "RetentionSettings",
    "RetryPolicy", "Route", "RuleAdaptations", "RuleMessage", "RuleSelector", "RuleSeverity", "StatsSettings",
    "StoreSettings", "TlsSettings", "WitnessSettings", "load_config", "parse_config",
]


class GatewaySettings(_Strict):
    """The node itself: identity, data folder, store, API and limits."""

    node: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}",
                      description="this node's name in the exchange log; default HOSTNAME-PID")
    data_dir: str = Field("./data", description="database and keys; relative to the config file")
    workers: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = Field(
        1, description="processes serving this node, sharing its port, its database, its one hash chain and "
        "idempotency table; each takes records in and delivers (leases keep deliveries apart). auto: one per "
        "CPU core. Limits such as max_records_in_progress and the metrics hold per process")
    store: StoreSettings = Field(default_factory=StoreSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    refusals: RefusalSettings = Field(default_factory=RefusalSettings)
    signing_key: str | None = Field(None, description="Ed25519 PEM file; default DATA_DIR/signing-key.pem")
    checkpoint_every: int = Field(
        500, ge=1, description="a checkpoint of the log at least every N entries (of the log, whichever node or "
        "process wrote them); `gateway audit verify` fails a longer unsigned run")
    checkpoint_seconds: float = Field(
        60.0, gt=0, description="a checkpoint at least every T seconds while the log has unsigned entries; "
        "`gateway audit verify` fails a longer unsigned stretch (10 seconds' grace)")
    audit_key_fingerprint: str | None = Field(
        None, description="fingerprint of the log's signing key, published when the node was set up: `gateway "
        "audit verify` checks every checkpoint against it, never against a key found in the data")
    witness: WitnessSettings = Field(default_factory=WitnessSettings,
                                     description="copies of every checkpoint kept outside this node's storage")
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings,
                                       description="signed evidence of submission and of delivery")
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    stats: StatsSettings = Field(default_factory=StatsSettings)
    max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="larger records are refused")
    max_xml_elements: int = Field(
        100_000, ge=100, description="elements one XML file (a record, a SOAP request) may hold; a file with more is "
        "refused before it is parsed, as each element costs memory many times its size")
    max_xml_attributes: int = Field(100, ge=8, description="attributes one element may carry")
    max_xml_attributes_total: int = Field(200_000, ge=100, description="attributes one XML file may carry in all")
    max_xml_depth: int = Field(LIBXML2_DEPTH, ge=8, le=LIBXML2_DEPTH,
                               description=f"levels elements may be nested; at most {LIBXML2_DEPTH}, the XML "
                                           "parser's own bound")
    max_xml_text_bytes: int = Field(
        LIBXML2_TEXT, ge=1024, le=LIBXML2_TEXT,
        description=f"bytes of one text, attribute value or start tag with its attributes; at most {LIBXML2_TEXT:,}, "
        "the XML parser's own bound")
    max_records_in_progress: int = Field(
        64, ge=1, description="records pushed to this node (HTTP, SOAP, REST API) that it takes in at once, counted "
        "from before their body is read; one more is answered busy (HTTP 503 with Retry-After, a SOAP Server "
        "fault) for its sender to resend")
    max_bytes_in_progress: int = Field(
        16 * 1024 * 1024, ge=1024 * 1024,
        description="bytes of records in the pipeline at once (each costs memory several times its size); a "
        "pushed record read while this much is in progress is answered busy, a pulled one (SFTP, folder) waits")
    validations_per_second: float = Field(
        20.0, gt=0, description="records one agency may have checked by the validation service (POST "
        "/api/v1/validate, SOAP ValidateCaseRecord) per second, with a burst of as many; more are answered 429 "
        "with Retry-After, so a case system checking as officers type cannot crowd out submissions")
    lease_seconds: float = Field(30.0, gt=0, description="a delivery leased by a dead worker is retaken after this")
    standard_versions: list[str] = Field(default_factory=lambda: ["1"], description="accepted major versions")
    mapping_dirs: list[str] = Field(default_factory=list, description="folders searched for mapping packs first")

    def xml_limits(self) -> XmlLimits:
        return XmlLimits(self.max_xml_elements, self.max_xml_attributes, self.max_xml_attributes_total,
                         self.max_xml_depth, self.max_xml_text_bytes)


class GatewayConfig(_Strict):
    gateway: GatewaySettings = Field(default_factory=GatewaySettings, description="the node's own settings")
    agencies: list[Agency] = Field(description="the connected agencies")
    routes: list[Route] = Field(default_factory=list, description="which records go to which agencies")
    access: Access = Field(default_factory=Access, description="operator and auditor API keys")
    rules: RuleAdaptations = Field(default_factory=RuleAdaptations,
                                   description="this deployment's adaptations of the standard's rules")
    seals: SealSettings = Field(default_factory=SealSettings,
                                description="the electronic seals on legal documents: trust store and checks")
    clocks: ClockSettings = Field(default_factory=ClockSettings, description="statutory time-limit clocks")
    source: str | None = Field(None, exclude=True)

    @field_validator("rules")
    @classmethod
    def _adaptations(cls, v: RuleAdaptations, info: ValidationInfo) -> RuleAdaptations:
        if v.disable or v.severity or v.add:
            settings = info.data.get("gateway")
            versions = settings.standard_versions if isinstance(settings, GatewaySettings) else ["1"]
            agencies = info.data.get("agencies")
            codes = {a.code for a in agencies} if isinstance(agencies, list) else None
            from gateway.rule_adaptations import check_config

            check_config(v, versions, codes)
        return v

    @field_validator("routes")
    @classmethod
    def _listed_codes(cls, v: list[Route], info: ValidationInfo) -> list[Route]:
        from gateway.routecodes import headline, route_problems

        settings = info.data.get("gateway")
        unlisted = route_problems(v, settings.standard_versions if isinstance(settings, GatewaySettings) else ["1"])
        if unlisted:
            raise ValueError("\n".join([headline(len(unlisted)), *("  " + u for u in unlisted)]))
        return v

    @field_validator("agencies")
    @classmethod
    def _unique_codes(cls, v: list[Agency]) -> list[Agency]:
        seen: set[str] = set()
        for a in v:
            if a.code in seen:
                raise ValueError(f"agency code {a.code} appears twice")
            seen.add(a.code)
        return v

    @model_validator(mode="after")
    def _routes_and_adapters(self) -> GatewayConfig:
        codes = {a.code for a in self.agencies}
        channels: set[str] = set()
        for i, r in enumerate(self.routes):
            for dest in r.to:
                if dest not in codes:
                    raise ValueError(f"routes[{i}].to names agency {dest}, which is not defined")
                agency = self.agency(dest)
                if agency.outbound is None:
                    raise ValueError(f"routes[{i}].to names agency {dest}, which has no outbound channel")
            if r.sender and r.sender not in codes:
                raise ValueError(f"routes[{i}].sender names agency {r.sender}, which is not defined")
        for ai, a in enumerate(self.agencies):
            chans: list[tuple[str, InboundChannel | OutboundChannel, str]] = [
                (f"agencies[{ai}].inbound[{ci}]", c, "inbound") for ci, c in enumerate(a.inbound)
            ]
            if a.outbound:
                chans.append((f"agencies[{ai}].outbound", a.outbound, "outbound"))
            for path, ch, direction in chans:
                if ch.name in channels:
                    raise ValueError(f"{path}.name: channel name {ch.name} is used twice")
                channels.add(ch.name)
                ch._parsed = _validate_adapter_settings(path, ch.adapter, direction, ch.settings)
                ch.settings = ch._parsed.model_dump()
        return self

    def rule_adaptations(self) -> list[Adaptation]:
        """The `rules:` section as the rule sets apply it (checked when the configuration was read)."""
        from gateway.rule_adaptations import from_config

        return from_config(self.rules, self.gateway.standard_versions)

    def unknown_codes_warned(self) -> list[str]:
        """Inbound channels whose records with unknown stage or action codes are delivered with a warning."""
        return [ch.name for a in self.agencies for ch in a.inbound if ch.unknown_codes == "warn"]

    def agency(self, code: str) -> Agency:
        for a in self.agencies:
            if a.code == code:
                return a
        raise KeyError(code)

    @property
    def data_dir(self) -> Path:
        return Path(self.gateway.data_dir)


def _validate_adapter_settings(path: str, adapter: str, direction: str, raw: dict[str, Any]) -> BaseModel:
    try:
        spec = adapters.load(adapter)
    except KeyError as e:
        raise ValueError(f"{path}.adapter: {e.args[0]}") from None
    model = spec.settings_model(direction)
    if model is None:
        raise ValueError(f"{path}.adapter: adapter '{adapter}' cannot be used for {direction} channels")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"{path}.settings.{loc}: {err['msg'].removeprefix('Value error, ')}") from None


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a config file; every problem becomes a ConfigError naming file and key."""
    p = Path(path)
    data = yamlfile.read(p, "configuration")
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with 'agencies' and 'routes' at the top")
    return parse_config(data, source=str(p))


def parse_config(data: dict[str, Any], source: str = "<config>") -> GatewayConfig:
    try:
        cfg = GatewayConfig.model_validate(data)
    except ValidationError as e:
        raise yamlfile.invalid(e, source, unknown="unknown key (check its spelling)",
                               missing="this key is required") from None
    cfg.source = source
    base = Path(source).parent if source != "<config>" else Path(".")
    if not Path(cfg.gateway.data_dir).is_absolute():
        cfg.gateway.data_dir = str((base / cfg.gateway.data_dir).resolve())
    return cfg
