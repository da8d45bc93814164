"""Dumping a sandbox with CRIU, and what a restore must give each clone in place of the original.

A sandbox holds things that live outside it: its control socket (the orchestrator holds the other
end), the pipe its stdout and stderr write to, its SysGenId counter file (mapped, and open through
Python's mmap object) and the FIFOs of SysGenId watchers opened at init. CRIU records them by
name; each clone gets fresh ones with ``--inherit-fd`` (see ``clone.py``), so every clone has its
own channel, output, counter and watcher FIFOs from its first instruction on, and a restore never
depends on files of the template, which is gone.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from snapsafe.engines.criu.binary import Criu


class DumpFailed(Exception):
    """``criu dump`` failed; the sandbox was resumed as it was (CRIU unfreezes it on failure)."""


@dataclasses.dataclass(frozen=True)
class Externals:
    """The sandbox's resources outside it, as CRIU names them for ``--inherit-fd``."""

    channel_inode: int  # the agent's end of the control socket: socket:[inode]
    output_inode: int  # the pipe on fds 1 and 2: pipe:[inode]
    counter_path: str  # the SysGenId counter file
    watcher_fifos: tuple[str, ...] = ()  # FIFOs of SysGenId watchers opened at init

    @classmethod
    def of(cls, pid: int, channel_fd: int, counter_path: str) -> Externals:
        links = {}
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                links[int(fd)] = os.readlink(f"/proc/{pid}/fd/{fd}")
            except FileNotFoundError:
                pass
        if links.get(2) != links.get(1):
            raise DumpFailed("the sandbox's stdout and stderr are not the same pipe")
        watchers = counter_path + ".watchers/"
        fifos = sorted({link for link in links.values() if link.startswith(watchers) and link.endswith(".fifo")})
        return cls(channel_inode=_inode(links.get(channel_fd, "?"), "socket"),
                   output_inode=_inode(links.get(1, "?"), "pipe"), counter_path=counter_path,
                   watcher_fifos=tuple(fifos))

    @classmethod
    def from_info(cls, info: dict[str, Any]) -> Externals:
        return cls(channel_inode=int(info["channel_inode"]), output_inode=int(info["output_inode"]),
                   counter_path=str(info["counter_path"]), watcher_fifos=tuple(info.get("watcher_fifos", ())))


def _inode(link: str, kind: str) -> int:
    match = re.fullmatch(kind + r":\[(\d+)\]", link)
    if not match:
        raise DumpFailed(f"expected a {kind} in the sandbox, found {link}")
    return int(match.group(1))


def criu_errors(log: Path, limit: int = 2) -> str:
    """The first error lines of a CRIU log, without timestamps and the harmless rlimit warning."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return ""
    errors = []
    for line in text.splitlines():
        match = re.match(r"\s*(?:\([\d.]+\)\s+)?(?:\d+:\s+)?Error \([^)]*\):\s*(.*)", line)
        if match and "RLIMIT_NOFILE" not in line and "FAILED" not in line:
            errors.append(match.group(1).strip())
    return "; ".join(errors[:limit])


def dump(criu: Criu, pid: int, images: Path, workdir: Path, externals: Externals,
         extra: tuple[str, ...] | list[str] = ()) -> float:
    """Dump the process tree of ``pid`` into ``images``; returns the time taken (ms).

    Without ``--leave-running``: after a successful dump CRIU kills the sandbox, whose memory is
    then free for the clones (a prepared sandbox has nothing left to do). After a failed one CRIU
    resumes it, so the template may try again. The log and CRIU's statistics go to ``workdir``,
    not into the snapshot.
    """
    log = workdir / "dump.log"
    cmd = [criu.path, "dump", "--tree", str(pid), "--images-dir", str(images), "--work-dir", str(workdir),
           "--log-file", log.name, f"--ext-unix-sk={externals.channel_inode}", *extra]
    start = time.perf_counter()
    # A session of its own: Ctrl-C reaches the orchestrator only, which ends the dump itself.
    result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, start_new_session=True)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        reason = criu_errors(log) or result.stderr.strip() or f"exit code {result.returncode}"
        if "Can't get 1:16 opt" in reason:  # SO_PASSCRED on a TCP socket: EOPNOTSUPP since Linux 6.16
            raise DumpFailed(f"this CRIU cannot dump TCP sockets on Linux {os.uname().release} ({reason}); "
                             "rebuild it with the fix in scripts/criu-patches/: sudo bash scripts/install-criu.sh")
        if "No space left on device" in reason or "ENOSPC" in reason:
            raise DumpFailed(f"no space left on the device of {images.parent} while writing the images")
        raise DumpFailed(reason)
    return elapsed


def memory_files(images: Path) -> list[Path]:
    """The image files holding the sandbox's raw memory (CRIU's page images)."""
    return sorted(Path(images).glob("pages-*.img"))
