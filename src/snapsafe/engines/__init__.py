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
    _sweep_once()
    return getattr(importlib.import_module(module), cls)(options)


_swept = False


def _sweep_once() -> None:
    """Counters of orchestrators killed with SIGKILL are removed by the next one (no other path can)."""
    global _swept
    if not _swept:
        _swept = True
        from snapsafe import genid

        try:
            genid.sweep_stale_counters()
        except OSError:
            pass
