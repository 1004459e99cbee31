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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

import adapters
from gateway import yamlfile
from gateway.clocksettings import ClockSettings
from gateway.errors import ConfigError
from gateway.evidence.settings import EvidenceSettings
from gateway.seals.settings import SealSettings
from gateway.secrets import SecretRef
from gateway.xmllimits import LIBXML2_DEPTH, LIBXML2_TEXT, XmlLimits

if TYPE_CHECKING:
    from gateway.rule_adaptations import Adaptation


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetryPolicy(_Strict):
    """Redelivery for one destination: exponential backoff with jitter, bounded in count and age."""

    max_attempts: int = Field(20, ge=1, description="attempts before the delivery is dead-lettered")
    initial_backoff: float = Field(1.0, gt=0, description="seconds before the first retry")
    max_backoff: float = Field(300.0, gt=0, description="longest wait between two attempts, seconds")
    multiplier: float = Field(2.0, ge=1.0, description="each wait is the previous one times this")
    jitter: float = Field(1.0, ge=0, description="random seconds added to each wait (spreads retries)")
    max_age: float = Field(7 * 86400.0, gt=0, description="seconds after enqueue when retrying stops")


class InboundChannel(_Strict):
    """A way records come in from an agency's legacy system."""

    name: str = Field(description="unique channel name, used in logs and the exchange log")
    adapter: str = Field(description="protocol adapter: memory, http, soap, sftp or folder")
    mapping: str = Field("identity", description="mapping pack turning the legacy format into the standard")
    settings: dict[str, Any] = Field(default_factory=dict, description="the adapter's inbound settings")
    unknown_codes: Literal["block", "warn"] = Field(
        "block", description="a record whose stage or action is not in the standard's code lists cannot be "
        "judged by its rules: block refuses it (rules CODE-01, CODE-02); warn delivers it with a warning "
        "saying so, and the exchange log names it (unknown-code-admitted), for a migration period only")
    _parsed: BaseModel | None = PrivateAttr(None)

    @property
    def adapter_settings(self) -> BaseModel:
        """The settings as the adapter's own model validated them when the configuration was read."""
        assert self._parsed is not None, "a channel's settings are validated with the whole configuration"
        return self._parsed


class OutboundChannel(_Strict):
    """How records are delivered to an agency's legacy system."""

    name: str = Field(description="unique channel name, used in logs and the exchange log")
    adapter: str = Field(description="protocol adapter: memory, http, soap, sftp or folder")
    mapping: str = Field("identity", description="mapping pack turning the standard into the legacy format")
    settings: dict[str, Any] = Field(default_factory=dict, description="the adapter's settings")
    _parsed: BaseModel | None = PrivateAttr(None)

    @property
    def adapter_settings(self) -> BaseModel:
        """The settings as the adapter's own model validated them when the configuration was read."""
        assert self._parsed is not None, "a channel's settings are validated with the whole configuration"
        return self._parsed
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    concurrency: int = Field(8, ge=1, le=256, description="deliveries in flight at once to this agency")


class Agency(_Strict):
    """A justice agency whose legacy system is connected to the gateway."""

    code: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                      description="agency code used in records (Sender) and routes")
    name: str = Field(description="the agency's name, for people")
    role: Literal["police", "procuratorate", "court", "justice-bureau", "prison", "other"] = Field(
        description="the agency's role: a code of the standard's list of agency roles, or other")
    api_key: SecretRef | None = Field(None, description="key this agency uses on the REST API")
    inbound: list[InboundChannel] = Field(default_factory=list, description="channels records come in by")
    outbound: OutboundChannel | None = Field(None, description="the channel records are delivered by")
    require_conformance: bool = Field(False, description=(
        "refuse this agency's live records (rule conformance.required) until a conformance run of its pack "
        "samples through its channel has passed (`gateway conformance AGENCY`, or the console); for an agency "
        "going live"))
    evidence_to_outbound: bool = Field(False, description=(
        "also deliver the signed evidence of this agency's records (of submission, and of each delivery when its "
        "receiver confirms) to this agency's outbound channel, as signed, unmapped; needs an outbound channel"))

    @model_validator(mode="after")
    def _evidence_needs_outbound(self) -> Agency:
        if self.evidence_to_outbound and self.outbound is None:
            raise ValueError(f"agencies {self.code}: evidence_to_outbound needs an outbound channel / "
                             f"机构 {self.code}：evidence_to_outbound 需要配置出站通道")
        return self

    @field_validator("role", mode="before")
    @classmethod
    def _listed_role(cls, v: object) -> object:
        from gateway.routecodes import role_problem

        problem = role_problem(v)
        if problem is not None:
            raise ValueError(problem.removeprefix("role: "))
        return v


class Route(_Strict):
    """Records of `stage`/`action` (from `sender`, if given) go to every agency in `to`."""

    stage: str = Field(description="the record's Stage, a code of the standard's list (standards/README.md)")
    action: str | None = Field(None, description="the record's Action, a code of the standard's list; any "
                                                 "action when absent")
    sender: str | None = Field(None, description="only records from this agency; any sender when absent")
    to: list[str] = Field(min_length=1, description="codes of the receiving agencies")


class RuleSelector(_Strict):
    """Which records an adaptation is for (absent: any)."""

    stage: str | None = Field(None, description="only records of this Stage; any stage when absent")
    action: str | None = Field(None, description="only records of this Action; any action when absent")
    sender: str | None = Field(None, description="only records from this agency; any sender when absent")
    reason: str = Field(min_length=1, description="why this deployment adapts the standard here; shown with "
                                                  "the adaptation to operators and auditors")


class DisabledRule(RuleSelector):
    """A rule of the standard that is not applied to the records selected."""

    rule: str = Field(description="the id of a rule of the standard, e.g. ACC-PR-14")


class RuleSeverity(RuleSelector):
    """A rule of the standard with another severity for the records selected."""

    rule: str = Field(description="the id of a rule of the standard, e.g. EV-TH-04")
    severity: Literal["block", "warn"] = Field(description="block: the record is refused and its sender gets "
                                                          "a defect notice; warn: it is delivered with the warning")


class RuleMessage(_Strict):
    """What a failed rule says, in Chinese and English."""

    zh: str = Field(min_length=1, description="in Chinese; {value} is the context node's text")
    en: str = Field(min_length=1, description="in English; {value} is the context node's text")


class LocalRule(RuleSelector):
    """A rule of the deployment's own, in the shape of the standard's rules.yaml, for the records selected."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$",
                    description="the rule's id, not one of the standard's (e.g. LOCAL-CT-01)")
    severity: Literal["block", "warn"] = Field("block", description="block or warn, as in rules.yaml")
    context: str = Field("/c:CaseRecord", description="XPath 1.0 selecting the nodes the test is checked on "
                                                      "(prefixes c and cx, $record, $here as in rules.yaml)")
    test: str = Field(description="XPath 1.0 that must be true for every node the context selects")
    message: RuleMessage = Field(description="what a failure says")
    hint: RuleMessage | None = Field(None, description="what to do about a failure, in Chinese and English "
                                                       "(shown with the finding by validate and in notices)")


class RuleAdaptations(_Strict):
    """How this deployment adapts the standard's rules (standards/case-exchange/v1/rules.yaml) for the
    records of some routes or senders. Every adaptation is listed by `gateway check-config`, in the
    console (Rules) and in the exchange log at each node start (`rules-adapted`). The rules that keep
    unknown stage and action codes out (CODE-01, CODE-02) are not adapted here: see an inbound
    channel's `unknown_codes`."""

    disable: list[DisabledRule] = Field(default_factory=list, description="rules of the standard not applied")
    severity: list[RuleSeverity] = Field(default_factory=list, description="rules of the standard with another "
                                                                           "severity")
    add: list[LocalRule] = Field(default_factory=list, description="rules of the deployment's own")


class Principal(_Strict):
    """A person or system using the REST API with its own key."""

    name: str = Field(description="shown as the actor in the exchange log")
    key: SecretRef = Field(description="the API key, by reference")


class WitnessSettings(_Strict):
    """Where each signed checkpoint is also sent, so a rewrite of the log with the node's own key shows."""

    url: str | None = Field(None, description="a peer gateway's witness endpoint, e.g. "
                                              "https://peer:8443/api/v1/witness")
    api_key: SecretRef | None = Field(None, description="this node's key on the peer (witness role), by reference")
    file: str | None = Field(None, description="an append-only file on storage apart from the data folder")
    retry_seconds: float = Field(5.0, gt=0, description="wait before sending again after the witness failed")


class Access(_Strict):
    """REST API keys beyond the agencies' own."""

    operators: list[Principal] = Field(default_factory=list, description="watch queues, replay, discard")
    auditors: list[Principal] = Field(default_factory=list, description="read the exchange log and queues")
    witnesses: list[Principal] = Field(default_factory=list, description="peer nodes that deposit their log's "
                                                                         "checkpoints here (POST /api/v1/witness)")


class StoreSettings(_Strict):
    """Where the gateway keeps messages, deliveries and the exchange log."""

    backend: Literal["sqlite", "postgres"] = Field("sqlite", description="sqlite: 1 node; postgres: many")
    path: str | None = Field(None, description="SQLite file; default DATA_DIR/gateway.db")
    dsn: SecretRef | None = Field(None, description="PostgreSQL connection string, by reference")
    durability: Literal["normal", "full"] = Field(
        "full", description="full: fsync at every commit (survives power loss); normal: survives process crash"
    )


class TlsSettings(_Strict):
    """HTTPS on the gateway's own port, so records never cross the network in clear text."""

    cert_file: str = Field(description="PEM file: the gateway's certificate (and its chain)")
    key_file: str = Field(description="PEM file: the certificate's private key (a path; keep the file "
                                      "readable by the gateway only)")
    key_password: SecretRef | None = Field(None, description="password of an encrypted key file")
    client_ca_file: str | None = Field(
        None, description="PEM file of the CAs that sign agencies' client certificates; when given, every "
        "client must present one (mutual TLS)")


class ApiSettings(_Strict):
    """Where the REST API and the push adapters' endpoints listen (one port)."""

    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to listen on")
    tls: TlsSettings | None = Field(None, description="serve HTTPS (and optionally require client "
                                                      "certificates); none: plain HTTP, e.g. behind a "
                                                      "TLS-terminating proxy")
    min_key_length: int = Field(
        24, ge=1,
        description="shortest API key accepted (agencies', operators' and auditors'); the node refuses to start "
        "with a shorter one. `gateway keys new` makes keys of 43 URL-safe characters of 6 random bits each: "
        "24 of them already carry 144 bits, well over the 128 held to be beyond guessing")
    # What one client may hold of the node (gateway/api/listener.py); over it, the connection is cut or answered 503.
    header_timeout: float = Field(10.0, gt=0, description="seconds a client has for the TLS handshake, and then "
                                  "for each request's line and headers; after that the connection is closed "
                                  "(408 if part of a request came)")
    body_timeout: float = Field(30.0, gt=0, description="a request body that brings fewer than body_min_rate "
                                "bytes a second over this many seconds is cut (408)")
    body_min_rate: int = Field(500, ge=0, description="bytes a second a request body must average over each "
                               "body_timeout; 0: any byte at all")
    max_header_bytes: int = Field(65536, ge=1024, description="a request line and headers larger than this are "
                                  "answered 431 and the connection closed")
    keep_alive_timeout: int = Field(5, ge=1, description="seconds an idle connection is kept open for the next "
                                    "request")
    max_requests_per_connection: int | None = Field(
        10000, ge=1, description="the connection is closed after this many requests (the client opens another); "
        "none: no limit")
    max_connections: int | None = Field(
        512, ge=1, description="connections open at once on this node; more are answered 503 with Retry-After "
        "and closed; keep it under the process's open-file limit; none: no limit")
    max_connections_per_address: int | None = Field(
        128, ge=1, description="connections open at once from one client address; more are answered 503 with "
        "Retry-After and closed; behind a proxy every client has the proxy's address: raise it or use none")


class RetentionSettings(_Strict):
    """How long the payloads of finished exchanges are kept. Unfinished ones are never pruned."""

    payload_days: float | None = Field(
        None, gt=0,
        description="drop a message's payloads (raw, standard, bodies sent, dossier files) this many days "
        "after all its deliveries finished (delivered or discarded); its status, history and log entries "
        "stay; none: keep every payload",
    )
    every_minutes: float = Field(60.0, gt=0, description="how often one node of the cluster runs retention")
    batch: int = Field(500, ge=1, le=5000, description="messages per transaction (keeps each one short)")


class RefusalSettings(_Strict):
    """How refused requests are logged and how clients that keep failing to log in are slowed down."""

    interval_seconds: float = Field(
        60.0, gt=0, le=3600, description="the first refusal of each source, principal and reason is logged at "
        "once; repeats within this interval become one entry with their count")
    auth_failures_per_source: int = Field(
        20, ge=1, description="failed logins from one address within the interval before it is answered "
        "429 (Retry-After) until the interval ends")


RankingMetric = Literal["first_pass_rate", "dossier_complete_rate", "handover_ms_p50", "handover_ms_p90",
                        "handover_ms_mean", "resend_rate"]


_DEFAULT_SCORE: tuple[RankingMetric, ...] = ("first_pass_rate", "dossier_complete_rate", "handover_ms_p50")


class StatsSettings(_Strict):
    """Daily statistics and the ranking of units per role."""

    ranking_score: list[RankingMetric] = Field(
        default_factory=lambda: list(_DEFAULT_SCORE), min_length=1,
        description="what ranks the units of a role each day, most important first: rates from high to low, "
        "times and the resend rate from low to high; a unit with no figure for a metric goes after those with one")


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
        lines = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"]) or "(top)"
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "missing":
                msg = "this key is required"
            elif err["type"] == "extra_forbidden":
                msg = "unknown key (check its spelling)"
            lines.append(f"{source}: {loc}: {msg}")
        raise ConfigError("\n".join(lines)) from None
    cfg.source = source
    base = Path(source).parent if source != "<config>" else Path(".")
    if not Path(cfg.gateway.data_dir).is_absolute():
        cfg.gateway.data_dir = str((base / cfg.gateway.data_dir).resolve())
    return cfg
