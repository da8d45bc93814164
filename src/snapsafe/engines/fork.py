"""The fork engine: the snapshot is a living template process; a clone is an ``os.fork()`` of it.

Nothing to install, and a clone costs about one ``fork()``. The template imports the target,
prepares (hooks, secrets wiped, ``gc.freeze()`` so copy-on-write pages stay shared) and then only
forks. Each clone gets its own control socket and output pipe, passed over the template's socket
with SCM_RIGHTS, its own SysGenId counter, and a generation no sibling has.

Lifetime: the template exits when its channel reaches EOF (the orchestrator closed it or died) and
kills its clones first; clones die with the template (``PR_SET_PDEATHSIG``) and exit at EOF of their
own channel. So no process outlives the orchestrator, whatever way it ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import weakref

from snapsafe import genid
from snapsafe.agent import protocol as p
from snapsafe.engines.base import (
    Clone,
    CloneFailed,
    Engine,
    Options,
    ProcessTemplate,
    SandboxError,
    Snapshot,
    describe_returncode,
)
from snapsafe.engines.channel import Channel, ChannelClosed, ChannelTimeout
from snapsafe.engines.output import OutputPump
from snapsafe.errors import UsageError


class ForkEngine(Engine):
    name = "fork"

    def check(self) -> str:
        return f"fork: always available (Python {sys.version.split()[0]}, os.fork)"

    def start(self, target: str) -> ForkTemplate:
        return ForkTemplate(target, self.options)


class ForkTemplate(ProcessTemplate):
    def __init__(self, target: str, options: Options) -> None:
        super().__init__(target, options)
        self._snapshot: ForkSnapshot | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.output: OutputPump | None = None
        self.counter = genid.create_counter()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        env = dict(os.environ)
        env.update(self.options.env)
        env[genid.ENV_VAR] = self.counter
        start = time.perf_counter()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "snapsafe.agent", "--target", target, "--fd", str(theirs.fileno()),
                 "--mode", "fork-template"],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, pass_fds=(theirs.fileno(),),
                env=env, cwd=self.options.cwd,
            )
        except BaseException:
            for fd in (out_r, out_w):
                os.close(fd)
            ours.close()
            theirs.close()
            genid.remove_counter(self.counter)
            raise
        finally:
            theirs.close()
        os.close(out_w)
        self.output = OutputPump(out_r, "template", self.options.output)
        self.channel = Channel(ours)
        try:
            self.pid = self.receive_hello(start).pid
        except BaseException:
            self.close()
            raise


    def snapshot(self, directory: str | None = None) -> ForkSnapshot:
        if directory is not None:
            raise UsageError("the fork engine keeps its snapshot in a living process and cannot write it to "
                             "disk; use --engine criu or --engine vm for on-disk snapshots")
        if self._snapshot is not None:
            raise SandboxError("a fork template is snapshotted once; start a new template for another snapshot")
        start = time.perf_counter()
        ready = self.request_ready()
        self._snapshot = ForkSnapshot(self, ready)
        self._snapshot.timings["prepare_ms"] = ready.prepare_ms
        self._snapshot.timings["snapshot_ms"] = (time.perf_counter() - start) * 1000
        return self._snapshot

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close_clones()
        self._stop_process()
        genid.remove_counters(self.counter)


class ForkSnapshot(Snapshot):
    def __init__(self, template: ForkTemplate, ready: p.Ready) -> None:
        super().__init__(template, ready.generation)
        self.fork_template = template
        self.ready = ready
        self._live: weakref.WeakSet[ForkClone] = weakref.WeakSet()

    def restore(self) -> ForkClone:
        clone_id, generation = self.next_clone()
        clone = ForkClone(self, clone_id, generation)
        self._live.add(clone)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        clone.channel = Channel(ours, state=p.SNAPSHOTTABLE)
        template_channel = self.fork_template.channel
        start = time.perf_counter()
        try:
            with template_channel.lock:
                template_channel.send(p.Fork(clone_id=clone_id), fds=(theirs.fileno(), out_w))
                # Queue `restored` at once: the clone reads it as soon as it exists (saves a round trip).
                clone.channel.send(clone.restored_event())
                forked = template_channel.receive(timeout=self.options.restore_timeout)
        except (ChannelClosed, ChannelTimeout) as err:
            clone.close()
            raise CloneFailed(f"{clone_id}: the template failed to fork: {err} "
                              f"({self.fork_template._exit_reason()})") from err
        finally:
            theirs.close()
            os.close(out_w)
        clone.output = OutputPump(out_r, clone_id, self.options.output)
        if isinstance(forked, p.Fatal):
            clone.close()
            raise CloneFailed(f"{clone_id}: {forked.message}", error_type=forked.error_type)
        assert isinstance(forked, p.Forked)
        clone.attach(forked.pid)
        clone.timings["restore_ms"] = (time.perf_counter() - start) * 1000
        clone.wait_unique(start)
        return clone

    def memory_sources(self) -> list:
        """The living template's memory *is* the snapshot: its mappings through /proc/PID/mem."""
        from snapsafe.audit.leaks import process_memory

        return [process_memory(self.fork_template.pid, f"fork template (pid {self.fork_template.pid})")]

    def close_clones(self) -> None:
        for clone in list(self._live):
            clone.close()

    def close(self) -> None:
        self.close_clones()


class ForkClone(Clone):
    snapshot: ForkSnapshot

    def __init__(self, snapshot: ForkSnapshot, clone_id: str, generation: int) -> None:
        super().__init__(snapshot, clone_id, generation)
        self._pidfd: int | None = None
        self._returncode: int | None = None

    def attach(self, pid: int) -> None:
        self.pid = pid
        try:
            self._pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):  # very old kernels: fall back to the pid
            self._pidfd = None

    def wait_unique(self, start: float) -> None:
        assert self.channel is not None
        try:
            with self.channel.lock:
                reply = self.channel.receive(timeout=self.options.restore_timeout)
        except (ChannelClosed, ChannelTimeout) as err:
            reason = self._exit_reason()
            self.close()
            raise CloneFailed(f"{self.id} did not become unique: {err} ({reason})") from err
        self._after_unique(reply)
        self.timings["ready_ms"] = (time.perf_counter() - start) * 1000

    def _kill(self) -> None:
        try:
            if self._pidfd is not None:
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            elif self.pid:
                os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        finally:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def _exit_reason(self) -> str:
        if self.pid is None:
            return "it was never forked"
        channel = self.snapshot.fork_template.channel
        try:
            reaped = channel.request(p.Reap(pid=self.pid), timeout=2)
        except (ChannelClosed, ChannelTimeout, p.ProtocolError):
            return "the template is gone"
        if isinstance(reaped, p.Reaped):
            self._returncode = reaped.returncode
            return f"the clone process {describe_returncode(reaped.returncode)}"
        return "unknown"

    @property
    def returncode(self) -> int | None:
        return self._returncode
