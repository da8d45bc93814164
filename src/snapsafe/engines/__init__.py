"""Engines snapshot a sandbox and restore clones; see base.py for the interface."""

from __future__ import annotations

from snapsafe.engines.base import Engine, Options
from snapsafe.errors import UsageError

#: engine name -> "module:class"; engines are imported only when chosen.
ENGINES = {
    "fork": "snapsafe.engines.fork:ForkEngine",
    "vm": "snapsafe.engines.vm:VmEngine",
    "criu": "snapsafe.engines.criu:CriuEngine",
}


def get_engine(name: str, options: Options | None = None) -> Engine:
    import importlib

    try:
        spec = ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown engine {name!r}; choose from: {', '.join(ENGINES)}") from None
    module, cls = spec.split(":")
    return getattr(importlib.import_module(module), cls)(options)
