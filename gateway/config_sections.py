"""The configuration's sections, one model each: channels, agencies, routes, rule adaptations, access,
store, API, retention, refusals and statistics.

`gateway.config` assembles them into the file's top level (and re-exports them, the names callers
use); the models are also the reference docs' source (`gateway config-docs`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from gateway.secrets import SecretRef


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

