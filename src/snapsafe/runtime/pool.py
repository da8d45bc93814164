"""A pool of restored, already-unique clones of one snapshot, for the function runtime.

- ``min_idle`` clones are kept restored and idle, so a request never waits for a restore while
  idle capacity exists; more are restored on demand, up to ``max_clones`` alive at once.
- A clone serves invocations one after another, like a Lambda execution environment; with
  ``fresh`` every invocation gets a clone of its own, which is closed afterwards.
- Idle clones beyond ``min_idle`` are retired after ``idle_timeout`` seconds.
- A clone that timed out, died or broke the protocol is closed and replaced.

The engine API is blocking; the pool runs it on a thread pool and is used from asyncio.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from snapsafe.engines.base import Clone, CloneFailed, InvokeResult, Snapshot


class PoolFull(Exception):
    """``max_clones`` clones are busy: the caller answers 429."""


class PoolClosed(Exception):
    """The pool is shutting down."""


@dataclass
class Lease:
    clone: Clone
    cold: bool  # the request waited for this clone's restore


@dataclass
class PoolEvents:
    """Callbacks for metrics; each is optional."""

    restored: Callable[[Clone], None] | None = None
    retired: Callable[[Clone, str], None] | None = None


class ClonePool:
    def __init__(self, snapshot: Snapshot, *, min_idle: int = 1, max_clones: int = 10, fresh: bool = False,
                 idle_timeout: float = 300.0, events: PoolEvents | None = None) -> None:
        if min_idle < 0 or max_clones < 1 or min_idle > max_clones:
            raise ValueError(f"need 0 <= min_idle <= max_clones and max_clones >= 1, got {min_idle}, {max_clones}")
        self.snapshot = snapshot
        self.min_idle = min_idle
        self.max_clones = max_clones
        self.fresh = fresh
        self.idle_timeout = idle_timeout
        self.events = events or PoolEvents()
        self._idle: list[tuple[Clone, float]] = []  # (clone, idle since), most recently used last
        self._busy: set[Clone] = set()
        self._restoring = 0  # restores in flight, counted against max_clones
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=max_clones + 4, thread_name_prefix="snapsafe-pool")
        self._maintainer: asyncio.Task[None] | None = None
        self.restore_failures = 0
        self.last_restore_error: str | None = None

    # -- counts ---------------------------------------------------------------------------------
    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def busy(self) -> int:
        return len(self._busy)

    @property
    def live(self) -> int:
        return len(self._idle) + len(self._busy) + self._restoring

    # -- lifecycle ------------------------------------------------------------------------------
    async def start(self) -> None:
        await self._replenish()
        self._maintainer = asyncio.create_task(self._maintain())

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _restore(self, reserved: bool = False) -> Clone:
        """Restore one clone; ``reserved``: the caller already counted it in ``_restoring``."""
        if not reserved:
            self._restoring += 1
        try:
            clone = await self._run(self.snapshot.restore)
        except CloneFailed as err:
            self.restore_failures += 1
            self.last_restore_error = str(err)
            raise
        finally:
            self._restoring -= 1
        if self.events.restored:
            self.events.restored(clone)
        return clone

    async def _replenish(self) -> None:
        """Restore clones until ``min_idle`` are idle (within ``max_clones``)."""
        wanted = min(self.min_idle - self.idle - self._restoring, self.max_clones - self.live)
        if wanted <= 0 or self._closed:
            return
        self._restoring += wanted  # reserve now, so that a concurrent call does not restore them again
        results = await asyncio.gather(*(self._restore(reserved=True) for _ in range(wanted)),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, Clone):
                if self._closed:
                    await self._run(result.close)
                else:
                    self._idle.append((result, time.monotonic()))

    async def _maintain(self) -> None:
        while not self._closed:
            await asyncio.sleep(min(1.0, max(self.idle_timeout / 4, 0.05)))
            now = time.monotonic()
            expired = [c for c, since in self._idle[: max(0, self.idle - self.min_idle)]
                       if now - since >= self.idle_timeout]
            for clone in expired:
                self._idle = [(c, s) for c, s in self._idle if c is not clone]
                await self._close(clone, "idle")
            with contextlib.suppress(Exception):
                await self._replenish()

    async def _close(self, clone: Clone, reason: str) -> None:
        await self._run(clone.close)
        if self.events.retired:
            self.events.retired(clone, reason)

    # -- requests -------------------------------------------------------------------------------
    async def acquire(self) -> Lease:
        if self._closed:
            raise PoolClosed("the function is shutting down")
        if self._idle:
            clone, _ = self._idle.pop()  # most recently used: its pages are warm
            self._busy.add(clone)
            self._schedule_replenish()
            return Lease(clone, cold=False)
        if self.live >= self.max_clones:
            raise PoolFull(f"all {self.max_clones} clones are busy")
        clone = await self._restore()
        if self._closed:
            await self._run(clone.close)
            raise PoolClosed("the function is shutting down")
        self._busy.add(clone)
        self._schedule_replenish()
        return Lease(clone, cold=True)

    def _schedule_replenish(self) -> None:
        if not self._closed and self.idle + self._restoring < self.min_idle:
            task = asyncio.get_running_loop().create_task(self._replenish())
            task.add_done_callback(lambda t: t.cancelled() or t.exception())

    async def invoke(self, lease: Lease, event: Any, timeout: float, request_id: str) -> InvokeResult:
        """Invoke on the leased clone; a clone that fails is closed and the error re-raised."""
        try:
            return await self._run(lambda: lease.clone.invoke(event, timeout=timeout, request_id=request_id))
        except CloneFailed:
            if not lease.clone.closed:
                await self._run(lease.clone.close)
            raise

    async def release(self, lease: Lease) -> None:
        clone = lease.clone
        self._busy.discard(clone)
        if clone.closed:
            if self.events.retired:
                self.events.retired(clone, "failed")
            self._schedule_replenish()
        elif self.fresh or self._closed:
            await self._close(clone, "fresh" if self.fresh else "shutdown")
            self._schedule_replenish()
        else:
            self._idle.append((clone, time.monotonic()))

    async def close(self) -> None:
        """Stop restoring and close every clone (busy ones too: call after in-flight work ended)."""
        self._closed = True
        if self._maintainer is not None:
            self._maintainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintainer
        clones = [c for c, _ in self._idle] + list(self._busy)
        self._idle.clear()
        self._busy.clear()
        await asyncio.gather(*(self._run(c.close) for c in clones), return_exceptions=True)
        self._executor.shutdown(wait=True, cancel_futures=True)
