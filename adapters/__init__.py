"""Protocol adapters. Each module declares a typed `Settings` model and its adapter classes.

The registry maps an adapter name used in configuration to its module, imported only when a
channel uses it, so a deployment that never speaks SOAP never imports zeep.
"""

from __future__ import annotations

import importlib
from types import ModuleType

REGISTRY: dict[str, str] = {
    "memory": "adapters.memory",
    "http": "adapters.http",
    "soap": "adapters.soap",
    "sftp": "adapters.sftp",
    "folder": "adapters.folder",
}


def load(name: str) -> ModuleType:
    """The adapter module for `name`; it defines InboundSettings/OutboundSettings and factories."""
    try:
        path = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown adapter '{name}'; known adapters: {', '.join(sorted(REGISTRY))}") from None
    return importlib.import_module(path)
