"""Small statistics helpers shared by the benchmark scripts (no dependencies)."""

from __future__ import annotations

import platform
import statistics
from collections.abc import Sequence


def stats(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    if not ordered:
        return {}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {"n": len(ordered), "min": ordered[0], "median": statistics.median(ordered), "p99": p99}


def fmt(s: dict[str, float], unit: str = "ms", digits: int = 3) -> str:
    return (f"min {s['min']:.{digits}f} / median {s['median']:.{digits}f} / p99 {s['p99']:.{digits}f} {unit}"
            f" (n={s['n']})")


def machine() -> str:
    import os

    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}, "
            f"Python {platform.python_version()}")
