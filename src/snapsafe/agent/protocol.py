"""The agent protocol: messages between the orchestrator and the agent in a sandbox, without I/O.

Rules of this module (as in h11): no sockets, no threads, no clocks. Bytes go in with
``receive_data``, events come out of ``next_event``; ``send(event)`` returns the bytes to write.
Every engine carries these bytes over its own channel (a socketpair, an inherited fd, a virtio
serial port) with a thin wrapper.

Framing: a 4-byte big-endian length, then that many bytes of UTF-8 JSON ``{"type": ..., ...}``.
The first message of every conversation carries ``PROTOCOL_VERSION``; a peer speaking another
version is refused.

Both sides track one state machine of the sandbox (the table ``TRANSITIONS``); sending or receiving
an event that the current state does not allow raises :class:`ProtocolError`. It is what makes
"no invocation before the clone is unique" a rule of the protocol, not a habit of the caller.
"""

from __future__ import annotations

import json
import struct
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

PROTOCOL_VERSION = 1
MAX_FRAME = 64 * 1024 * 1024  # bytes; Lambda payloads are at most 6 MB
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """A malformed frame, an unknown message, a version mismatch, or a message out of order."""


# --- events -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    type: ClassVar[str] = ""


@dataclass(frozen=True)
class Hello(Event):
    """Agent -> orchestrator: the target is imported (init is done)."""

    type: ClassVar[str] = "hello"
    version: int
    pid: int
    python: str
    init_ms: float
    mode: str = "template"


@dataclass(frozen=True)
class Prepare(Event):
    """Orchestrator -> agent: get ready for a snapshot (hooks, wipe secrets, quiesce)."""

    type: ClassVar[str] = "prepare"
    freeze_gc: bool = True
    allow_threads: bool = False
    secret_canary: str = ""  # hex: fill every Secret with it before the wipe (audit --leaks)
    control_canary: str = ""  # hex: keep it in ordinary memory, where the leak search must find it


@dataclass(frozen=True)
class Ready(Event):
    """Agent -> orchestrator: safe to snapshot now."""

    type: ClassVar[str] = "ready"
    prepare_ms: float
    generation: int
    hooks: int = 0
    secrets_wiped: int = 0
    generators: int = 0
    canaries_planted: int = 0


@dataclass(frozen=True)
class Fork(Event):
    """Orchestrator -> fork template: make a clone; its channel and output fds travel alongside."""

    type: ClassVar[str] = "fork"
    clone_id: str


@dataclass(frozen=True)
class Forked(Event):
    """Fork template -> orchestrator: the clone process exists."""

    type: ClassVar[str] = "forked"
    clone_id: str
    pid: int


@dataclass(frozen=True)
class Reap(Event):
    """Orchestrator -> fork template: how did this clone end?"""

    type: ClassVar[str] = "reap"
    pid: int


@dataclass(frozen=True)
class Reaped(Event):
    """Fork template -> orchestrator: exit status (negative: killed by that signal), None if alive."""

    type: ClassVar[str] = "reaped"
    pid: int
    returncode: int | None


@dataclass(frozen=True)
class Restored(Event):
    """Orchestrator -> agent in a clone: you were restored; become unique before serving."""

    type: ClassVar[str] = "restored"
    clone_id: str
    generation: int
    entropy: str  # hex, 32 bytes from the host's RNG
    disable: list[str] = field(default_factory=list)
    version: int = PROTOCOL_VERSION
    # True when the engine already gave the clone a SysGenId counter of its own at the inherited path
    # (CRIU: --inherit-fd; a VM: its own tmpfs): bump it in place, so every process of the sandbox
    # sees it. False (fork): the page is shared with the siblings; make and map a new one.
    private_counter: bool = False
    host_time: float = 0.0  # the orchestrator's wall clock (s since the epoch); a VM guest sets its clock to it


@dataclass(frozen=True)
class Unique(Event):
    """Agent -> orchestrator: the clone is unique; invocations may come."""

    type: ClassVar[str] = "unique"
    clone_id: str
    generation: int
    elapsed_ms: float
    pid: int
    counter_path: str = ""
    restorers: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Invoke(Event):
    """Orchestrator -> agent: run the handler on ``event``."""

    type: ClassVar[str] = "invoke"
    request_id: str
    event: Any
    deadline_ms: int  # wall-clock epoch milliseconds, as Lambda-Runtime-Deadline-Ms
    function_name: str = "function"
    memory_mb: int = 128
    invoked_function_arn: str = ""
    fingerprint: bool = False  # also collect the audit fingerprint (snapsafe audit)


@dataclass(frozen=True)
class Result(Event):
    """Agent -> orchestrator: the handler returned (``ok``) or raised (``error`` is Lambda's shape)."""

    type: ClassVar[str] = "result"
    request_id: str
    ok: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    fingerprint: dict[str, Any] | None = None


@dataclass(frozen=True)
class Fatal(Event):
    """Agent -> orchestrator: init, prepare or restore failed; the sandbox is unusable."""

    type: ClassVar[str] = "fatal"
    error_type: str
    message: str
    traceback: str = ""


@dataclass(frozen=True)
class Shutdown(Event):
    """Orchestrator -> agent: exit now."""

    type: ClassVar[str] = "shutdown"


EVENTS: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (Hello, Prepare, Ready, Fork, Forked, Reap, Reaped, Restored, Unique, Invoke, Result, Fatal, Shutdown)
}

# --- states -----------------------------------------------------------------------------------
STARTING = "STARTING"  # the agent is importing the target
INITIALISED = "INITIALISED"  # init done, not yet prepared
PREPARING = "PREPARING"
SNAPSHOTTABLE = "SNAPSHOTTABLE"  # prepared: a snapshot (or a fork) may be taken
FORKING = "FORKING"  # fork template: making a clone
REAPING = "REAPING"
RESTORING = "RESTORING"  # a clone restoring uniqueness
SERVING = "SERVING"  # unique: invocations allowed
INVOKING = "INVOKING"
CLOSED = "CLOSED"

#: (state, event type) -> next state. Anything not listed is a protocol error.
TRANSITIONS: dict[tuple[str, str], str] = {
    (STARTING, "hello"): INITIALISED,
    (STARTING, "fatal"): CLOSED,
    (INITIALISED, "prepare"): PREPARING,
    (PREPARING, "ready"): SNAPSHOTTABLE,
    (PREPARING, "fatal"): CLOSED,
    (SNAPSHOTTABLE, "fork"): FORKING,
    (FORKING, "forked"): SNAPSHOTTABLE,
    (FORKING, "fatal"): SNAPSHOTTABLE,  # that clone failed; the template goes on
    (SNAPSHOTTABLE, "reap"): REAPING,
    (REAPING, "reaped"): SNAPSHOTTABLE,
    (SNAPSHOTTABLE, "restored"): RESTORING,
    (RESTORING, "unique"): SERVING,
    (RESTORING, "fatal"): CLOSED,
    (SERVING, "invoke"): INVOKING,
    (INVOKING, "result"): SERVING,
    (INVOKING, "fatal"): CLOSED,
}
#: Sent by the orchestrator; everything else is sent by the agent.
FROM_ORCHESTRATOR = frozenset({"prepare", "fork", "reap", "restored", "invoke", "shutdown"})

AGENT = "agent"
ORCHESTRATOR = "orchestrator"


class _NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = _NeedData()


def encode(event: Event) -> bytes:
    body = json.dumps({"type": event.type, **asdict(event)}, separators=(",", ":")).encode()
    if len(body) > MAX_FRAME:
        raise ProtocolError(f"{event.type} message of {len(body)} bytes exceeds the {MAX_FRAME}-byte frame limit")
    return _LENGTH.pack(len(body)) + body


def decode(body: bytes) -> Event:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as err:
        raise ProtocolError(f"frame is not JSON: {err}") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ProtocolError("frame is not a message object with a 'type'")
    cls = EVENTS.get(data.pop("type"))
    if cls is None:
        raise ProtocolError(f"unknown message type {body[:60]!r}")
    names = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in names})
    except TypeError as err:
        raise ProtocolError(f"malformed {cls.type} message: {err}") from None


class Connection:
    """One side of one conversation. ``state`` is the sandbox's state as this side sees it."""

    def __init__(self, role: str, state: str = STARTING) -> None:
        if role not in (AGENT, ORCHESTRATOR):
            raise ValueError(f"role must be {AGENT!r} or {ORCHESTRATOR!r}, got {role!r}")
        self.role = role
        self.state = state
        self._buffer = bytearray()
        self._eof = False

    def _apply(self, event: Event, sending: bool) -> None:
        from_orchestrator = event.type in FROM_ORCHESTRATOR
        if from_orchestrator != ((self.role == ORCHESTRATOR) == sending):
            direction = "send" if sending else "receive"
            raise ProtocolError(f"the {self.role} cannot {direction} a {event.type} message")
        if event.type == "shutdown":
            self.state = CLOSED
            return
        version = getattr(event, "version", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"peer speaks protocol version {version}, this side speaks {PROTOCOL_VERSION}")
        nxt = TRANSITIONS.get((self.state, event.type))
        if nxt is None:
            raise ProtocolError(f"{event.type} is not allowed in state {self.state}")
        self.state = nxt

    def send(self, event: Event) -> bytes:
        """Check ``event`` against the state machine and return its frame."""
        data = encode(event)
        self._apply(event, sending=True)
        return data

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the channel; ``b""`` means the peer closed it."""
        if data:
            self._buffer += data
        else:
            self._eof = True

    def next_event(self) -> Event | _NeedData | None:
        """The next complete event, ``NEED_DATA``, or ``None`` once the peer closed the channel."""
        if len(self._buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self._buffer)
            if size > MAX_FRAME:
                raise ProtocolError(f"frame of {size} bytes exceeds the {MAX_FRAME}-byte limit")
            if len(self._buffer) >= _LENGTH.size + size:
                body = bytes(self._buffer[_LENGTH.size : _LENGTH.size + size])
                del self._buffer[: _LENGTH.size + size]
                event = decode(body)
                self._apply(event, sending=False)
                return event
        if self._eof:
            if self._buffer:
                raise ProtocolError(f"channel closed in the middle of a frame ({len(self._buffer)} bytes left)")
            return None
        return NEED_DATA
