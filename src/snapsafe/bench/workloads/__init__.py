"""Workloads shipped for `snapsafe bench`: each is a Lambda-style target, importable by name."""

from __future__ import annotations

#: name -> (target, what its init does)
WORKLOADS: dict[str, tuple[str, str]] = {
    "hello": ("snapsafe.bench.workloads.hello:handler", "standard library only"),
    "numpy": ("snapsafe.bench.workloads.numpy100:handler", "imports NumPy, builds a 100 MB array"),
    "scipy": ("snapsafe.bench.workloads.scipy_stats:handler", "imports scipy.stats and scipy.optimize"),
}
