"""A CRIU clone: a restored sandbox in its own PID namespace, with its own channel, output and counter."""

from __future__ import annotations

import os
import shutil
import socket
import time
from typing import TYPE_CHECKING

from snapsafe import genid
from snapsafe.agent import protocol as p
from snapsafe.engines.base import Clone, CloneFailed
from snapsafe.engines.channel import Channel, ChannelClosed, ChannelTimeout
from snapsafe.engines.criu.restore import RestoreFailed, RestoreProcess
from snapsafe.engines.output import OutputPump

if TYPE_CHECKING:
    from snapsafe.engines.criu.snapshot import CriuSnapshot


class CriuClone(Clone):
    # The counter file at the dumped path is fresh per clone (--inherit-fd), but the watcher files
    # beside it are shared by every clone on the host's filesystem: the agent makes and maps a new
    # counter and moves its watchers there (as in a fork). Other processes of the clone keep the
    # inherited page (see docs/criu.md).
    private_counter = False
    snapshot: CriuSnapshot

    def __init__(self, snapshot: CriuSnapshot, clone_id: str, generation: int) -> None:
        super().__init__(snapshot, clone_id, generation)
        self.restore_process: RestoreProcess | None = None
        self.workdir = snapshot.rundir / clone_id
        self.inherited_counter = ""  # the counter the clone wakes up with; the agent then makes its own
        self.lazy = False

    def start(self, lazy: bool) -> None:
        """Restore the clone, send ``restored`` and wait for ``unique``."""
        snap = self.snapshot
        self.lazy = lazy
        self.workdir.mkdir(mode=0o700)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        self.channel = Channel(ours, state=p.SNAPSHOTTABLE)
        self.output = OutputPump(out_r, self.id, self.options.output)
        self.inherited_counter = genid.create_counter(initial=snap.base_generation)
        ext = snap.externals
        inherit = [(theirs.fileno(), f"socket:[{ext.channel_inode}]"), (out_w, f"pipe:[{ext.output_inode}]"),
                   (os.open(self.inherited_counter, os.O_RDWR), ext.counter_path.lstrip("/"))]
        for n, fifo in enumerate(ext.watcher_fifos):  # the agent moves them to its own counter at `restored`
            mine = self.workdir / f"watcher-{n}.fifo"
            os.mkfifo(mine, 0o600)
            inherit.append((os.open(mine, os.O_RDWR | os.O_NONBLOCK), fifo.lstrip("/")))
        start = time.perf_counter()
        try:
            self.restore_process = RestoreProcess(snap.criu, snap.images, self.workdir, inherit, lazy=lazy,
                                                  timeout=self.options.restore_timeout,
                                                  extra=snap.info.get("criu_options", []))
        except RestoreFailed as err:
            raise CloneFailed(f"{self.id}: {err}") from None
        finally:
            theirs.close()
            for fd, _ in inherit[1:]:
                os.close(fd)
        self.pid = snap.pid  # the template's PID, in the clone's own namespace
        try:
            with self.channel.lock:
                # Queued at once: the agent reads it as soon as it runs again (saves a round trip).
                self.channel.send(self.restored_event())
                reply = self.channel.receive(timeout=self.options.restore_timeout)
        except (ChannelClosed, ChannelTimeout, OSError) as err:
            raise CloneFailed(f"{self.id} did not become unique: {self._exit_reason()}"
                              + (f" ({err})" if isinstance(err, ChannelTimeout) else "")) from None
        self._after_unique(reply)
        ready_ms = (time.perf_counter() - start) * 1000
        self.timings["ready_ms"] = ready_ms
        self.timings["restore_ms"] = ready_ms - self.timings.get("unique_ms", 0.0)

    @property
    def host_pid(self) -> int | None:
        """The restored process in the host's PID namespace: the descendant of our `unshare` whose
        innermost PID (NSpid) is the template's."""
        if self.restore_process is None:
            return None
        todo = [self.restore_process.process.pid]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/status") as f:
                    nspid = next((line.split()[1:] for line in f if line.startswith("NSpid:")), [])
                if len(nspid) > 1 and int(nspid[-1]) == self.pid:
                    return pid
                for task in os.listdir(f"/proc/{pid}/task"):
                    with open(f"/proc/{pid}/task/{task}/children") as f:
                        todo.extend(int(c) for c in f.read().split())
            except (OSError, ValueError):
                continue
        return None

    def _exit_reason(self) -> str:
        if self.restore_process is None:
            return "the restore did not start"
        return self.restore_process.failure()

    def _kill(self) -> None:
        if self.restore_process is not None:
            self.restore_process.kill()
        if self.inherited_counter:
            genid.remove_counter(self.inherited_counter)
            self.inherited_counter = ""
        shutil.rmtree(self.workdir, ignore_errors=True)
