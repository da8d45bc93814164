"""A transport over a character device: the virtio-serial port of a VM guest.

Two quirks of virtio-serial ports: a single write moves at most 32 KiB (so ``send`` loops), and a
read returns EOF (``b""``) whenever no host is connected to the other end, for instance between a
snapshot and a restore, so ``recv`` backs off and reads again instead of treating it as the end.
"""

from __future__ import annotations

import os
import time


class DeviceTransport:
    """The agent's channel on a device node (``--device /dev/vport1p1``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        self.fds: list[int] = []  # no fd passing on a device; kept for the agent's fork path

    def recv(self) -> bytes:
        delay = 0.001
        while True:
            data = os.read(self.fd, 1 << 16)
            if data:
                return data
            time.sleep(delay)  # the host side is not connected (yet): wait for it
            delay = min(delay * 2, 0.05)

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view[: 32 * 1024])
            view = view[written:]

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
