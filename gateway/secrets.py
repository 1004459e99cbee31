"""Credentials by reference only: an environment variable or a file, never inline in config."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

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
