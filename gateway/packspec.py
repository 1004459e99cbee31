"""What `pack.yaml` may say, as one model: it validates a pack's file and generates its reference.

A pack is data agency IT writes by hand, so a misspelt key (`legacy_catalogue:`) is an error
naming the file and the key, never silently ignored; docs/pack-reference.md is rendered from
this model (`gateway mapping docs`) and a test keeps the two equal.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gateway import xmlencoding, yamlfile
from gateway.errors import ConfigError


class BatchSpec(BaseModel):
    """How one file of this format splits into records, each taken in on its own."""

    model_config = ConfigDict(extra="forbid")

    record: str = Field(
        description="XPath 1.0 selecting each record element of a file, e.g. `/TRANSFERS/PRISONER`; every "
        "match becomes a file of its own: the root element (with its attributes), the `inherit` parts, then "
        "the record. Each is mapped, checked, routed and answered alone, with its own message id and receipt")
    inherit: list[str] = Field(
        default_factory=list, description="XPaths of the header elements every record carries along (e.g. "
        "`/TRANSFERS/HEADER`), copied in document order before the record")
    namespaces: dict[str, str] = Field(
        default_factory=dict, description="prefix -> namespace URI for the prefixes the XPaths use")


class PackSpec(BaseModel):
    """One legacy system's format and how it maps to the Case Exchange standard.

    Every path is relative to the pack's folder.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        None, description="name shown in messages and reports; default: the folder's name. The configuration "
        "(`mapping:`) and `gateway mapping test` refer to a pack by its folder's name")
    agency: str | None = Field(
        None, description="code of the agency whose system writes this format: its samples are sent as this "
        "agency, and `gateway validate FILE --agency CODE` finds the pack by it")
    description: str | None = Field(None, description="one line on the legacy format, for people")
    standard: str = Field("1", description="major version of the Case Exchange standard the mappings write and "
                          "read")
    encoding: str = Field(
        "UTF-8", description=f"encoding the legacy system reads, one of {xmlencoding.ALLOWED}: records sent to "
        "it are written in it, with an XML declaration naming it (UTF-16 with a byte order mark, little-endian; "
        "UTF-16LE and UTF-16BE without one). Incoming files are read in the encoding their bytes and XML "
        "declaration show, from the same list")
    legacy_schema: str | None = Field(
        None, description="the legacy system's XSD; every incoming file is checked against it before mapping, "
        "and, unless `receive_schema` is given, every file the outbound mapping writes (records from others, "
        "defect notices) is checked against it in `gateway mapping test`, so it must describe those too. Leave it "
        "out to skip that check: the standard's XSD and rules still check the mapped record")
    receive_schema: str | None = Field(
        None, description="the XSD of what the legacy system receives (records from other agencies, defect "
        "notices), when it is not `legacy_schema`: `gateway mapping test` checks every file the outbound mapping "
        "writes against it. Default: `legacy_schema`, which must then describe both what the system sends and "
        "what it receives")
    legacy_catalog: str | None = Field(
        None, description="OASIS XML catalog mapping the namespace URIs (or URLs) the schema imports to local "
        "files; its folder and the folders of its targets may be read")
    legacy_schema_root: str = Field(
        ".", description="folder inside which the schema's imports may be read (never the network); default: "
        "the pack's folder")
    inbound: str | None = Field(
        None, description="XSLT 1.0 from the legacy format to a standard `CaseRecord`; leave it out when the "
        "legacy system already writes the standard")
    outbound: str | None = Field(
        None, description="XSLT 1.0 from a standard `CaseRecord` or `DefectNotice` to the legacy format; leave "
        "it out when the legacy system reads the standard")
    codes: str = Field("codes", description="folder of code tables, one `TABLE.csv` per list with the columns "
                       "`legacy,standard`")
    batch: BatchSpec | None = Field(
        None, description="the files hold several records: how to split them (`record:`, `inherit:`, "
        "`namespaces:`). A file's receipt lists each record's receipt; each record is accepted or refused "
        "alone and stored in its own transaction, and a resend is recognised per record by the SHA-256 of "
        "the record's own bytes. Leave it out when a file holds one record")
    samples: str = Field("samples", description="folder of sample files: `valid/` must pass, `invalid/` must be "
                         "refused, `expected/` holds what `gateway mapping test --update` wrote; `received/` holds "
                         "standard records the agency receives, each `NAME.xml` beside `NAME.expected.xml`, the exact "
                         "bytes its system is given (`--update-received` writes them)")

    @field_validator("encoding")
    @classmethod
    def _supported_encoding(cls, v: str) -> str:
        """Only an encoding the gateway also reads: it never writes a file it would itself refuse."""
        if xmlencoding.supported(v) is None:
            raise ValueError(f"网关不支持编码“{v}” / '{v}' is not an encoding the gateway reads and writes; "
                             f"use one of {xmlencoding.ALLOWED}")
        return xmlencoding.canonical(v)

    @field_validator("standard", mode="before")
    @classmethod
    def _version_text(cls, v: Any) -> Any:
        """`standard: 1` (a YAML number) means the same as `standard: "1"`."""
        return str(v) if isinstance(v, int | float) and not isinstance(v, bool) else v


def load_spec(path: Path) -> PackSpec:
    """Read one `pack.yaml`; every problem is a ConfigError naming the file, the key and the line if known."""
    data = yamlfile.read(path, "mapping pack")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected keys such as `name:` and `legacy_schema:`, found {type(data).__name__}")
    try:
        return PackSpec.model_validate(data)
    except ValidationError as e:
        raise yamlfile.invalid(e, path, unknown="unknown key (check its spelling; docs/pack-reference.md lists "
                               "every key)") from None
