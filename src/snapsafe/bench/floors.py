"""The raw floors each engine is measured against: the same restore with no snapsafe code on the
host's path. ``once()`` returns milliseconds to a first answer; ``close()`` ends what it started.

- fork: ``os.fork()`` of a process of the same size whose child answers one byte;
- criu: ``unshare -p -f --mount-proc criu restore`` of the same image, driven by hand with
  pre-encoded frames on a bare socket;
- vm: plain QEMU with the same command line, ``-incoming`` + ``cont``, then the least the agent
  needs to answer (``restored`` without entropy or restorers, one ``invoke``).
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from snapsafe import genid, restorers
from snapsafe.agent import protocol as p
from snapsafe.engines.base import Snapshot


class ForkFloor:
    def __init__(self, target: str) -> None:
        from snapsafe.bench.measure import ForkingProbe

        self.probe = ForkingProbe("floor", target)

    def once(self) -> float:
        return self.probe.once()

    def close(self) -> None:
        self.probe.close()


def _read_frames(sock: socket.socket, count: int, timeout: float = 60) -> None:
    """Read ``count`` length-prefixed frames (their content does not matter here)."""
    buffer = b""
    deadline = time.monotonic() + timeout
    while count:
        while len(buffer) < 4 or len(buffer) < 4 + struct.unpack(">I", buffer[:4])[0]:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise RuntimeError("the raw clone closed its channel")
            buffer += chunk
        size = struct.unpack(">I", buffer[:4])[0]
        buffer = buffer[4 + size:]
        count -= 1


def criu_raw_once(snapshot: Any, lazy: bool, workdir: Path) -> float:
    """A restore by hand: the same CRIU command line, no snapsafe code on the host side."""
    criu = snapshot.criu
    ext = snapshot.externals
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(mode=0o700)
    ours, theirs = socket.socketpair()
    out_r, out_w = os.pipe()
    counter = genid.create_counter(initial=snapshot.base_generation)
    counter_fd = os.open(counter, os.O_RDWR)
    frames = (p.encode(p.Restored(clone_id="raw", generation=snapshot.base_generation + 1000,
                                  entropy=os.urandom(32).hex()))
              + p.encode(p.Invoke(request_id="raw", event={}, deadline_ms=int(time.time() * 1000) + 60000)))
    cmd = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", criu.path, "restore", "-D",
           str(snapshot.images), "-W", str(workdir), "-o", "restore.log",
           "--inherit-fd", f"fd[{theirs.fileno()}]:socket:[{ext.channel_inode}]",
           "--inherit-fd", f"fd[{out_w}]:pipe:[{ext.output_inode}]",
           "--inherit-fd", f"fd[{counter_fd}]:{ext.counter_path.lstrip('/')}"]
    daemon = None
    start = time.perf_counter()
    if lazy:
        ready_r, ready_w = os.pipe()
        daemon = subprocess.Popen([criu.path, "lazy-pages", "-D", str(snapshot.images), "-W", str(workdir),
                                   "-o", "lazy-pages.log", "--status-fd", str(ready_w)], pass_fds=(ready_w,))
        os.close(ready_w)
        select.select([ready_r], [], [], 30)
        os.close(ready_r)
        cmd.append("--lazy-pages")
    proc = subprocess.Popen(cmd, pass_fds=(theirs.fileno(), out_w, counter_fd), stdout=subprocess.DEVNULL)
    ours.sendall(frames)
    _read_frames(ours, 2)  # unique, result
    elapsed = (time.perf_counter() - start) * 1000
    proc.kill()  # --kill-child: CRIU and the clone's namespace go with it
    proc.wait()
    if daemon is not None:
        daemon.kill()
        daemon.wait()
    for fd in (out_r, out_w, counter_fd):
        os.close(fd)
    ours.close()
    theirs.close()
    genid.remove_counter(counter)
    import glob  # the raw clone's agent made its own counter beside the dumped one: remove it too

    for derived in glob.glob(glob.escape(ext.counter_path) + "-raw-*"):
        genid.remove_counter(derived)
    return elapsed



class CriuFloor:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.workdir = Path(tempfile.mkdtemp(prefix="snapsafe-criu-raw-", dir="/dev/shm" if os.path.isdir("/dev/shm")
                                             else None))

    def once(self) -> float:
        return criu_raw_once(self.snapshot, False, self.workdir / "run")

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


def vm_raw_once(snap: Any) -> float:
    """Plain Popen of QEMU with the same command line; no engine code on the path."""
    from snapsafe.engines.vm.qemu import command_line
    from snapsafe.engines.vm.qmp import Qmp

    qmp_ours, qmp_theirs = socket.socketpair()
    ctl_ours, ctl_theirs = socket.socketpair()
    ram_fd, state_fd = snap.open_ram(), snap.open_state()
    argv = command_line(snap.spec, ram_fd=ram_fd, share=False, qmp_fd=qmp_theirs.fileno(),
                        ctl_fd=ctl_theirs.fileno(), vmgenid=str(uuid.uuid4()), incoming=True) + ["-S"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            pass_fds=(qmp_theirs.fileno(), ctl_theirs.fileno(), ram_fd, state_fd))
    qmp_theirs.close()
    ctl_theirs.close()
    try:
        qmp = Qmp(qmp_ours)
        qmp.execute("migrate-set-capabilities", {"capabilities": [{"capability": "x-ignore-shared", "state": True}]})
        qmp.execute("migrate-incoming", {"uri": f"fd:{state_fd}"})
        qmp.wait_migration()
        qmp.execute("cont")
        conn = p.Connection(p.ORCHESTRATOR, state=p.SNAPSHOTTABLE)

        def ask(event: p.Event) -> p.Event:
            ctl_ours.sendall(conn.send(event))
            while (reply := conn.next_event()) is p.NEED_DATA:
                conn.receive_data(ctl_ours.recv(65536))
            return reply  # type: ignore[return-value]

        assert isinstance(ask(p.Restored(clone_id="raw", generation=1, entropy="", disable=list(restorers.NAMES))),
                          p.Unique)
        assert isinstance(ask(p.Invoke(request_id="raw", event={}, deadline_ms=int(time.time() * 1000) + 60000)),
                          p.Result)
        elapsed = (time.perf_counter() - start) * 1000
    finally:
        proc.kill()
        proc.wait()
        for fd in (ram_fd, state_fd):
            os.close(fd)
        qmp_ours.close()
        ctl_ours.close()
    return elapsed



class VmFloor:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def once(self) -> float:
        return vm_raw_once(self.snapshot)

    def close(self) -> None:
        pass


def floor_for(engine: str, target: str, snapshot: Snapshot) -> Any:
    """The raw floor for ``engine``'s restores of ``snapshot`` (of ``target``)."""
    if engine == "fork":
        return ForkFloor(target)
    if engine == "criu":
        return CriuFloor(snapshot)
    if engine == "vm":
        return VmFloor(snapshot)
    raise ValueError(f"no raw floor for the {engine} engine")
