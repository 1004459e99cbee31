"""SOAP adapter: the gateway's own SOAP endpoint for legacy systems that push, and delivery to
legacy SOAP services with zeep.

Inbound: one endpoint per channel (SOAP 1.1 and 1.2, document/literal wrapped), WSDL at ?wsdl
(shipped as standards/soap/case-exchange.wsdl), WS-Security UsernameToken and/or pinned TLS
client certificates. Outbound: any WSDL; which field carries the record and how the reply
decides acceptance are configuration. For example:

    inbound:
      - name: police-soap
        adapter: soap                  # endpoint /soap/police-soap, WSDL at /soap/police-soap?wsdl
        settings: {password: {env: POLICE_SOAP_PASSWORD}}
    outbound:
      name: proc-out
      adapter: soap
      settings:
        wsdl: http://proc.example/CaseService?wsdl
        operation: SubmitCaseRecord
        record_field: Record           # base64Binary: the record byte for byte
        key_field: MessageId           # idempotency key, the same on every attempt
        case_field: CaseNumber
        accepted_xpath: "string(//*[local-name()='Status'])='accepted'"
        username: GATEWAY
        password: {env: PROC_SOAP_PASSWORD}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.base import AdapterSpec, InboundContext
from adapters.soap.inbound import SoapInbound
from adapters.soap.outbound import SoapOutbound
from gateway.errors import ConfigError
from gateway.secrets import SecretRef, UrlWithoutSecrets


class InboundSettings(BaseModel):
    """A SOAP endpoint a legacy system calls; the WSDL is served at PATH?wsdl."""

    model_config = ConfigDict(extra="forbid")
    path: str | None = Field(None, description="URL path; default /soap/CHANNEL")
    require_token: bool = Field(True, description="require a WS-Security UsernameToken")
    username: str | None = Field(None, description="UsernameToken user name; default the agency code")
    password: SecretRef | None = Field(
        None, description="UsernameToken password; default the agency's API key"
    )
    require_fresh_tokens: bool = Field(
        True, description="PasswordText tokens must carry Nonce and Created too (digest tokens always do)"
    )
    freshness_seconds: float = Field(
        300.0, gt=0, description="how far a token's Created may be from now; nonces are remembered this long"
    )
    client_cert_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 fingerprints of accepted TLS client certificates; "
        "when given, a matching certificate is required",
    )
    client_cert_header: str = Field(
        "x-ssl-client-sha256",
        description="header in which a TLS-terminating proxy passes the client certificate's SHA-256",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="addresses whose client-certificate header is believed",
    )
    max_envelope_bytes: int | None = Field(
        None,
        ge=1024,
        description="largest request; default the gateway's max_message_bytes plus room for base64",
    )


class OutboundSettings(BaseModel):
    """A legacy SOAP service the gateway delivers to, described by its WSDL."""

    model_config = ConfigDict(extra="forbid")
    wsdl: UrlWithoutSecrets = Field(description="WSDL file path or URL (no credentials in it); parsed once, "
                                                "fetched documents cached in DATA_DIR")
    service: str | None = Field(None, description="service name in the WSDL; default the first")
    port: str | None = Field(None, description="port name in the service; default the first")
    binding: str | None = Field(None, description="binding QName ({ns}Name), used with address")
    address: UrlWithoutSecrets | None = Field(
        None, description="endpoint URL overriding the WSDL's address (no credentials in it)")
    operation: str = Field("SubmitCaseRecord", description="operation that receives a record")
    record_field: str = Field("Record", description="request field that carries the record")
    record_as: Literal["base64", "text", "xml"] = Field(
        "base64",
        description="base64: the bytes as xs:base64Binary (byte-exact, any encoding); text: as "
        "xs:string; xml: the parsed record as an xs:any element",
    )
    key_field: str | None = Field(
        "MessageId", description="request field for the idempotency key (the same on every attempt)"
    )
    case_field: str | None = Field(None, description="request field for the unified case number")
    fixed_fields: dict[str, str] = Field(default_factory=dict, description="constant request fields")
    attachment_field: str | None = Field(
        None,
        description="repeated request field that carries the record's dossier files, each with its name, "
        "media type and content (base64); WRAPPER/ITEM for a list wrapped in one element (as spyne and "
        ".NET write arrays); none: the service takes the record only, and each delivery's detail says how "
        "many dossier files stayed behind",
    )
    attachment_name_field: str = Field("Name", description="sub-field of attachment_field for the file name")
    attachment_type_field: str = Field("MediaType", description="sub-field for the media type")
    attachment_content_field: str = Field("Content", description="sub-field for the content, xs:base64Binary")
    max_attachment_bytes: int = Field(
        64 * 1024 * 1024, ge=1,
        description="dossier files sent inline in one request, in all; a record with more is dead-lettered "
        "saying so (send such dossiers over an SFTP or folder channel, which streams them)",
    )
    accepted_xpath: str | None = Field(
        None,
        description="XPath on the reply envelope that is true when the record was accepted; false "
        "dead-letters it with the reply as receipt; default: any non-fault reply accepts",
    )
    connect_timeout: float = Field(5.0, gt=0)
    read_timeout: float = Field(30.0, gt=0)
    max_connections: int = Field(16, ge=1)
    username: str | None = Field(None, description="WS-Security UsernameToken user name")
    password: SecretRef | None = Field(None, description="WS-Security password, by reference")
    password_digest: bool = Field(True, description="send PasswordDigest with Nonce and Created")
    client_cert: str | None = Field(None, description="PEM client certificate file for mutual TLS")
    client_key: str | None = Field(None, description="PEM key file of the client certificate")
    ca_bundle: str | None = Field(None, description="CA bundle to verify the service; default system CAs")
    wsdl_timeout: float = Field(30.0, gt=0, description="seconds allowed to fetch the WSDL and its schemas")
    wsdl_cache_seconds: float = Field(86400.0, gt=0, description="how long a fetched WSDL/XSD stays cached")


def inbound(settings: InboundSettings, context: InboundContext, /) -> SoapInbound:
    password: str | None = None
    if settings.require_token:
        password = settings.password.resolve() if settings.password else context.agency_key
        if password is None:
            raise ConfigError(
                f"SOAP channel {context.channel}: require_token is on but neither 'password' nor the "
                f"agency's api_key is set"
            )
    elif not settings.client_cert_sha256:
        raise ConfigError(
            f"SOAP channel {context.channel}: no authentication configured (require_token is off and "
            "no client_cert_sha256 is given)"
        )
    return SoapInbound(settings, context, settings.username or context.agency, password)


SPEC = AdapterSpec(
    name="soap", summary="SOAP 1.1/1.2 services with WS-Security and MTOM, in and out",
    inbound_settings=InboundSettings, inbound=inbound, outbound_settings=OutboundSettings, outbound=SoapOutbound)

__all__ = ["SPEC", "InboundSettings", "OutboundSettings", "SoapInbound", "SoapOutbound", "inbound"]
