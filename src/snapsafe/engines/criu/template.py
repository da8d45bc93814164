"""A CRIU template: the agent in a process of its own, initialised, prepared, then dumped to images.

The sandbox is ``python -m snapsafe.agent --mode sandbox`` started as a session leader without a
terminal (CRIU dumps such a process without ``--shell-job``), stdin on /dev/null, stdout and
stderr on a pipe, the control channel on a socket, and a SysGenId counter of its own. After
``prepare`` -> ``ready`` the agent waits on its channel; that is the moment CRIU dumps, and
every clone resumes there, reading ``restored`` from its own new channel.
"""

from __future__ import annotations

import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from snapsafe import genid
from snapsafe.agent import protocol as p
from snapsafe.engines.base import Options, ProcessTemplate, SandboxError, SnapshotError
from snapsafe.engines.channel import Channel
from snapsafe.engines.criu.binary import Criu
from snapsafe.engines.criu.dump import DumpFailed, Externals, dump
from snapsafe.engines.criu.netns import CRIU_TCP_OPTIONS, nsenter_prefix, socketpair_in_new_netns
from snapsafe.engines.criu.snapshot import CriuSnapshot, private_tmpfs_dir
from snapsafe.engines.manifest import write_snapshot_dir
from snapsafe.engines.output import OutputPump


class CriuTemplate(ProcessTemplate):
    def __init__(self, target: str, options: Options, criu: Criu) -> None:
        super().__init__(target, options)
        self.criu = criu
        self.process: subprocess.Popen[bytes] | None = None
        self.output: OutputPump | None = None
        self.channel: Channel | None = None
        self.ready: p.Ready | None = None
        self.dumped = False
        self.python = ""
        self.channel_fd = -1
        self.counter = genid.create_counter()
        self.workdir = private_tmpfs_dir("dump")
        start = time.perf_counter()
        try:
            self._start_agent(target)
            hello = self.receive_hello(start)
        except BaseException:
            self.close()
            raise
        self.pid = hello.pid
        self.python = hello.python

    def _start_agent(self, target: str) -> None:
        prefix: list[str] = []
        netns = -1
        if self.options.runtime == "lambda":  # loopback TCP: a network namespace to dump (netns.py)
            ours, theirs, netns = socketpair_in_new_netns()
            prefix = nsenter_prefix(netns)
        else:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        env = dict(os.environ)
        env.update(self.options.env)
        env[genid.ENV_VAR] = self.counter
        self.channel_fd = theirs.fileno()  # the same number in the agent (pass_fds)
        try:
            self.process = subprocess.Popen(
                [*prefix, sys.executable, "-m", "snapsafe.agent", "--target", target, "--fd", str(self.channel_fd),
                 "--mode", "sandbox", *self.options.agent_args()],
                stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w,
                pass_fds=(self.channel_fd,) if netns < 0 else (self.channel_fd, netns),
                start_new_session=True, env=env, cwd=self.options.cwd)
        except BaseException:
            os.close(out_r)
            ours.close()
            raise
        finally:
            theirs.close()
            os.close(out_w)
            if netns >= 0:
                os.close(netns)
        self.output = OutputPump(out_r, "template", self.options.output)
        self.channel = Channel(ours)


    # -- snapshot -------------------------------------------------------------------------------
    def _prepare(self) -> p.Ready:
        """``prepare`` -> ``ready``, once (a failed dump leaves the template prepared, ready to retry)."""
        if self.ready is not None:
            return self.ready
        ready = self.request_ready()
        self.ready = ready
        return ready

    def snapshot(self, directory: str | None = None) -> CriuSnapshot:
        """Prepare and dump the sandbox: into ``directory`` (created atomically, with a manifest),
        or into a private temporary directory on a tmpfs that the snapshot removes on close."""
        if self.dumped:
            raise SandboxError("a criu template is dumped once (CRIU ends it after the dump); "
                               "restore more clones from the snapshot, or start a new template")
        start = time.perf_counter()
        ready = self._prepare()
        owned = None
        try:
            if directory is None:
                owned = private_tmpfs_dir("snapshot")
                images = owned / "images"
                images.mkdir(mode=0o700)
                info = self._dump(images)
            else:
                info = write_snapshot_dir(directory, "criu", self.target, self._dump).engine_info
                images = Path(directory)
        except DumpFailed as err:
            if owned is not None:
                shutil.rmtree(owned, ignore_errors=True)
            where = f" to {directory}" if directory else ""
            raise SnapshotError(f"{self.target}: criu dump{where} failed: {err} (nothing was written; "
                                "the template is unchanged)", error_type="Runtime.SnapshotError") from None
        except BaseException:
            if owned is not None:
                shutil.rmtree(owned, ignore_errors=True)
            raise
        self.dumped = True
        snapshot = CriuSnapshot(self, self.criu, images, info, owned=owned)
        snapshot.timings["prepare_ms"] = ready.prepare_ms
        snapshot.timings["dump_ms"] = info["dump_ms"]
        snapshot.timings["snapshot_ms"] = (time.perf_counter() - start) * 1000
        return snapshot

    def _dump(self, images: Path) -> dict[str, Any]:
        """Dump into ``images``; the manifest's ``engine_info``."""
        assert self.process is not None and self.ready is not None
        externals = Externals.of(self.process.pid, self.channel_fd, self.counter)
        tcp = self.options.runtime == "lambda"
        dump_ms = dump(self.criu, self.process.pid, images, self.workdir, externals, CRIU_TCP_OPTIONS if tcp else ())
        self.process.wait()  # CRIU killed it after the dump
        pages = sum(f.stat().st_size for f in images.glob("pages-*.img"))
        return {
            "criu_version": self.criu.version,
            "python": self.python,
            "python_executable": sys.executable,
            "kernel": platform.release(),
            "pid": self.process.pid,
            "generation": self.ready.generation,
            "channel_inode": externals.channel_inode,
            "output_inode": externals.output_inode,
            "counter_path": externals.counter_path,
            "watcher_fifos": list(externals.watcher_fifos),
            "memory_bytes": pages,
            "dump_ms": dump_ms,
            "criu_options": list(CRIU_TCP_OPTIONS) if tcp else [],
        }

    def close(self) -> None:
        # A dumped template is gone already; otherwise it leads a session: kill its whole group.
        self._stop_process(say_shutdown=not self.dumped,
                           kill=lambda proc: os.killpg(proc.pid, signal.SIGKILL))
        genid.remove_counter(self.counter)
        shutil.rmtree(self.workdir, ignore_errors=True)
