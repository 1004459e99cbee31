"""Credentials by reference only: an environment variable or a file, never inline in config (nor in a URL)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator

from gateway.errors import ConfigError


class SecretRef(BaseModel):
    """`{env: NAME}` or `{file: /path}`; resolved when used, never logged."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    env: str | None = None
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if bool(self.env) == bool(self.file):
            raise ValueError("a secret reference takes exactly one of 'env' or 'file'")
        return self

    def resolve(self) -> str:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"secret: environment variable {self.env} is not set")
            return value
        assert self.file
        try:
            return Path(self.file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"secret: cannot read file {self.file}: {e.strerror}") from None

    def __repr__(self) -> str:  # never show a value, only where it comes from
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={self.file!r})"


# -- URLs in the configuration ------------------------------------------------------------------------
# Query parameters whose name says they carry a credential (compared lower-cased).
_SECRET_PARAMS = ("passw", "pwd", "secret", "token", "apikey", "api_key", "api-key", "credential",
                  "signature")
_SECRET_PARAM_NAMES = frozenset({"pass", "key", "auth", "sig", "access_key", "access-key"})


def _secret_param(name: str) -> bool:
    n = name.strip().lower()
    return n in _SECRET_PARAM_NAMES or any(s in n for s in _SECRET_PARAMS)


def refuse_credentials_in_url(value: str) -> str:
    """A URL from the configuration is repeated wherever it is useful (logs, delivery reasons, the
    exchange log an agency reads): a password in it would be too. Refused; credentials belong in the
    adapter's settings that take secret references. A plain file path (no scheme) passes as it is."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return value  # not a URL at all: the adapter says what is wrong with it when it uses it
    instead = ("put credentials in the adapter's credential settings instead (such as password or "
               "bearer_token), which take a secret reference: {env: NAME} or {file: PATH}")
    if "@" in parts.netloc:
        raise ValueError("this URL holds a user name or password (user:password@...), which would show in logs, "
                         f"delivery reasons and the exchange log; {instead}")
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _secret_param(name):
            raise ValueError(f"this URL's query parameter '{name}' looks like a credential, which would show in "
                             f"logs, delivery reasons and the exchange log; {instead}")
    return value


UrlWithoutSecrets = Annotated[str, AfterValidator(refuse_credentials_in_url)]
"""A URL setting (a receiver, a WSDL, a proxy) that may not carry a password."""
