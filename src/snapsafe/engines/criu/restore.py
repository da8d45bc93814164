"""Restoring one clone: ``criu restore`` as PID 1 of a new PID namespace, and its lazy-pages daemon.

    unshare --pid --fork --mount-proc --kill-child criu restore -D IMAGES -W WORKDIR \
        --inherit-fd 'fd[4]:socket:[N]' --inherit-fd 'fd[5]:pipe:[M]' --inherit-fd 'fd[6]:dev/shm/...'

In a namespace of its own the restored process keeps the template's PID, so several clones of one
image run at once. CRIU stays in the foreground as the namespace's init (with ``--restore-detached``
it would exit and take the clone with it); when it dies the kernel kills everything in the
namespace, so killing it ends the clone, whatever the clone started. ``--kill-child`` ties it to
``unshare``, which dies with the orchestrator (see ``spawn.py``). Nothing is written into the image
directory (logs and CRIU's statistics go to the clone's work directory), so any number of restores
may read it at once.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from snapsafe.engines.base import describe_returncode
from snapsafe.engines.criu.binary import Criu
from snapsafe.engines.criu.dump import criu_errors
from snapsafe.engines.spawn import spawn


class RestoreFailed(Exception):
    """The restore could not be started."""


def _unshare() -> str:
    path = shutil.which("unshare") or shutil.which("unshare", path="/usr/bin:/bin")
    if not path:
        raise RestoreFailed("`unshare` (util-linux) is not installed")
    return path


class RestoreProcess:
    """The processes behind one clone: ``unshare`` -> ``criu restore`` (namespace init) -> the
    sandbox, and for a lazy restore a ``criu lazy-pages`` daemon serving its memory on demand."""

    def __init__(self, criu: Criu, images: Path, workdir: Path, inherit: list[tuple[int, str]],
                 lazy: bool = False, timeout: float = 30.0, extra: list[str] | tuple[str, ...] = ()) -> None:
        """``inherit``: (our fd, CRIU's name of what it replaces: 'socket:[N]', 'pipe:[N]', a path
        without its leading slash)."""
        self.workdir = workdir
        self.lazy = lazy
        self.daemon: subprocess.Popen[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None
        cmd = [_unshare(), "--pid", "--fork", "--mount-proc", "--kill-child",
               criu.path, "restore", "--images-dir", str(images), "--work-dir", str(workdir), "--log-file",
               "restore.log", *extra]
        for fd, name in inherit:
            cmd += ["--inherit-fd", f"fd[{fd}]:{name}"]
        if lazy:
            self.daemon = self._start_lazy_pages(criu, images, timeout)
            cmd.append("--lazy-pages")
        with open(workdir / "unshare.err", "wb") as err:
            # A session of its own: Ctrl-C reaches the orchestrator only, which stops its clones.
            self.process = spawn(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                 pass_fds=[fd for fd, _ in inherit], start_new_session=True)

    def _start_lazy_pages(self, criu: Criu, images: Path, timeout: float) -> subprocess.Popen[bytes]:
        """Start the daemon and wait until it listens (it writes a byte to --status-fd)."""
        ready_r, ready_w = os.pipe()
        try:
            daemon = spawn(
                [criu.path, "lazy-pages", "--images-dir", str(images), "--work-dir", str(self.workdir),
                 "--log-file", "lazy-pages.log", "--status-fd", str(ready_w)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                pass_fds=(ready_w,), start_new_session=True)
            os.close(ready_w)
            ready_w = -1
            readable, _, _ = select.select([ready_r], [], [], timeout)
            if not readable or not os.read(ready_r, 1):
                daemon.kill()
                daemon.wait()
                reason = criu_errors(self.workdir / "lazy-pages.log") or "it did not start"
                raise RestoreFailed(f"criu lazy-pages failed: {reason}")
            return daemon
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def failure(self) -> str:
        """Why the restore ended, for error messages."""
        if self.process is None:
            return "the restore did not start"
        try:
            code = self.process.wait(2)
        except subprocess.TimeoutExpired:
            return "criu restore is still running but the clone does not answer"
        reason = criu_errors(self.workdir / "restore.log") or criu_errors(self.workdir / "lazy-pages.log")
        if reason:
            return f"criu restore failed: {reason}"
        try:
            unshare_err = (self.workdir / "unshare.err").read_text(errors="replace").strip()
        except OSError:
            unshare_err = ""
        if unshare_err:
            return f"unshare failed: {unshare_err.splitlines()[-1]}"
        return f"the clone's namespace {describe_returncode(code)}"

    def kill(self) -> None:
        """End the clone's namespace and the lazy-pages daemon, and wait until they are gone."""
        if self.process is not None and self.process.poll() is None:
            inits = _children(self.process.pid)  # criu restore, the namespace's init
            pidfds = []
            for pid in inits:
                try:
                    pidfds.append(os.pidfd_open(pid))
                except OSError:
                    pass
            self.process.kill()  # --kill-child: criu gets SIGKILL, then everything in its namespace
            for fd in pidfds:
                try:
                    signal.pidfd_send_signal(fd, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait()
            deadline = time.monotonic() + 5
            for fd in pidfds:  # readable once the init exited, i.e. its namespace is empty
                select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
                os.close(fd)
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
