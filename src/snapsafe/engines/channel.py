"""The orchestrator's end of an agent channel: a socket driven by the sans-IO protocol."""

from __future__ import annotations

import array
import socket
import threading
import time

from snapsafe.agent import protocol as p


class ChannelClosed(Exception):
    """The agent's end closed: the sandbox exited or was killed."""


class ChannelTimeout(Exception):
    """No reply within the time allowed."""


class Channel:
    """Send events (optionally with file descriptors) and wait for replies, one request at a time."""

    def __init__(self, sock: socket.socket, state: str = p.STARTING) -> None:
        self.sock = sock
        self.conn = p.Connection(p.ORCHESTRATOR, state=state)
        self.lock = threading.Lock()  # one conversation at a time on this channel

    @property
    def state(self) -> str:
        return self.conn.state

    def send(self, event: p.Event, fds: tuple[int, ...] = ()) -> None:
        data = self.conn.send(event)
        try:
            if fds:
                ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())]
                sent = self.sock.sendmsg([data], ancillary)
                if sent < len(data):
                    self.sock.sendall(data[sent:])
            else:
                self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as err:
            raise ChannelClosed(str(err)) from err

    def receive(self, timeout: float | None = None) -> p.Event:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            event = self.conn.next_event()
            if event is None:
                raise ChannelClosed("the agent closed its channel")
            if event is not p.NEED_DATA:
                return event  # type: ignore[return-value]
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ChannelTimeout(f"no answer within {timeout:g} s")
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(1 << 16)
            except TimeoutError:
                raise ChannelTimeout(f"no answer within {timeout:g} s") from None
            except (ConnectionResetError, OSError) as err:
                if isinstance(err, (socket.timeout,)):
                    raise ChannelTimeout(f"no answer within {timeout:g} s") from None
                raise ChannelClosed(str(err)) from err
            self.conn.receive_data(data)

    def request(self, event: p.Event, timeout: float | None = None, fds: tuple[int, ...] = ()) -> p.Event:
        with self.lock:
            self.send(event, fds)
            return self.receive(timeout)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
