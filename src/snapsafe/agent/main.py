"""The agent's main loop: import the target, then answer the orchestrator until told to stop.

Run as ``python -m snapsafe.agent --target T --fd N [--mode fork-template|sandbox]``:

* ``fork-template`` (fork engine): after ``prepare`` the process waits for ``fork`` requests; each
  request brings a fresh control socket and an output pipe (SCM_RIGHTS). The child of ``os.fork()``
  carries on in this same loop as a clone: it swaps in the new channel and waits for ``restored``.
* ``sandbox`` (CRIU and VM engines): the process itself is snapshotted after ``ready``; whatever
  resumes from the image receives ``restored`` on the channel the engine reconnected.

The agent never accepts an invocation before ``restore_uniqueness`` has returned: the protocol's
state machine forbids it.
"""

from __future__ import annotations

import argparse
import array
import gc
import json
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import snapsafe
from snapsafe import genid
from snapsafe.agent import protocol as p
from snapsafe.agent.context import LambdaContext
from snapsafe.agent.target import TargetLoadError, load

#: Exit code of an agent that could not initialise (the orchestrator must not retry it).
EXIT_INIT_FAILED = 3


class SocketTransport:
    """A stream socket carrying protocol frames, and file descriptors alongside (SCM_RIGHTS)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fds: list[int] = []

    def recv(self) -> bytes:
        fds = array.array("i")
        data, ancdata, _flags, _addr = self.sock.recvmsg(1 << 16, socket.CMSG_SPACE(16 * fds.itemsize))
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
        self.fds.extend(fds)
        return data

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds.clear()
        self.sock.close()


def lambda_error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    """An exception in the shape Lambda's Python runtime reports it."""
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_list(traceback.extract_tb(exc.__traceback__)),
    }


_prctl: Any = None


def set_parent_death_signal(sig: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``sig`` when the parent dies (Linux prctl PR_SET_PDEATHSIG).

    The libc handle is looked up once (in the template), not in every clone."""
    global _prctl
    if _prctl is None:
        import ctypes

        _prctl = ctypes.CDLL(None, use_errno=True).prctl
    if sig:
        pr_set_pdeathsig = 1
        _prctl(pr_set_pdeathsig, sig, 0, 0, 0)


class Agent:
    def __init__(self, transport: SocketTransport, target: str, mode: str) -> None:
        self.transport = transport
        self.target = target
        self.mode = mode
        self.conn = p.Connection(p.AGENT)
        self.handler: Callable[..., Any] | None = None
        self.clone_id = "template"
        self.counter: str | None = None  # this clone's own SysGenId counter file, removed at stop
        self.control_canary: bytearray | None = None  # audit --leaks: must be found in the snapshot
        self.children: dict[int, int | None] = {}  # fork template: pid -> returncode once reaped
        #: engine-specific repair run first after `restored` (e.g. a VM guest's kernel RNG and clock);
        #: returns notes for `unique`
        self.restore_hook: Callable[[p.Restored], dict[str, Any]] | None = None
        #: engine-specific step run last before `ready` (after hooks and secrets)
        self.prepare_hook: Callable[[], None] | None = None
        #: --runtime lambda: the function runs in AWS's runtime client behind a Runtime API (lambda_runtime.py)
        self.runtime: Any = None

    # -- plumbing ---------------------------------------------------------------------------
    def send(self, event: p.Event) -> None:
        self.transport.send(self.conn.send(event))

    def next_event(self) -> p.Event | None:
        while True:
            event = self.conn.next_event()
            if event is not p.NEED_DATA:
                return event  # type: ignore[return-value]
            self.conn.receive_data(self.transport.recv())

    def fatal(self, error_type: str, exc: BaseException) -> None:
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.send(p.Fatal(error_type=error_type, message=str(exc), traceback=tb))

    # -- life ---------------------------------------------------------------------------------
    def run(self) -> int:
        start = time.perf_counter()
        if self.runtime is not None:
            from snapsafe.agent.lambda_runtime import FunctionFailed

            try:
                self.runtime.start()
            except FunctionFailed as err:
                self.send(p.Fatal(error_type=err.error_type, message=str(err), traceback=err.traceback))
                return EXIT_INIT_FAILED
        try:
            if self.runtime is None:
                self.handler = load(self.target)
        except TargetLoadError as err:
            self.fatal(f"Runtime.{'ImportModuleError' if err.kind != 'init' else 'InitError'}", err)
            return EXIT_INIT_FAILED
        init_ms = (time.perf_counter() - start) * 1000
        self.send(p.Hello(version=p.PROTOCOL_VERSION, pid=os.getpid(), python=sys.version.split()[0],
                          init_ms=init_ms, mode=self.mode))
        while True:
            event = self.next_event()
            if event is None or isinstance(event, p.Shutdown):
                return self.stop()
            method = getattr(self, "on_" + event.type)
            if method(event) is False:
                return 1
            self.reap_children()

    def stop(self) -> int:
        if self.runtime is not None:
            self.runtime.stop()
        for pid in [pid for pid, rc in self.children.items() if rc is None]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.counter:
            genid.remove_counter(self.counter)
        if self.mode == "fork-template" and os.environ.get(genid.ENV_VAR):
            genid.remove_counters(os.environ[genid.ENV_VAR])  # its own and its clones', even if orphaned
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        return 0

    # -- handlers -----------------------------------------------------------------------------
    def on_prepare(self, event: p.Prepare) -> bool:
        start = time.perf_counter()
        others = [t for t in threading.enumerate() if t is not threading.main_thread()]
        if others and not event.allow_threads:
            names = ", ".join(f"{t.name!r}" for t in others)
            self.fatal("Runtime.SnapshotError", RuntimeError(
                f"{len(others)} thread(s) started during init would not survive the snapshot: {names}; "
                "start threads in an after-restore hook, or pass --allow-threads if they may be lost"))
            return False
        generation = snapsafe.generation()  # the sandbox's counter exists before the snapshot
        if self.runtime is not None and not self.runtime_step(self.runtime.prepare):
            return False
        planted = self.plant_canaries(event)
        try:
            hooks_run = len(snapsafe.hooks.before_snapshot_hooks())
            snapsafe.prepare_snapshot()
        except snapsafe.HookError as err:
            self.fatal(err.error_type, err)
            return False
        set_parent_death_signal(0)  # look libc up now, so that clones do not pay for it
        from snapsafe import memory, restorers

        if self.prepare_hook is not None:
            self.prepare_hook()
        gc.collect()
        if event.freeze_gc:
            gc.freeze()  # keep the template's objects out of clones' collections: pages stay shared
        sys.stdout.flush()
        sys.stderr.flush()
        self.send(p.Ready(prepare_ms=(time.perf_counter() - start) * 1000, generation=generation,
                          hooks=hooks_run, secrets_wiped=len(memory._live),
                          generators=len(restorers._collected or []), canaries_planted=planted))
        return True

    def plant_canaries(self, event: p.Prepare) -> int:
        """For `snapsafe audit --leaks`: the secret canary into every Secret (prepare wipes them),
        the control canary into ordinary memory (the search must find it there)."""
        from snapsafe import memory

        if event.control_canary:
            control = bytearray(len(event.control_canary) // 2)  # filled in place: exactly one copy
            for i in range(len(control)):
                control[i] = int(event.control_canary[2 * i : 2 * i + 2], 16)
            self.control_canary = control
        return memory.plant_canary(event.secret_canary) if event.secret_canary else 0

    def on_fork(self, event: p.Fork) -> bool:
        if len(self.transport.fds) < 2:
            self.send(p.Fatal(error_type="Runtime.ForkError", message="fork request came without its fds"))
            return True
        channel_fd, output_fd = self.transport.fds[:2]
        del self.transport.fds[:2]
        pid = os.fork()
        if pid == 0:
            self.become_clone(event.clone_id, channel_fd, output_fd)
            return True
        os.close(channel_fd)
        os.close(output_fd)
        self.children[pid] = None
        self.send(p.Forked(clone_id=event.clone_id, pid=pid))
        return True

    def become_clone(self, clone_id: str, channel_fd: int, output_fd: int) -> None:
        """In a forked child: the one post-fork clean-up, then carry on as a clone."""
        set_parent_death_signal(signal.SIGKILL)
        if os.getppid() == 1:  # the template died between fork and prctl
            os._exit(1)
        self.transport.close()
        self.children.clear()
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        os.close(output_fd)
        for stream in (sys.stdout, sys.stderr):
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(line_buffering=True)
        self.transport = SocketTransport(socket.socket(fileno=channel_fd))
        self.conn = p.Connection(p.AGENT, state=p.SNAPSHOTTABLE)
        self.clone_id = clone_id
        self.mode = "clone"

    def on_reap(self, event: p.Reap) -> bool:
        deadline = time.monotonic() + 1.0
        while self.children.get(event.pid, 0) is None and time.monotonic() < deadline:
            self.reap_children()
            if self.children.get(event.pid) is None:
                time.sleep(0.005)
        self.send(p.Reaped(pid=event.pid, returncode=self.children.get(event.pid)))
        if self.children.get(event.pid) is not None:
            del self.children[event.pid]
        return True

    def reap_children(self) -> None:
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.children[pid] = os.waitstatus_to_exitcode(status)

    def on_restored(self, event: p.Restored) -> bool:
        start = time.perf_counter()
        self.clone_id = event.clone_id
        try:
            counter = ""  # the engine owns a private counter; nothing for the orchestrator to remove
            if not event.private_counter:
                # Named after the inherited counter, so whoever removes the template's counters finds it.
                counter = genid.create_counter(initial=snapsafe.generation(),
                                               path=f"{genid.path()}-{event.clone_id}-{os.urandom(3).hex()}")
                genid.rebind(counter)
                self.counter = counter
            notes = self.restore_hook(event) if self.restore_hook else {}
            snapsafe.restore_uniqueness(event.generation, bytes.fromhex(event.entropy), event.disable)
            if self.runtime is not None and not self.runtime_step(self.runtime.restore, event):
                return False  # the function's after-restore hooks failed: answered with Lambda's error
        except snapsafe.HookError as err:
            self.fatal(err.error_type, err)
            return False
        except Exception as err:
            self.fatal("Runtime.RestoreError", err)
            return False
        from snapsafe import restorers

        ran = [n for n in restorers.NAMES if n not in restorers.disabled() | set(event.disable)]
        elapsed = time.perf_counter() - start  # from `restored` received: counter, restorers, hooks, watchers
        self.send(p.Unique(clone_id=event.clone_id, generation=snapsafe.generation(), elapsed_ms=elapsed * 1000,
                           pid=os.getpid(), counter_path=counter, restorers=ran, notes=notes))
        return True

    def runtime_step(self, step: Callable[..., Any], *args: Any) -> bool:
        """Run a step of the Lambda runtime; its failure (Lambda's error type) becomes ``fatal``."""
        from snapsafe.agent.lambda_runtime import FunctionFailed

        try:
            step(*args)
        except FunctionFailed as err:
            self.send(p.Fatal(error_type=err.error_type, message=str(err), traceback=err.traceback))
            return False
        return True

    def on_invoke(self, event: p.Invoke) -> bool:
        if self.runtime is not None:
            return self.invoke_runtime(event)
        assert self.handler is not None
        context = LambdaContext(event.request_id, event.function_name, event.memory_mb,
                                event.invoked_function_arn, event.deadline_ms, self.clone_id)
        start = time.perf_counter()
        error: dict[str, Any] | None = None
        payload: Any = None
        try:
            payload = self.handler(event.event, context)
        except Exception as exc:
            error = lambda_error(exc)
        else:
            try:
                json.dumps(payload)
            except (TypeError, ValueError) as exc:
                error = lambda_error(exc, "Runtime.MarshalError")
                error["errorMessage"] = f"Unable to marshal response: {exc}"
                payload = None
        if error is not None:
            error["requestId"] = event.request_id
        fingerprint = None
        if event.fingerprint:
            from snapsafe.agent import fingerprint as fp

            fingerprint = fp.collect(payload if error is None else error.get("errorType"))
        sys.stdout.flush()
        sys.stderr.flush()
        self.send(p.Result(request_id=event.request_id, ok=error is None, payload=payload, error=error,
                           duration_ms=(time.perf_counter() - start) * 1000, fingerprint=fingerprint))
        return True


    def invoke_runtime(self, event: p.Invoke) -> bool:
        """--runtime lambda: the invocation goes to the function process through the Runtime API."""
        from snapsafe.agent.lambda_runtime import FunctionFailed

        start = time.perf_counter()
        try:
            ok, payload, error = self.runtime.invoke(event)
        except FunctionFailed as err:
            self.send(p.Fatal(error_type=err.error_type, message=str(err), traceback=err.traceback))
            return False
        fingerprint = None
        if event.fingerprint:
            from snapsafe.agent import fingerprint as fp

            fingerprint = fp.collect(payload if ok else (error or {}).get("errorType"))
        self.send(p.Result(request_id=event.request_id, ok=ok, payload=payload, error=error,
                           duration_ms=(time.perf_counter() - start) * 1000, fingerprint=fingerprint))
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m snapsafe.agent", description=__doc__)
    parser.add_argument("--target", required=True)
    channel = parser.add_mutually_exclusive_group(required=True)
    channel.add_argument("--fd", type=int, help="the control channel (a connected stream socket)")
    channel.add_argument("--device", metavar="PATH", help="the control channel on a device (a VM's virtio port)")
    parser.add_argument("--mode", choices=("fork-template", "sandbox"), default="fork-template")
    parser.add_argument("--vm-guest", action="store_true",
                        help="in a VM guest: after a restore, reseed the guest kernel's RNG with the host entropy "
                             "and set the clock to the host's")
    parser.add_argument("--runtime", choices=("python", "lambda"), default="python",
                        help="lambda: run TARGET (module.function) in AWS's runtime client behind a Runtime API")
    parser.add_argument("--function-name", default="", help="--runtime lambda: AWS_LAMBDA_FUNCTION_NAME")
    parser.add_argument("--memory", type=int, default=128, help="--runtime lambda: AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    args = parser.parse_args(argv)
    # Ctrl-C reaches the whole foreground process group; the orchestrator alone decides what stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.device:
        from snapsafe.agent.device import DeviceTransport

        transport: Any = DeviceTransport(args.device)
    else:
        transport = SocketTransport(socket.socket(fileno=args.fd))
    agent = Agent(transport, args.target, args.mode)
    if args.runtime == "lambda":
        from snapsafe.agent.lambda_runtime import LambdaRuntime

        agent.runtime = LambdaRuntime(args.target, args.function_name, args.memory)
    if args.vm_guest:
        from snapsafe.agent import vmguest

        agent.restore_hook = vmguest.after_restore
        agent.prepare_hook = vmguest.before_snapshot
    try:
        return agent.run()
    except (BrokenPipeError, ConnectionResetError):
        return agent.stop()
