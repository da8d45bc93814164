"""The things `snapsafe bench` times. Each ``once()`` returns milliseconds for one ready answer."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from typing import Any

from snapsafe.engines.base import Snapshot


def _probe(mode: str, target: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "snapsafe.bench.probes", mode, target], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, bufsize=0, **kwargs)


def cold_start(target: str) -> float:
    """A fresh interpreter that imports and initialises the target and answers one event."""
    start = time.perf_counter()
    proc = _probe("cold", target, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stdin is not None
    proc.stdin.close()
    line = proc.stdout.readline()
    elapsed = (time.perf_counter() - start) * 1000
    proc.wait()
    if not line:
        raise RuntimeError(f"cold start of {target} gave no answer (exit code {proc.returncode})")
    return elapsed


class ForkingProbe:
    """A preloaded parent that forks per request: ``prefork`` (the worker answers the event) or
    ``floor`` (the child answers one byte: the raw fork floor for a process of this size)."""

    def __init__(self, mode: str, target: str) -> None:
        self.proc = _probe(mode, target)
        assert self.proc.stdout is not None
        if self.proc.stdout.read(1) != b"r":
            self.close()
            raise RuntimeError(f"{mode} process for {target} did not start")

    def once(self) -> float:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        start = time.perf_counter()
        self.proc.stdin.write(b"g")
        self.proc.stdout.readline()
        return (time.perf_counter() - start) * 1000

    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _forkserver_answer(target: str, conn: Any) -> None:
    from snapsafe.agent.target import load
    from snapsafe.bench.probes import _context

    conn.send(load(target)({}, _context()))
    conn.close()


class Forkserver:
    """The standard library's forkserver with the workload preloaded (``set_forkserver_preload``)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.ctx = multiprocessing.get_context("forkserver")
        module = target.split(":", 1)[0]
        self.ctx.set_forkserver_preload(["snapsafe.agent.target", module])
        self.once()  # starts the server, which imports the workload

    def once(self) -> float:
        parent, child = self.ctx.Pipe(duplex=False)
        start = time.perf_counter()
        proc = self.ctx.Process(target=_forkserver_answer, args=(self.target, child))
        proc.start()
        parent.recv()
        elapsed = (time.perf_counter() - start) * 1000
        proc.join()
        parent.close()
        child.close()
        return elapsed

    def close(self) -> None:
        from multiprocessing import forkserver

        # The forkserver lives until this process exits; stop it now so nothing outlives the bench.
        server = forkserver._forkserver  # type: ignore[attr-defined]
        if server._forkserver_pid:
            try:
                os.kill(server._forkserver_pid, 15)
                os.waitpid(server._forkserver_pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            server._forkserver_pid = None
            server._forkserver_address = None
            server._forkserver_alive_fd = None


def engine_once(snapshot: Snapshot) -> tuple[float, float]:
    """Restore + uniqueness + first answer on ``snapshot``: (milliseconds, clone's time-to-unique)."""
    start = time.perf_counter()
    clone = snapshot.restore()
    try:
        result = clone.invoke({}, timeout=120)
        elapsed = (time.perf_counter() - start) * 1000
    finally:
        clone.close()
    if not result.ok:
        raise RuntimeError(f"the workload failed in a clone: {result.error}")
    return elapsed, clone.timings.get("unique_ms", 0.0)


def pss_kib(pid: int) -> int:
    """Proportional set size of a process (shared pages divided among their users); 0 if it is gone
    (a CRIU template ends with its dump, a VM template's QEMU quits after the snapshot)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def clone_memory(snapshot: Snapshot, template_pid: int | None, count: int) -> dict[str, float]:
    """PSS of the template plus ``count`` live clones (each invoked once), in MiB."""
    clones = []
    try:
        for _ in range(count):
            clone = snapshot.restore()
            clones.append(clone)
            clone.invoke({}, timeout=120)
        pss = [pss_kib(pid) for pid in (c.host_pid for c in clones) if pid]
        total = sum(pss) + (pss_kib(template_pid) if template_pid else 0)
    finally:
        for clone in clones:
            clone.close()
    return {"clones": count, "pss_per_clone_mib": sum(pss) / len(pss) / 1024 if pss else 0.0,
            "total_pss_mib": total / 1024}
