"""One QEMU process: its QMP monitor, its control socket to the guest agent, and its console.

QMP and the control channel are the orchestrator's ends of socketpairs whose other ends QEMU
inherits (``-chardev socket,fd=N``), so there is no socket file to create, race on, or remove.
The guest console (``-serial stdio``) and QEMU's own messages go through one pipe into an
:class:`OutputPump` tagged with the sandbox's id; its last lines go into error messages.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time

from snapsafe.engines.base import describe_returncode
from snapsafe.engines.output import OutputPump, Sink
from snapsafe.engines.vm import qemu
from snapsafe.engines.vm.image import BOOT_MARKER
from snapsafe.engines.vm.qmp import Qmp, QmpError


class Machine:
    """A running (or incoming) QEMU; ``kill()`` ends it and releases everything (idempotent)."""

    def __init__(self, spec: qemu.MachineSpec, *, tag: str, ram_fd: int, share: bool, vmgenid: str,
                 incoming: bool, sink: Sink | None, extra_fds: tuple[int, ...] = (), env: dict[str, str] | None = None
                 ) -> None:
        self.tag = tag
        self.vmgenid = vmgenid
        self.booted = threading.Event()
        self._sink = sink
        self.process: subprocess.Popen[bytes] | None = None
        self.qmp: Qmp | None = None
        qmp_ours, qmp_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.ctl, ctl_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        out_r, out_w = os.pipe()
        argv = qemu.command_line(spec, ram_fd=ram_fd, share=share, qmp_fd=qmp_theirs.fileno(),
                                 ctl_fd=ctl_theirs.fileno(), vmgenid=vmgenid, incoming=incoming)
        if incoming:
            argv.append("-S")  # stay stopped after the incoming migration: the engine sends `cont`
        try:
            self.process = qemu.spawn(argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=out_w, env=env,
                                      pass_fds=(qmp_theirs.fileno(), ctl_theirs.fileno(), ram_fd, *extra_fds))
        except BaseException:
            os.close(out_r)
            qmp_ours.close()
            self.ctl.close()
            raise
        finally:
            os.close(out_w)
            qmp_theirs.close()
            ctl_theirs.close()
        self.pid = self.process.pid
        self.console = OutputPump(out_r, tag, self._line)
        try:
            self.qmp = Qmp(qmp_ours)
        except (QmpError, ValueError) as err:
            qmp_ours.close()
            self.kill()
            raise QmpError(f"QEMU did not start ({err}){self.last_output()}") from None

    def _line(self, tag: str, line: str) -> None:
        if line.startswith(BOOT_MARKER):
            self.booted.set()  # the guest's /init is about to start the agent
            return
        if self._sink is not None:
            self._sink(tag, line)

    def wait_booted(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.booted.wait(0.05):
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                return self.booted.is_set()
        return True

    def last_output(self, lines: int = 5) -> str:
        """``; last console lines: a | b | c`` (empty when there are none)."""
        self.console.join(0.2 if self.alive else 1.0)
        tail = [line.strip() for line in list(self.console.lines)[-lines:] if line.strip()]
        return ("; last console lines: " + " | ".join(tail)) if tail else ""

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def describe(self) -> str:
        """How the QEMU process ended, e.g. 'QEMU exited with code 1'."""
        if self.process is None:
            return "QEMU did not start"
        try:
            return f"QEMU {describe_returncode(self.process.wait(1))}"
        except subprocess.TimeoutExpired:
            return "QEMU is running but the guest stopped answering"

    def quit(self, timeout: float = 5.0) -> None:
        """Ask QEMU to quit (after a snapshot) and wait for it."""
        assert self.qmp is not None and self.process is not None
        try:
            self.qmp.execute("quit")
        except QmpError:
            pass
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.qmp is not None:
            self.qmp.close()
        try:
            self.ctl.close()
        except OSError:
            pass
        self.console.join() if hasattr(self, "console") else None
