"""Cost of ``snapsafe.generation()`` next to a bare memoryview read, ``os.getpid()``, ``os.urandom(16)``.

Each round times every candidate once (interleaved, so they share the machine's noise); the result is
nanoseconds per call over the rounds.
"""

from __future__ import annotations

import mmap
import os
import timeit

import snapsafe


def measure(rounds: int = 30, loops: int = 200_000) -> dict[str, list[float]]:
    snapsafe.generation()  # map the counter first
    page = mmap.mmap(-1, mmap.PAGESIZE)
    view = memoryview(page).cast("I")
    candidates = {
        "snapsafe.generation()": ("generation()", {"generation": snapsafe.generation}, loops),
        "bare memoryview read": ("view[0]", {"view": view}, loops),
        "os.getpid()": ("getpid()", {"getpid": os.getpid}, loops),
        "os.urandom(16)": ("urandom(16)", {"urandom": os.urandom}, max(1, loops // 10)),
        "empty loop": ("pass", {}, loops),
    }
    results: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, (stmt, namespace, n) in candidates.items():
            results[name].append(timeit.timeit(stmt, globals=namespace, number=n) / n * 1e9)
    return results
