"""The engine interface, one for all engines (fork, criu, vm).

    with engine.start(target) as template:          # a sandbox imports the target (init)
        with template.snapshot() as snapshot:       # prepare (hooks, wipe secrets), then snapshot
            with snapshot.restore() as clone:       # restore, then the clone restores uniqueness
                result = clone.invoke({"x": 1}, timeout=3)

Every object records its timings in milliseconds in ``timings``. What differs between engines is
how a sandbox is made, snapshotted, restored and killed; talking to the agent in a clone
(``restored`` -> ``unique``, ``invoke`` -> ``result``) is the same everywhere and lives here.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import os
import threading
import time
import uuid
from typing import Any

from snapsafe.agent import protocol as p
from snapsafe.engines.channel import Channel, ChannelClosed, ChannelTimeout
from snapsafe.engines.output import OutputPump, Sink, stderr_sink
from snapsafe.errors import UsageError, UserError


class SandboxError(UserError):
    """A sandbox failed (exit code 1 when it reaches the command line)."""

    exit_code = 1

    def __init__(self, message: str, *, error_type: str = "Sandbox.Error", details: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        self.details = details


class InitError(SandboxError):
    """The target failed to import or initialise in the template (exit code 2)."""

    exit_code = 2


class SnapshotError(InitError):
    """The template could not be prepared or snapshotted (a hook failed, threads at init, ...; exit 2)."""


class CloneFailed(SandboxError):
    """A clone died, failed to restore uniqueness, or broke the protocol."""


class InvokeTimeout(CloneFailed):
    """The handler did not answer before the timeout; the clone was stopped."""


@dataclasses.dataclass
class Options:
    """How a target is run; shared by every engine."""

    function_name: str = ""
    memory_mb: int = 128
    allow_threads: bool = False
    disable_restorers: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    cwd: str | None = None
    output: Sink | None = stderr_sink
    init_timeout: float = 300.0
    restore_timeout: float = 60.0
    #: VM engine: auto (KVM where it is hardware KVM, else TCG), kvm or tcg
    accel: str = "auto"
    #: send fresh host entropy in `restored`; False makes exact clones (tests: with restorers off,
    #: clones must then draw identical numbers; a VM clone also keeps the template's vmgenid)
    host_entropy: bool = True
    #: audit --leaks: (secret canary, control canary) as hex, planted before the snapshot
    leak_canaries: tuple[str, str] | None = None
    lazy_restore: bool = False  # criu: clones' memory served on demand by `criu lazy-pages`
    #: "python": TARGET is imported by the agent; "lambda": TARGET is Lambda's handler string
    #: (module.function), run by AWS's runtime client behind the agent's Runtime API (agent/lambda_runtime.py)
    runtime: str = "python"

    def agent_args(self) -> list[str]:
        """The agent's command-line options for ``runtime``."""
        if self.runtime != "lambda":
            return []
        args = ["--runtime", "lambda", "--memory", str(self.memory_mb)]
        return args + (["--function-name", self.function_name] if self.function_name else [])


@dataclasses.dataclass
class InvokeResult:
    """What a handler returned (``ok``) or raised (``error`` in Lambda's shape)."""

    request_id: str
    ok: bool
    payload: Any
    error: dict[str, Any] | None
    invoke_ms: float
    fingerprint: dict[str, Any] | None = None


class Engine(abc.ABC):
    name: str = ""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()

    @abc.abstractmethod
    def check(self) -> str:
        """Raise :class:`snapsafe.errors.EnvironmentProblem` if unusable here; else describe it."""

    @abc.abstractmethod
    def start(self, target: str) -> Template:
        """Start a sandbox that imports ``target``; returns once init is done."""

    def open_snapshot(self, directory: str) -> Snapshot:
        """A snapshot saved on disk by ``template.snapshot(directory)``, checked before any restore."""
        raise UsageError(f"the {self.name} engine keeps its snapshots in memory; "
                         "on-disk snapshots need --engine criu or --engine vm")


class _Closing:
    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


class Template(_Closing, abc.ABC):
    """A sandbox that ran the target's init and can be snapshotted."""

    def __init__(self, target: str, options: Options) -> None:
        self.target = target
        self.options = options
        self.timings: dict[str, float] = {}

    @property
    def function_name(self) -> str:
        """``--function-name``, else the target's file or module name (``examples/hello.py:handler`` -> hello)."""
        if self.options.function_name:
            return self.options.function_name
        where = self.target.rsplit(":", 1)[0]
        return os.path.splitext(os.path.basename(where))[0].rsplit(".", 1)[-1] or "function"

    # -- the conversation every engine has with its template's agent ----------------------------
    channel: Channel | None = None
    sandbox_name = "template process"  # how errors name the sandbox ("guest" for a VM)

    def _exit_reason(self) -> str:
        """How the sandbox ended, for error messages (e.g. 'exited with code 3')."""
        return "ended"

    def _last_output(self) -> str:
        """The sandbox's last lines of output, as '; last output: ...' (or '')."""
        return ""

    def receive_hello(self, start: float) -> p.Hello:
        """Wait for ``hello`` (init done); every failure is an :class:`InitError` (the caller closes)."""
        assert self.channel is not None
        try:
            hello = self.channel.receive(timeout=self.options.init_timeout)
        except ChannelTimeout:
            raise InitError(f"{self.target}: initialisation did not finish within {self.options.init_timeout:g} s"
                            + self._last_output()) from None
        except ChannelClosed:
            raise InitError(f"{self.target}: the {self.sandbox_name} {self._exit_reason()} during initialisation"
                            + self._last_output()) from None
        if isinstance(hello, p.Fatal):
            raise InitError(f"{self.target}: {hello.message}", error_type=hello.error_type, details=hello.traceback)
        assert isinstance(hello, p.Hello)
        self.timings["init_ms"] = hello.init_ms
        self.timings["cold_start_ms"] = (time.perf_counter() - start) * 1000
        return hello

    def request_ready(self) -> p.Ready:
        """``prepare`` -> ``ready``; every failure is a :class:`SnapshotError`."""
        assert self.channel is not None
        try:
            ready = self.channel.request(self.prepare_event(), timeout=self.options.init_timeout)
        except (ChannelClosed, ChannelTimeout) as err:
            raise SnapshotError(f"{self.target}: the {self.sandbox_name} failed while preparing the snapshot: "
                                f"{err} ({self._exit_reason()}){self._last_output()}") from err
        if isinstance(ready, p.Fatal):
            raise SnapshotError(f"{self.target}: {ready.message}", error_type=ready.error_type,
                                details=ready.traceback)
        assert isinstance(ready, p.Ready)
        return ready

    def prepare_event(self) -> p.Prepare:
        """The ``prepare`` message every engine sends before its snapshot."""
        secret, control = self.options.leak_canaries or ("", "")
        return p.Prepare(allow_threads=self.options.allow_threads, secret_canary=secret, control_canary=control)

    @abc.abstractmethod
    def snapshot(self, directory: str | None = None) -> Snapshot:
        """Prepare the sandbox (hooks, secrets wiped) and snapshot it; engines with on-disk snapshots
        write them to ``directory`` (atomically, see ``engines/manifest.py``) when it is given."""


class ProcessTemplate(Template):
    """A template that is a host process (``process``) whose output an :class:`OutputPump` reads."""

    process: Any = None  # subprocess.Popen
    output: OutputPump | None = None

    def _exit_reason(self) -> str:
        import subprocess

        if self.process is None:
            return "did not start"
        try:
            return describe_returncode(self.process.wait(2))
        except subprocess.TimeoutExpired:
            return "stopped answering"

    def _last_output(self) -> str:
        if self.output is None:
            return ""
        self.output.join()
        tail = list(self.output.lines)[-5:]
        return ("; last output: " + " | ".join(tail)) if tail else ""

    def _stop_process(self, say_shutdown: bool = True, kill: Any = None) -> None:
        """Ask the agent to exit (``shutdown``, then EOF on its channel), wait up to 2 s, then kill
        (``kill(process)``; default ``process.kill()``), and drain its output."""
        import subprocess

        channel = self.channel
        if channel is not None:
            if say_shutdown and channel.lock.acquire(timeout=1):
                try:
                    if channel.state != p.CLOSED:
                        channel.send(p.Shutdown())
                except (ChannelClosed, p.ProtocolError, OSError):
                    pass
                finally:
                    channel.lock.release()
            channel.close()  # EOF: the agent exits (a fork template kills its clones first)
        if self.process is not None and self.process.poll() is None:
            try:
                self.process.wait(2)
            except subprocess.TimeoutExpired:
                (kill or (lambda proc: proc.kill()))(self.process)
                self.process.wait()
        if self.output is not None:
            self.output.join()


def describe_returncode(returncode: int | None) -> str:
    """'exited with code 3', 'killed by SIGKILL', ... for a subprocess-style return code."""
    import signal

    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Snapshot(_Closing, abc.ABC):
    """A post-init snapshot; every restore gives a clone with a generation of its own."""

    def __init__(self, template: Template, generation: int) -> None:
        self.template = template
        self.options = template.options
        self.timings: dict[str, float] = {}
        self.base_generation = generation
        self._clones = 0
        self._lock = threading.Lock()

    def next_clone(self) -> tuple[str, int]:
        """A new clone id and a generation distinct across all clones of this snapshot."""
        with self._lock:
            self._clones += 1
            return f"clone-{self._clones}", self.base_generation + self._clones

    @abc.abstractmethod
    def restore(self) -> Clone:
        """Restore a clone and make it unique; returns once it may serve."""

    def memory_sources(self) -> list:  # list[snapsafe.audit.leaks.MemorySource]
        """Where this snapshot's memory can be read, for the leak search."""
        raise UsageError(f"the {type(self).__name__} snapshot does not expose its memory")


class Clone(_Closing, abc.ABC):
    """A restored sandbox. Invocations are accepted only after it reported ``unique``."""

    #: the engine gives each clone a SysGenId counter of its own at the inherited path (see Restored)
    private_counter = False

    def __init__(self, snapshot: Snapshot, clone_id: str, generation: int) -> None:
        self.snapshot = snapshot
        self.options = snapshot.options
        self.id = clone_id
        self.generation = generation
        self.pid: int | None = None
        self.timings: dict[str, float] = {}
        self.channel: Channel | None = None
        self.output: OutputPump | None = None
        self.counter_path = ""
        self.closed = False
        self.invocations = 0

    # -- engine-specific ------------------------------------------------------------------------
    @abc.abstractmethod
    def _kill(self) -> None:
        """End the clone's sandbox at once (idempotent)."""

    def _exit_reason(self) -> str:
        """Why the sandbox ended, for error messages (e.g. 'killed by SIGKILL')."""
        return "it exited"

    # -- shared ---------------------------------------------------------------------------------
    def restored_event(self, entropy: bytes | None = None) -> p.Restored:
        """The ``restored`` message for this clone: its id, its generation, fresh host entropy."""
        if not self.options.host_entropy:
            entropy = b""
        elif not entropy:
            entropy = os.urandom(32)
        return p.Restored(clone_id=self.id, generation=self.generation, entropy=entropy.hex(),
                          disable=list(self.options.disable_restorers), host_time=time.time(),
                          private_counter=self.private_counter)

    def make_unique(self, entropy: bytes | None = None) -> None:
        """Send ``restored`` and wait for ``unique`` (the orchestrator always sends it)."""
        assert self.channel is not None
        try:
            reply = self.channel.request(self.restored_event(entropy), timeout=self.options.restore_timeout)
        except (ChannelClosed, ChannelTimeout) as err:
            reason = self._exit_reason()
            self.close()
            raise CloneFailed(f"{self.id} did not become unique: {err} ({reason})") from err
        self._after_unique(reply)

    def _after_unique(self, reply: p.Event) -> None:
        if isinstance(reply, p.Fatal):
            self.close()
            raise CloneFailed(f"{self.id} failed to restore uniqueness: {reply.message}",
                              error_type=reply.error_type, details=reply.traceback)
        assert isinstance(reply, p.Unique)
        # unique_ms: the clone's own time to become unique (counter, restorers, hooks, watchers);
        # ready_ms is set by the engine: restore request -> the clone may serve.
        self.timings["unique_ms"] = reply.elapsed_ms
        self.generation = reply.generation
        self.counter_path = reply.counter_path
        self.restorers = reply.restorers

    def invoke(self, event: Any, timeout: float | None = None, request_id: str | None = None,
               fingerprint: bool = False) -> InvokeResult:
        """Run the handler once. Handler errors come back in the result; a dead or timed-out clone
        raises :class:`CloneFailed` / :class:`InvokeTimeout` and is closed."""
        if self.closed or self.channel is None:
            raise CloneFailed(f"{self.id} is closed")
        request_id = request_id or str(uuid.uuid4())
        deadline_ms = int((time.time() + (timeout or 900)) * 1000)
        message = p.Invoke(request_id=request_id, event=event, deadline_ms=deadline_ms,
                           function_name=self.snapshot.template.function_name, memory_mb=self.options.memory_mb,
                           fingerprint=fingerprint)
        start = time.perf_counter()
        try:
            reply = self.channel.request(message, timeout=timeout)
        except ChannelTimeout:
            self.close()
            raise InvokeTimeout(f"Task timed out after {timeout:.2f} seconds", error_type="Sandbox.Timedout") from None
        except ChannelClosed as err:
            reason = self._exit_reason()
            self.close()
            raise CloneFailed(f"{self.id} ended during the invocation ({reason})",
                              error_type="Runtime.ExitError") from err
        invoke_ms = (time.perf_counter() - start) * 1000
        self.invocations += 1
        self.timings["invoke_ms"] = invoke_ms
        if isinstance(reply, p.Fatal):
            self.close()
            raise CloneFailed(f"{self.id} failed: {reply.message}", error_type=reply.error_type)
        assert isinstance(reply, p.Result)
        return InvokeResult(request_id=request_id, ok=reply.ok, payload=reply.payload, error=reply.error,
                            invoke_ms=invoke_ms, fingerprint=reply.fingerprint)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.channel is not None:
            with contextlib.suppress(Exception):
                if self.channel.state not in (p.CLOSED,) and self.channel.lock.acquire(timeout=0):
                    try:
                        self.channel.send(p.Shutdown())
                        self.channel.sock.settimeout(0.5)
                        self.channel.sock.recv(1)  # EOF: the agent flushed its output and exited
                    finally:
                        self.channel.lock.release()
        self._kill()
        if self.channel is not None:
            self.channel.close()
        if self.output is not None:
            self.output.join()
        if self.counter_path:
            from snapsafe import genid

            genid.remove_counter(self.counter_path)

    @property
    def host_pid(self) -> int | None:
        """The clone's main process as the orchestrator's PID namespace sees it (for /proc)."""
        return self.pid

    @property
    def logs(self) -> list[str]:
        """The clone's last lines of output."""
        return list(self.output.lines) if self.output else []

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} generation={self.generation} pid={self.pid}>"
