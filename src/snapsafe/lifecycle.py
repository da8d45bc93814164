"""The two entry points an agent calls around a snapshot: prepare_snapshot and restore_uniqueness."""

from __future__ import annotations

import time
from collections.abc import Iterable

from . import genid, hooks, memory, restorers

__all__ = ["prepare_snapshot", "restore_uniqueness"]

#: Seconds restore_uniqueness waits for tracked watchers before it fails.
DEFAULT_WATCHER_TIMEOUT = 10.0


def prepare_snapshot() -> float:
    """Run before-snapshot hooks (last registered first), then wipe every Secret.

    Secrets are wiped even when a hook fails (the :class:`snapsafe.HookError` propagates).
    The live random generators are recorded so that restores need not walk the heap.
    Returns the seconds it took.
    """
    start = time.perf_counter()
    try:
        hooks.run_before_snapshot()
    finally:
        memory.wipe_all()
    restorers.collect()
    genid.prepare_rebind()
    return time.perf_counter() - start


def restore_uniqueness(
    new_generation: int | None = None,
    entropy: bytes = b"",
    disable: Iterable[str] = (),
    watcher_timeout: float | None = DEFAULT_WATCHER_TIMEOUT,
) -> float:
    """Make this process unique again after a restore. Returns the seconds it took.

    Bumps the generation (to at least ``new_generation``), runs the built-in restorers (minus
    ``disable``), mixing in ``entropy`` from the host where it can, runs the after-restore hooks
    (first registered first), then waits for tracked watchers to acknowledge.
    """
    if new_generation is not None and (not isinstance(new_generation, int) or isinstance(new_generation, bool)):
        raise TypeError(f"new_generation must be an int or None, got {type(new_generation).__name__}")
    if not isinstance(entropy, (bytes, bytearray)):
        raise TypeError(f"entropy must be bytes, got {type(entropy).__name__}")
    start = time.perf_counter()
    genid.trigger(new_generation or 0)
    restorers.run(bytes(entropy), disable)
    hooks.run_after_restore()
    genid.wait_watchers(watcher_timeout)
    return time.perf_counter() - start
