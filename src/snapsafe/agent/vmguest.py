"""What the agent does only inside a VM guest, after a restore: reseed the kernel's RNG, set the clock.

The orchestrator's 32 bytes of entropy go into the kernel's input pool (``RNDADDENTROPY``, credited
as 256 bits) and the kernel is told to reseed its CRNG from it at once (``RNDRESEEDCRNG``), so
``os.urandom`` / ``getrandom`` differ across clones before any restorer draws from them. Both
ioctls need CAP_SYS_ADMIN: the agent runs as root in the guest.

The vmgenid device stays on as defence in depth: the guest kernel reseeds on its own when a clone
starts with a new generation ID, asynchronously, and logs it; we report whether it has been logged.

A restored guest's clock says the time of the snapshot (its virtual clock stood still meanwhile),
so the clock is set to the orchestrator's time sent with ``restored``: Lambda deadlines,
timestamps and uuid1 depend on it.
"""

from __future__ import annotations

import fcntl
import os
import struct
import time
from typing import Any

from snapsafe.agent import protocol as p

RNDADDENTROPY = 0x40085203  # _IOW('R', 0x03, int[2])
RNDRESEEDCRNG = 0x5207  # _IO('R', 0x07)
VMGENID_LOG = "crng reseeded due to virtual machine fork"


def reseed_kernel(entropy: bytes) -> None:
    """Mix ``entropy`` into the kernel pool and force a CRNG reseed."""
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        info = struct.pack("ii", len(entropy) * 8, len(entropy)) + entropy  # struct rand_pool_info
        fcntl.ioctl(fd, RNDADDENTROPY, info)
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def before_snapshot() -> None:
    """Reseed the kernel's CRNG right before the snapshot. The kernel reseeds itself on a timer (every
    uptime/2 s early after boot, later every 60 s) from its input pool, where interrupt timings
    differ per clone; starting that timer at the snapshot gives every clone the same window of at
    least a second in which only the host entropy (or, for exact clones, nothing) changes the RNG."""
    fd = os.open("/dev/urandom", os.O_WRONLY)
    try:
        fcntl.ioctl(fd, RNDRESEEDCRNG)
    finally:
        os.close(fd)


def vmgenid_reseeds() -> int:
    """How many times the kernel log says the CRNG reseeded for a VM fork (reads /dev/kmsg)."""
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return -1
    count = 0
    try:
        while True:
            try:
                record = os.read(fd, 8192)
            except BlockingIOError:
                break
            except OSError:  # EPIPE: a record was overwritten; go on reading
                continue
            if not record:
                break
            count += VMGENID_LOG.encode() in record
    finally:
        os.close(fd)
    return count


def after_restore(event: p.Restored) -> dict[str, Any]:
    """The agent's VM hook, run before ``restore_uniqueness``; returns notes for ``unique``."""
    notes: dict[str, Any] = {"kernel_entropy": False, "clock_step_s": 0.0}
    if event.host_time:
        notes["clock_step_s"] = round(event.host_time - time.time(), 3)
        time.clock_settime(time.CLOCK_REALTIME, event.host_time)
    entropy = bytes.fromhex(event.entropy)
    if entropy:
        reseed_kernel(entropy)
        notes["kernel_entropy"] = True
    notes["vmgenid_reseed_logged"] = vmgenid_reseeds() > 0
    return notes
