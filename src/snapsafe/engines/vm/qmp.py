"""A small synchronous QMP client over a connected socket (QEMU's JSON machine protocol).

One command at a time: ``execute`` sends a command (optionally with file descriptors, as QMP's
``getfd`` wants them) and returns its ``return`` value; asynchronous events that arrive in
between are kept in ``events``. The library ``qemu.qmp`` is asyncio-based; this is all we need.
"""

from __future__ import annotations

import array
import json
import socket
import time
from typing import Any


class QmpError(Exception):
    """QEMU refused a command, closed the monitor, or did not answer in time."""


class Qmp:
    def __init__(self, sock: socket.socket, timeout: float = 30.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._buffer = b""
        greeting = self._read(time.monotonic() + timeout)
        if "QMP" not in greeting:
            raise QmpError(f"not a QMP greeting: {greeting!r}")
        self.execute("qmp_capabilities")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QmpError("QEMU did not answer on QMP in time")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError as err:
                raise QmpError(f"QMP connection failed: {err}") from None
            if not chunk:
                raise QmpError("QEMU closed its monitor (it exited)")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command: str, arguments: dict[str, Any] | None = None, fds: tuple[int, ...] = (),
                timeout: float | None = None) -> Any:
        message: dict[str, Any] = {"execute": command}
        if arguments:
            message["arguments"] = arguments
        data = json.dumps(message).encode() + b"\n"
        try:
            if fds:
                self.sock.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())])
            else:
                self.sock.sendall(data)
        except OSError as err:
            raise QmpError(f"QMP {command}: {err}") from None
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._read(deadline)
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise QmpError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
            elif "return" in reply:
                return reply["return"]

    def wait_migration(self, timeout: float = 60.0) -> dict[str, Any]:
        """Poll ``query-migrate`` until the migration completed; raise if it failed."""
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            info = self.execute("query-migrate")
            status = info.get("status")
            if status == "completed":
                return info
            if status in ("failed", "cancelled"):
                raise QmpError(f"migration {status}: {info.get('error-desc', 'no reason given')}")
            if time.monotonic() > deadline:
                raise QmpError(f"migration not completed within {timeout:g} s (status {status})")
            time.sleep(delay)
            delay = min(delay * 2, 0.02)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
